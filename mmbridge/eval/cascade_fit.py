"""``mmbridge cascade fit``: choose a cascade's thresholds per task from an evaluation's rows.

For each task the threshold sweep of :func:`mmbridge.eval.cascade.cascade_curve` is searched for
the cheapest point that reaches ``target_accuracy``, or the most accurate point whose cost per
1,000 samples stays within ``budget_per_1000``. The accuracy it expects comes with a 95%
bootstrap interval over the samples (at the chosen threshold; the choice itself was made on the
same samples, so fit on a validation split and check on a test split).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..wrappers.cascade_rule import stays
from .cascade import cascade_curve, paired
from .rows import Row, by_provider

__all__ = ["fit_thresholds", "toml_table"]


def _choose(points: list[dict[str, Any]], target: float | None, budget: float | None) -> tuple[dict[str, Any], bool]:
    if target is not None:
        good = [p for p in points if p["accuracy"] >= target]
        if good:
            return min(good, key=lambda p: (p["cost_per_1000"], -p["accuracy"])), True
        return max(points, key=lambda p: (p["accuracy"], -p["cost_per_1000"])), False
    within = [p for p in points if p["cost_per_1000"] <= (budget or 0.0) + 1e-12]
    if within:
        return max(within, key=lambda p: (p["accuracy"], -p["cost_per_1000"])), True
    return min(points, key=lambda p: p["cost_per_1000"]), False


def fit_thresholds(
    rows: list[Row],
    first: str,
    then: str,
    *,
    target_accuracy: float | None = None,
    budget_per_1000: float | None = None,
    seed: int = 0,
    resamples: int = 2000,
) -> dict[str, dict[str, Any]]:
    """{task: {"threshold", "accuracy", "ci95", "cost_per_1000", "local_share", "n", "met"}} for
    every task where ``first`` reported confidences and both providers were scored."""
    if (target_accuracy is None) == (budget_per_1000 is None):
        raise ValueError("give exactly one of target_accuracy and budget_per_1000")
    keyed = by_provider(rows, (first, then))
    rng = np.random.default_rng(seed)
    out = {}
    for task in sorted({r.task.value for r in rows}):
        arrays = paired(first, then, task, keyed)
        if arrays is None:
            continue
        confidence, a, b, cost_a, cost_b = arrays
        point, met = _choose(cascade_curve(confidence, a, b, cost_a, cost_b), target_accuracy, budget_per_1000)
        threshold = point["threshold"]
        scores = np.where(stays(confidence, threshold), a, b)
        draws = rng.integers(0, len(scores), size=(resamples, len(scores)))
        low, high = np.percentile(scores[draws].mean(axis=1), [2.5, 97.5])
        out[task] = {**point, "ci95": [round(float(low), 6), round(float(high), 6)], "n": len(scores), "met": met}
    return out


def toml_table(name: str, first: str, then: str, fitted: dict[str, dict[str, Any]]) -> str:
    """The ``[providers.NAME]`` table to paste into mmbridge.toml. A task whose best choice is to
    always ask ``then`` gets no threshold (the cascade then never stops early on it)."""
    thresholds = ", ".join(f"{t} = {f['threshold']}" for t, f in fitted.items() if f["threshold"] is not None)
    return f'[providers.{name}]\ntype = "cascade"\nproviders = ["{first}", "{then}"]\nthresholds = {{{thresholds}}}\n'
