"""The hf provider's prompt templates, one per kind of request, and the chat text each becomes.

Choices and verify are answered by scoring continuations (scoring.py), so their prompts end where the
answer begins; open questions and captions are generated, and their prompts ask for a short answer,
as the LLaVA-style evaluations do. Changing a template changes the cache key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mmbridge.types import Request, Task

__all__ = ["KEYS", "TEMPLATES", "chat_text", "fingerprint", "template_key"]

#: bump with any change to TEMPLATES
VERSION = "1"

TEMPLATES = {
    "caption": "Describe the image in one short sentence.",
    "vqa": "{question}\nAnswer the question using a single word or phrase.",
    "vqa_choices": "{question}\nOptions: {choices}.\nAnswer with the option's word.",
    "verify": "Is this statement true of the image? {statement}\nAnswer yes or no.",
}
KEYS = tuple(TEMPLATES)


def template_key(request: Request) -> str:
    if request.task is Task.VQA and request.choices:
        return "vqa_choices"
    return request.task.value


def chat_text(processor: Any, request: Request, overrides: dict[str, str]) -> str:
    """The model's own chat template around one picture and the request's prompt, ready for the
    assistant's answer."""
    template = overrides.get(template_key(request), TEMPLATES[template_key(request)])
    prompt = template.format(
        question=request.question or "", statement=request.statement or "", choices=", ".join(request.choices or ())
    )
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def fingerprint(overrides: dict[str, str]) -> str:
    """The templates in use: the version and a hash of the effective texts."""
    effective = {**TEMPLATES, **overrides}
    return f"{VERSION}-{hashlib.sha256(json.dumps(effective, sort_keys=True).encode()).hexdigest()[:12]}"
