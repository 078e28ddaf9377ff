"""``function``: wrap a Python callable as a provider (sync or async; returns text or a Response)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import ProviderError
from ..extract import label_response, response_from_text
from ..provider import BaseProvider
from ..registry import ProviderPlugin
from ..types import Request, Response, Task

__all__ = ["FunctionOptions", "FunctionProvider", "plugin"]


class FunctionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    #: ``fn(request) -> str | bool | Response``, plain or ``async``; a plain one runs in a thread
    fn: Callable[[Request], Any]
    model: str | None = None
    tasks: frozenset[Task] = frozenset(Task)


class FunctionProvider(BaseProvider):
    """Calls ``fn`` for every request. A str is parsed like model output; a bool is a verify label."""

    #: the function's code can change under the same name, so its answers are never cached
    cacheable = False

    def __init__(self, name: str, options: FunctionOptions) -> None:
        super().__init__(name)
        self.fn = options.fn
        self.model = options.model or getattr(options.fn, "__name__", "function")
        self.capabilities = options.tasks

    @property
    def identity(self) -> dict[str, object]:
        return {"type": "function", "model": self.model, "fn": f"{self.fn.__module__}.{self.model}"}

    async def _generate(self, request: Request) -> Response:
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(request)
        else:
            result = await asyncio.to_thread(self.fn, request)
        if isinstance(result, Response):
            return result
        if isinstance(result, bool) and request.task is Task.VERIFY:
            return label_response(request, result, provider=self.name, model=self.model)
        if isinstance(result, str):
            return response_from_text(request, result, provider=self.name, model=self.model)
        raise ProviderError(
            f"the function returned {type(result).__name__}; return a str, a bool (verify) or a Response",
            provider=self.name,
        )


def build(name: str, options: FunctionOptions) -> FunctionProvider:
    return FunctionProvider(name, options)


plugin = ProviderPlugin(
    factory="mmbridge.providers.function:build",
    options=FunctionOptions,
    description="wraps a Python callable: fn(request) -> str | bool | Response",
)
