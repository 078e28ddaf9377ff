"""What the Batch API code needs of an openai provider, and no more: the provider offers it
(``OpenAIProvider`` satisfies ``BatchSurface``), ``batch_job`` and ``batch_admin`` use it, and neither
imports the provider, so the package's imports run one way."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from mmbridge.types import Request, Response

if TYPE_CHECKING:
    import openai

    from . import OpenAIOptions

__all__ = ["BatchSurface"]


class BatchSurface(Protocol):
    name: str
    options: OpenAIOptions

    def new_client(self) -> openai.AsyncOpenAI:
        """An SDK client of its own (a batch job waits on its loop for hours)."""
        ...

    def request_body(self, request: Request) -> dict[str, Any]:
        """The chat completion body the synchronous path would send for ``request``."""
        ...

    def read_body(self, request: Request, body: dict[str, Any]) -> Response:
        """The Response for a Batch API result line's body, by the synchronous path's rules, at batch prices."""
        ...

    def translating(self) -> AbstractContextManager[None]:
        """A block whose SDK exceptions become mmbridge errors, the key kept out of their messages."""
        ...

    def status_error(self, status: int, body: Any) -> Exception:
        """The mmbridge error for an HTTP ``status`` with ``body`` (a failed batch line), the key kept out."""
        ...
