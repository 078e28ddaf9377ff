"""Row: one provider's result for one sample, the one line format of samples.jsonl, read and written here only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from ..atomic import atomic_write
from ..errors import RunError
from ..types import Task, was_parsed

__all__ = ["ROWS_FILE", "TIMING", "Row", "RowError", "by_provider", "compact_rows", "parse_rows", "read_rows"]

ROWS_FILE = "samples.jsonl"
#: the fields of a row that measure when and how fast, not what: two runs of the same thing differ there
TIMING = ("latency_s", "service_s", "answered_at")


class RowError(BaseModel):
    """Why a call failed: the exception's class name and its one-line message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    message: str


class Row(BaseModel):
    """One (sample, provider) result. ``error`` rows and ``unsupported`` rows carry no answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_id: str
    provider: str
    task: Task
    #: the sample's meta.type, the breakdown key of the report
    type: str | None = None
    #: the raw output text
    prediction: str | None = None
    #: vqa: the normalized answer read from the output
    answer: str | None = None
    #: verify: the true / false read from the output
    label: bool | None = None
    #: vqa accuracy or verify correctness; None for captions (scored as a corpus) and failures
    score: float | None = None
    confidence: float | None = None
    #: the provider's doubt in words (the local model: a picture unlike its training pictures)
    warning: str | None = None
    latency_s: float | None = None
    #: the provider's own time on it (``Response.service_s``); latency_s - service_s was spent waiting
    service_s: float | None = None
    #: when the row was made (seconds since the epoch): the summary's answers per second
    answered_at: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False
    #: a short hash of the identity of the provider config that wrote the row (``rundir.row_source``),
    #: so a rerun can tell its own rows from another config's; None in rows written before it existed
    source: str | None = None
    #: the provider does not do this task: not asked, not counted as wrong
    unsupported: bool = False
    error: RowError | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.sample_id, self.provider

    @property
    def parsed(self) -> bool:
        """Whether the task's structured result was read from the output (as ``Response.parsed``)."""
        return was_parsed(self.task, self.answer, self.label, self.prediction)

    @property
    def ok(self) -> bool:
        """Answered: neither an error nor unsupported."""
        return self.error is None and not self.unsupported


def by_provider(rows: Iterable[Row], providers: Iterable[str]) -> dict[str, dict[str, Row]]:
    """The rows of ``providers`` by provider, then sample id (a later row of the same key wins)."""
    keyed: dict[str, dict[str, Row]] = {name: {} for name in providers}
    for row in rows:
        if row.provider in keyed:
            keyed[row.provider][row.sample_id] = row
    return keyed


def parse_rows(text: str) -> Iterator[tuple[int, Row | str]]:
    """Each non-blank line of ``text`` with its number: the Row it holds, or why it is not one."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, Row.model_validate_json(line)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"]) or "the line"
            yield number, f"not a result row ({where}: {problem['msg']})"


def read_rows(path: Path, belongs: Callable[[Row], str | None] | None = None) -> list[Row]:
    """The rows of ``path``, the latest for each (sample, provider).

    A last line cut short by a kill is dropped from the file; any other line that is not a row, or
    (with ``belongs``, which says what is wrong with a row or None) a row of something else, is a
    RunError naming its line, since guessing would report numbers the run did not measure.
    """
    if not path.exists():
        return []
    if not path.is_file():
        raise RunError(f"{path} is not a file; move it away, or rerun with --restart")
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):  # a partial last line: remove it so appends start on a fresh line
        with path.open("r+b") as f:
            f.truncate(end)
        data = data[:end]
    latest: dict[tuple[str, str], Row] = {}
    for number, row in parse_rows(data.decode("utf-8", errors="replace")):
        if isinstance(row, str):
            raise RunError(f"{path} line {number}: {row}; delete that line to ask it again, or rerun with --restart")
        if belongs is not None and (wrong := belongs(row)):
            raise RunError(f"{path} line {number}: {wrong}; delete that line, or rerun with --restart")
        latest[row.key] = row  # a re-asked row comes after the one it replaces
    return list(latest.values())


def compact_rows(path: Path, rows: list[Row]) -> None:
    """Rewrite ``path`` atomically with exactly ``rows`` (one per key)."""
    with atomic_write(path) as out:
        for row in rows:
            out.write(row.model_dump_json() + "\n")
