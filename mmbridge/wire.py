"""The OpenAI chat-completions wire format, built in one place for the servers mmbridge runs."""

from __future__ import annotations

import time
import uuid
from typing import Any

__all__ = ["chat_completion", "error_body"]


def chat_completion(model: str, content: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """A ``chat.completion`` object with one assistant message and its ``usage``."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_body(
    message: str, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """``{"error": {...}}`` as the official SDK parses it."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
