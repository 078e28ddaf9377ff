"""Batch API input files: one JSONL line per request, streamed to disk, split at a count and a size."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENDPOINT", "InputFile", "fill_file"]

ENDPOINT = "/v1/chat/completions"


@dataclass
class InputFile:
    path: Path
    custom_ids: list[str] = field(default_factory=list)
    size: int = 0
    #: custom_id -> why its line could not be written (too large for any file)
    rejected: dict[str, str] = field(default_factory=dict)


def _line(custom_id: str, body: dict[str, Any]) -> bytes:
    record = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def fill_file(
    path: Path,
    pending: Iterator[str],
    body: Callable[[str], dict[str, Any]],
    *,
    max_requests: int,
    max_bytes: int,
    first: str | None = None,
) -> tuple[InputFile, str | None]:
    """Write lines for ``first`` and then ``pending`` ids into ``path`` until it is full.

    Returns the file and the id that did not fit (the next file's ``first``), or None when
    ``pending`` ran out. Each line is written as it is built, so memory holds one request at a time.
    """
    written, leftover = InputFile(path), None
    with path.open("wb") as out:
        for custom_id in _chain(first, pending):
            line = _line(custom_id, body(custom_id))
            if len(line) > max_bytes:
                written.rejected[custom_id] = (
                    f"the request is {len(line) / 1e6:.1f} MB as a batch line, over the file limit of "
                    f"{max_bytes / 1e6:.0f} MB; lower max_image_side or raise batch_max_mb"
                )
                continue
            if written.custom_ids and (len(written.custom_ids) >= max_requests or written.size + len(line) > max_bytes):
                leftover = custom_id
                break
            out.write(line)
            written.custom_ids.append(custom_id)
            written.size += len(line)
    return written, leftover


def _chain(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    if first is not None:
        yield first
    yield from rest
