"""The sample browser's index of one run: each sample with every provider's row, filtered and paged.

Outcomes follow the summary's pairwise test: a row is ``correct`` when its score is at least 0.5 (a
verify answer is 0 or 1; a vqa accuracy over ten human answers can be in between), ``wrong`` below,
``error`` when the call failed; captions are scored as a corpus, so a caption row is ``unscored``. A
sample is a ``disagreement`` when the providers that answered it read different answers from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data.sample import Sample
from ..eval.rows import Row
from ..types import Task

__all__ = ["OUTCOMES", "Entry", "Filter", "index_samples", "outcome", "select"]

OUTCOMES = ("correct", "wrong", "error", "disagreement")


def outcome(row: Row) -> str:
    if row.error is not None:
        return "error"
    if row.unsupported:
        return "unsupported"
    if row.score is None:
        return "unscored"
    return "correct" if row.score >= 0.5 else "wrong"


def _said(row: Row) -> str | None:
    """What a row answered, as compared between providers (None: no comparable answer)."""
    if not row.ok or row.task is Task.CAPTION:
        return None
    if row.task is Task.VERIFY:
        return None if row.label is None else str(row.label)
    return row.answer if row.answer is not None else (row.prediction or "").strip().lower()


def _truth(sample: Sample | None) -> str:
    if sample is None:
        return ""
    if sample.task is Task.VERIFY:
        return str(sample.label).lower()
    if sample.task is Task.VQA:
        return " / ".join(dict.fromkeys(sample.answers or []))
    return (sample.references or [""])[0]


@dataclass
class Entry:
    id: str
    task: str
    type: str | None
    sample: Sample | None
    rows: dict[str, Row]
    outcomes: dict[str, str]
    disagree: bool
    #: lower-cased id, question, truth and answers, for the text search
    text: str

    def to_json(self) -> dict[str, Any]:
        sample = self.sample
        return {
            "id": self.id,
            "task": self.task,
            "type": self.type,
            "question": (sample.question or sample.statement or "") if sample else "",
            "choices": sample.choices if sample else None,
            "truth": _truth(sample),
            "picture": sample is not None,
            "disagree": self.disagree,
            "answers": {
                name: {
                    "outcome": self.outcomes[name],
                    "text": row.prediction,
                    "answer": row.answer if row.task is Task.VQA else row.label,
                    "score": row.score,
                    "confidence": row.confidence,
                    "latency_s": row.latency_s,
                    "service_s": row.service_s,
                    "cost_usd": row.cost_usd,
                    "cached": row.cached,
                    "error": row.error.message if row.error else None,
                    "warning": row.warning,
                }
                for name, row in self.rows.items()
            },
        }


def index_samples(samples: list[Sample], rows: list[Row], providers: list[str] | None = None) -> list[Entry]:
    """One entry per sample, in the run's order (its answers in ``providers``' order); rows of a
    sample the inputs lack come after."""
    rank = {name: i for i, name in enumerate(providers or [])}
    by_sample: dict[str, dict[str, Row]] = {}
    for row in sorted(rows, key=lambda r: rank.get(r.provider, len(rank))):
        by_sample.setdefault(row.sample_id, {})[row.provider] = row
    known = {s.id: s for s in samples}
    order = list(known) + [k for k in by_sample if k not in known]
    entries = []
    for key in order:
        mine = by_sample.get(key, {})
        sample = known.get(key)
        first = next(iter(mine.values()), None)
        said = {s for r in mine.values() if (s := _said(r)) is not None}
        words = [key, _truth(sample)]
        if sample is not None:
            words += [sample.question or "", sample.statement or ""]
        words += [r.prediction or "" for r in mine.values()]
        entries.append(
            Entry(
                id=key,
                task=sample.task.value if sample else first.task.value,  # type: ignore[union-attr]
                type=(sample.meta.get("type") if sample else None) or (first.type if first else None),
                sample=sample,
                rows=mine,
                outcomes={name: outcome(r) for name, r in mine.items()},
                disagree=len(said) > 1,
                text="\n".join(words).lower(),
            )
        )
    return entries


@dataclass(frozen=True)
class Filter:
    task: str | None = None
    type: str | None = None
    provider: str | None = None
    outcome: str | None = None
    text: str | None = None


def _keeps(entry: Entry, query: Filter) -> bool:
    if query.task and entry.task != query.task:
        return False
    if query.type and entry.type != query.type:
        return False
    if query.provider and query.provider not in entry.rows:
        return False
    if query.outcome == "disagreement":
        if not entry.disagree:
            return False
    elif query.outcome:
        which = [entry.outcomes[query.provider]] if query.provider else entry.outcomes.values()
        if query.outcome not in which:
            return False
    return not query.text or query.text.lower() in entry.text


def select(entries: list[Entry], query: Filter) -> list[Entry]:
    """The entries ``query`` keeps, in order."""
    if query == Filter():
        return entries
    return [e for e in entries if _keeps(e, query)]
