"""Run many calls with bounded concurrency, keep input order, and show progress on a terminal."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Any, TypeVar

__all__ = ["progress_bar", "run_batch"]

T = TypeVar("T")
R = TypeVar("R")


def progress_bar(enabled: bool | None, description: str) -> Any:
    """A rich Progress on stderr when ``enabled`` (None: only if stderr is a terminal), else a no-op."""
    interactive = sys.stderr.isatty()
    if not (interactive if enabled is None else enabled):
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),  # each task (an eval, a batch) names itself
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=interactive,  # a terminal clears the bar when done; a log keeps the final line
    )


async def run_batch(
    call: Callable[[T], Awaitable[R]],
    items: Sequence[T],
    *,
    concurrency: int,
    progress: bool | None = None,
    description: str = "answering",
) -> list[R | Exception]:
    """``[call(item) for item in items]`` with at most ``concurrency`` in flight.

    An exception raised by one call is stored in that call's slot; cancellation still propagates.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    results: list[Any] = [None] * len(items)
    queue = iter(range(len(items)))  # shared by the workers; each index is taken exactly once
    failed = 0
    with progress_bar(progress, description) as bar:
        task = bar.add_task(description, total=len(items), failed=0) if bar is not None else None

        async def worker() -> None:
            nonlocal failed
            for index in queue:
                try:
                    results[index] = await call(items[index])
                except Exception as exc:  # noqa: BLE001 - the contract is: errors become results
                    results[index] = exc
                    failed += 1
                if bar is not None:
                    bar.update(task, advance=1, failed=failed)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
    return results
