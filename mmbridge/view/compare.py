"""Two runs side by side: per provider and task, the paired difference on the samples both answered,
and the samples whose outcome changed."""

from __future__ import annotations

from typing import Any

from ..eval.rows import by_provider
from ..eval.summary import paired_comparison
from .browse import outcome
from .runs import Run

__all__ = ["compare_runs"]

#: changed samples listed; the counts cover them all
SHOWN_CHANGES = 500


def compare_runs(a: Run, b: Run) -> dict[str, Any]:
    """``b`` against ``a`` (differences are b - a) for every provider name the two runs share."""
    shared = [name for name in a.providers if name in b.providers]
    samples = {s.id: s for s in a.samples} | {s.id: s for s in b.samples}
    same_samples = bool(a.identity and b.identity and a.identity.get("samples") == b.identity.get("samples"))
    keyed_a, keyed_b = by_provider(a.rows, shared), by_provider(b.rows, shared)
    pairs = []
    changes: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for name in shared:
        keyed = {"b": keyed_b[name], "a": keyed_a[name]}
        tasks = sorted({r.task.value for r in keyed_a[name].values()} & {r.task.value for r in keyed_b[name].values()})
        for task in tasks:
            compared = keyed
            if task == "caption":  # scored against references: only samples whose inputs are known
                compared = {k: {i: r for i, r in v.items() if i in samples} for k, v in keyed.items()}
            pair = paired_comparison("b", "a", task, compared, samples, seed=0)
            if pair is not None:
                pairs.append({**pair, "provider": name, "a": a.key, "b": b.key})
        for sample_id, row_a in keyed_a[name].items():
            row_b = keyed_b[name].get(sample_id)
            if row_b is None or (was := outcome(row_a)) == (now := outcome(row_b)):
                continue
            change = f"{was} -> {now}"
            counts[change] = counts.get(change, 0) + 1
            if len(changes) < SHOWN_CHANGES:
                changes.append({"sample_id": sample_id, "provider": name, "was": was, "now": now})
    for change in changes:
        sample = samples.get(change["sample_id"])
        change["question"] = (sample.question or sample.statement or "") if sample else ""
        change["answer_a"] = keyed_a[change["provider"]][change["sample_id"]].prediction
        change["answer_b"] = keyed_b[change["provider"]][change["sample_id"]].prediction
    return {
        "a": a.key,
        "b": b.key,
        "providers": shared,
        "same_samples": same_samples,
        "pairs": pairs,
        "changed": counts,
        "changes": changes,
    }
