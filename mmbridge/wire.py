"""The OpenAI chat-completions wire format, read and built in one place for the servers mmbridge
runs (``serve`` and the loopback test server)."""

from __future__ import annotations

import time
import uuid
from typing import Any, NamedTuple

__all__ = ["ChatRequest", "WireError", "answer_choices", "chat_completion", "error_body", "read_messages"]

ROLES = ("system", "user", "assistant", "developer")


class WireError(ValueError):
    """A request body that does not follow the format: a message, and the offending parameter and code."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


class ChatRequest(NamedTuple):
    """What mmbridge reads from a chat completion request: the users' texts and image URLs."""

    texts: list[str]
    images: list[str]

    @property
    def prompt(self) -> str:
        return "\n".join(self.texts).strip()


def read_messages(messages: Any) -> ChatRequest:
    """The texts and image URLs of the user messages, or a WireError naming what is wrong."""
    if not isinstance(messages, list) or not messages:
        raise WireError("'messages' must be a non-empty list", param="messages")
    texts, images = [], []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise WireError(f"each message needs a role of {', '.join(ROLES[:-1])} or {ROLES[-1]}", param="messages")
        if message["role"] != "user":
            continue
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(parts, list):
            raise WireError("message content must be a string or a list of parts", param="messages")
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            url = part.get("image_url") if kind == "image_url" else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(url, dict) and isinstance(url.get("url"), str):
                images.append(url["url"])
            else:
                raise WireError(
                    f"unsupported content part {kind!r}: send text and image_url parts",
                    param="messages",
                    code="unsupported_content",
                )
    return ChatRequest(texts, images)


def answer_choices(response_format: Any) -> tuple[str, ...] | None:
    """The closed answer set of a ``json_schema`` response format (the enum of its ``answer``
    property), None without one, or a WireError when the schema has no such enum."""
    if not (isinstance(response_format, dict) and response_format.get("type") == "json_schema"):
        return None
    try:
        return tuple(str(c) for c in response_format["json_schema"]["schema"]["properties"]["answer"]["enum"])
    except (KeyError, TypeError):
        raise WireError(
            "a json_schema response_format must have an enum 'answer' property", param="response_format"
        ) from None


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
