"""One run folder read for the viewer: its record, samples, rows and summary, with what could not be read.

Nothing here writes: a half-written ``samples.jsonl`` is read up to its last whole line (the eval that
resumes it trims the rest), and a line that is not a row is skipped and named, so a damaged run still
shows what it can. A run whose summary is missing or older than its rows (still running, or stopped)
gets a summary computed from the rows so far, marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..data.sample import Sample
from ..errors import RunError
from ..eval.cascade import cascade_of
from ..eval.rows import ROWS_FILE, Row, by_provider, parse_rows
from ..eval.summary import summarize
from ..eval.summary_model import Cascade, Summary, read_summary
from .folders import SUMMARY_FILE, Files, is_being_written, read_json

__all__ = ["Run", "count_rows", "load_run"]

#: problems listed one by one; beyond these, a count
SHOWN_PROBLEMS = 20


@dataclass
class Run:
    key: str
    files: Files
    identity: dict[str, Any] | None
    samples: list[Sample]
    rows: list[Row]
    running: bool
    fit: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    #: the summary is computed here from the rows so far (no summary.json, or one older than the rows)
    live: bool = False
    _by_id: dict[str, Sample] | None = field(default=None, repr=False)
    _summary: tuple[Summary | None] | None = field(default=None, repr=False)

    def summary(self) -> Summary | None:
        """summary.json, or one computed from the rows (seconds for 100,000 rows: done once, on demand)."""
        if self._summary is None:
            self._summary = (_with_fitted(_summary(self.files, self), self.rows, self.fit),)
        return self._summary[0]

    def sample(self, sample_id: str) -> Sample | None:
        if self._by_id is None:
            self._by_id = {s.id: s for s in self.samples}
        return self._by_id.get(sample_id)

    @property
    def providers(self) -> list[str]:
        if self.identity is not None:
            return list(self.identity.get("providers") or {})
        return sorted({r.provider for r in self.rows})


def count_rows(files: Files) -> int:
    """Whole lines in samples.jsonl (a re-asked row counts twice), without parsing them."""
    try:
        with files.rows.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def _complete_text(data: bytes, running: bool, name: str, problems: list[str]) -> str:
    """``data`` up to its last whole line; a cut-short last line is named unless an eval is still writing it."""
    end = data.rfind(b"\n") + 1
    if end != len(data) and not running:
        number = data[:end].count(b"\n") + 1
        problems.append(f"{name} line {number} was cut short (the run was stopped; resuming it removes the line)")
    return data[:end].decode("utf-8", errors="replace")


def _read_rows(files: Files, running: bool, problems: list[str]) -> list[Row]:
    try:
        data = files.rows.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        problems.append(f"samples.jsonl cannot be read ({type(exc).__name__})")
        return []
    latest: dict[tuple[str, str], Row] = {}
    for number, row in parse_rows(_complete_text(data, running, "samples.jsonl", problems)):
        if isinstance(row, str):
            problems.append(f"samples.jsonl line {number}: {row}; skipped")
        else:
            latest[row.key] = row
    return list(latest.values())


def _read_samples(files: Files, problems: list[str]) -> list[Sample]:
    try:
        data = files.inputs.read_bytes()
    except FileNotFoundError:
        problems.append(
            "no inputs.jsonl, so its questions and pictures are unknown (rerun the eval into this folder "
            "to record them: its answers come from the cache)"
        )
        return []
    except OSError as exc:
        problems.append(f"inputs.jsonl cannot be read ({type(exc).__name__})")
        return []
    samples = []
    for number, line in enumerate(_complete_text(data, False, "inputs.jsonl", problems).splitlines(), 1):
        if line.strip():
            try:
                samples.append(Sample.model_validate_json(line))
            except ValidationError:
                problems.append(f"inputs.jsonl line {number}: not a sample; skipped")
    return samples


def _summary(files: Files, run: Run) -> Summary | None:
    if not run.live:
        try:
            return read_summary(files.summary)
        except RunError as exc:
            run.problems.append(str(exc).replace(str(files.folder) + "/", ""))
            run.live = True
    if not run.samples or not run.rows:
        return None
    identity = run.identity or {}
    return summarize(
        run.rows,
        run.samples,
        providers=run.providers,
        dataset=str(identity.get("dataset", files.folder.name)),
        seed=int(identity.get("seed", 0)),
    )


def _with_fitted(summary: Summary | None, rows: list[Row], fit: dict[str, Any] | None) -> Summary | None:
    """``summary`` with the curve of the pair `cascade fit` chose thresholds for, where the summary
    has none (it draws only a cheaper provider before a costlier one; a fit may pair two free ones)."""
    if summary is None or not fit or not isinstance(fit.get("tasks"), dict):
        return summary
    first, then = str(fit.get("first")), str(fit.get("then"))
    drawn = {(c.first, c.then, c.task) for c in summary.cascades}
    keyed = by_provider(rows, (first, then))
    extra = [
        Cascade.model_validate(found)
        for task in fit["tasks"]
        if (first, then, task) not in drawn and (found := cascade_of(first, then, str(task), keyed)) is not None
    ]
    return summary.model_copy(update={"cascades": [*summary.cascades, *extra]}) if extra else summary


def load_run(key: str, files: Files, samples: list[Sample] | None = None) -> Run:
    """The run in ``files``; ``samples``: its inputs as read before, when inputs.jsonl has not changed since."""
    problems: list[str] = []
    identity, why = read_json(files.run)
    if why:
        problems.append(why)
    fit, why = read_json(files.fit)
    if why:
        problems.append(why)
    running = is_being_written(files.folder)
    run = Run(
        key=key,
        files=files,
        identity=identity,
        samples=_read_samples(files, problems) if samples is None else samples,
        rows=_read_rows(files, running, problems),
        running=running,
        fit=fit,
        problems=problems,
        live=not files.summary.exists() or files.changed_ns(SUMMARY_FILE) < files.changed_ns(ROWS_FILE),
    )
    if len(problems) > SHOWN_PROBLEMS:
        run.problems = problems[:SHOWN_PROBLEMS] + [f"... and {len(problems) - SHOWN_PROBLEMS} more"]
    return run
