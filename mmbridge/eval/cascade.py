"""What a cascade of two evaluated providers would score and cost, from the rows already there.

For every pair of a cheaper provider that reports ``confidence`` and a costlier one, and every
task scored per sample (vqa, verify), on the samples both were asked, met as the live cascade
would meet them (the rule of :mod:`mmbridge.wrappers.cascade_rule`: an error, an unparsed answer
or a missing confidence at the first stage always escalates; an error at the second scores 0):

- ``points``: for each threshold, the accuracy and cost per 1,000 samples if the first provider
  answers when the rule keeps its answer and the second answers otherwise (the second is paid
  only for what it is asked), and the share answered by the first;
- ``single``: each provider alone, as a point on the same axes;
- ``matches_best``: the cheapest point at least as accurate as the better single provider;
- ``coverage_at_1pct_risk``: the largest share the first provider can answer, most confident
  first, with at most 1% of those answers wrong, and the threshold that gives it.

No call is made: everything comes from ``samples.jsonl``. Listed in summary.json as ``cascades``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..wrappers.cascade_rule import stays, sureness
from .rows import Row

__all__ = ["cascade_analysis", "cascade_curve", "cascade_of", "paired"]

MAX_POINTS = 101
RISK = 0.01
#: the tasks scored per sample, where a cascade's accuracy can be counted
SCORED = ("vqa", "verify")


def _cost_per_1000(rows: list[Row]) -> float:
    return sum(r.cost_usd or 0.0 for r in rows) / max(len(rows), 1) * 1000


def cascade_curve(
    confidence: np.ndarray, first: np.ndarray, second: np.ndarray, cost_first: np.ndarray, cost_second: np.ndarray
) -> list[dict[str, float]]:
    """Accuracy, cost per 1,000 and local share for each threshold (at most MAX_POINTS of them,
    taken at quantiles of the confidences that can stay, plus "always escalate"); ``confidence`` is
    each first answer's ``sureness``."""
    n = len(confidence)
    levels = np.linspace(0, 1, MAX_POINTS - 1)  # thresholds are confidences that occur, not interpolated
    finite = confidence[np.isfinite(confidence)]
    candidates = np.unique(np.quantile(finite, levels, method="lower")) if len(finite) else np.array([])
    points = []
    for threshold in [*candidates.tolist(), float("inf")]:
        local = stays(confidence, threshold)
        score = np.where(local, first, second)
        cost = cost_first.sum() + cost_second[~local].sum()
        points.append(
            {
                "threshold": None if threshold == float("inf") else round(float(threshold), 6),
                "accuracy": round(float(score.mean()), 6),
                "cost_per_1000": round(float(cost / n * 1000), 6),
                "local_share": round(float(local.mean()), 6),
            }
        )
    return points


def _coverage(confidence: np.ndarray, first: np.ndarray) -> dict[str, float | None]:
    order = np.argsort(-confidence, kind="stable")
    order = order[np.isfinite(confidence[order])]  # an answer that can never stay covers nothing
    ranked = confidence[order]
    risk = np.cumsum(1 - first[order]) / np.arange(1, len(order) + 1)
    # a threshold takes every sample of equal confidence or none: cut only where confidence drops
    cut = np.append(ranked[1:] != ranked[:-1], True)
    ok = np.nonzero((risk <= RISK) & cut)[0]
    if not len(ok):
        return {"share": 0.0, "threshold": None}
    k = int(ok.max())
    return {"share": round((k + 1) / len(confidence), 6), "threshold": round(float(ranked[k]), 6)}


def paired(a: str, b: str, task: str, keyed: dict[str, dict[str, Row]]) -> tuple[np.ndarray, ...] | None:
    """(sureness of a, score of a, score of b, cost of a, cost of b) on the samples of ``task`` (vqa
    or verify) both were asked; a failed or unscored answer scores 0. None when there are none, or
    when ``a`` gave no confidence at all (no threshold could ever keep its answers)."""
    both = [
        (ra, keyed[b][sid])
        for sid, ra in keyed[a].items()
        if ra.task == task and not ra.unsupported and sid in keyed[b] and not keyed[b][sid].unsupported
    ]
    if task not in SCORED or not any(ra.confidence is not None and ra.ok for ra, _ in both):
        return None
    return (
        np.array([sureness(ra.confidence, ra.parsed, failed=ra.error is not None) for ra, _ in both]),
        np.array([ra.score or 0.0 for ra, _ in both], dtype=float),
        np.array([rb.score or 0.0 for _, rb in both], dtype=float),
        np.array([ra.cost_usd or 0.0 for ra, _ in both]),
        np.array([rb.cost_usd or 0.0 for _, rb in both]),
    )


def cascade_of(a: str, b: str, task: str, keyed: dict[str, dict[str, Row]]) -> dict[str, Any] | None:
    """``a`` then ``b`` on ``task``: the threshold sweep, each alone, the cheapest point as good as the
    better one, the share ``a`` answers at 1% risk; None where they share no scored sample."""
    arrays = paired(a, b, task, keyed)
    if arrays is None:
        return None
    confidence, first, second, cost_a, cost_b = arrays
    points = cascade_curve(confidence, first, second, cost_a, cost_b)
    single = {
        a: {"accuracy": round(float(first.mean()), 6), "cost_per_1000": round(float(cost_a.mean() * 1000), 6)},
        b: {"accuracy": round(float(second.mean()), 6), "cost_per_1000": round(float(cost_b.mean() * 1000), 6)},
    }
    best = max(first.mean(), second.mean())
    matching = [p for p in points if p["accuracy"] >= round(float(best), 6)]
    return {
        "first": a,
        "then": b,
        "task": task,
        "n": len(confidence),
        "points": points,
        "single": single,
        "matches_best": min(matching, key=lambda p: (p["cost_per_1000"], -p["local_share"])) if matching else None,
        "coverage_at_1pct_risk": _coverage(confidence, first),
    }


def cascade_analysis(keyed: dict[str, dict[str, Row]], providers: list[str], tasks: list[str]) -> list[dict[str, Any]]:
    """Every pair of a cheaper provider that reports confidence and a costlier one."""
    out = []
    for x, y in itertools.combinations(providers, 2):
        cost = {p: _cost_per_1000([r for r in keyed[p].values() if r.ok]) for p in (x, y)}
        a, b = sorted((x, y), key=lambda p: cost[p])
        if cost[a] >= cost[b] or not any(r.confidence is not None for r in keyed[a].values()):
            continue
        for task in tasks:
            found = cascade_of(a, b, task, keyed)
            if found is not None:
                out.append(found)
    return out
