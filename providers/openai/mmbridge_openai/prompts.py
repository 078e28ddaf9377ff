"""Versioned prompt templates, one per task. Changing a template changes the cache key."""

from __future__ import annotations

import hashlib
import json

from mmbridge.types import Request, Task

__all__ = ["PROMPT_VERSION", "TEMPLATES", "render", "templates_fingerprint"]

#: bump with any change to TEMPLATES
PROMPT_VERSION = "1"

TEMPLATES = {
    "caption": "Describe the image in one short sentence. Name the objects you see with their colors.",
    "vqa": (
        "Answer the question about the image with a single word or number.\n"
        "Question: {question}\n"
        "Finish with a last line of the form 'Answer: <answer>'."
    ),
    "vqa_choices": (
        "Answer the question about the image with exactly one of these options: {choices}.\n"
        "Question: {question}\n"
        "Finish with a last line of the form 'Answer: <option>'."
    ),
    "verify": (
        "Is the following statement true of the image?\n"
        "Statement: {statement}\n"
        "Finish with a last line 'Answer: yes' or 'Answer: no'."
    ),
}


def _key(request: Request) -> str:
    if request.task is Task.VQA and request.choices:
        return "vqa_choices"
    return request.task.value


def render(request: Request, overrides: dict[str, str]) -> str:
    """The text prompt for ``request``; ``overrides`` replaces templates by key."""
    template = overrides.get(_key(request), TEMPLATES[_key(request)])
    return template.format(
        question=request.question or "",
        statement=request.statement or "",
        choices=", ".join(request.choices or ()),
    )


def templates_fingerprint(overrides: dict[str, str]) -> str:
    """Identifies the templates in use: the version plus a hash of the effective texts."""
    effective = {**TEMPLATES, **overrides}
    digest = hashlib.sha256(json.dumps(effective, sort_keys=True).encode()).hexdigest()[:12]
    return f"{PROMPT_VERSION}-{digest}"
