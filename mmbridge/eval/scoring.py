"""Scoring, in one place for every task: per sample for vqa and verify, as a corpus for captions.

The runner stores each vqa and verify row's score as it writes the row; the summary asks here
for every metric, and for the per-sample scores that paired comparisons use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..data.sample import Sample
from ..types import Response, Task
from .metrics.chair import chair_counts
from .metrics.text import bleu_from_stats, bleu_stats, cider_scores, rouge_l_scores
from .metrics.vqa import vqa_accuracy
from .rows import Row
from .stats import bootstrap_ci, mean_ci

__all__ = ["MAIN_METRIC", "paired_scores", "sample_score", "task_metrics"]

#: the metric a task is compared on
MAIN_METRIC = {"vqa": "vqa_accuracy", "verify": "accuracy", "caption": "cider"}


def sample_score(sample: Sample, response: Response) -> float | None:
    """The per-sample score of vqa (VQA accuracy) and verify (1 or 0); captions are scored as a corpus."""
    if sample.task is Task.VQA:
        return vqa_accuracy(response.answer, sample.answers or [])
    if sample.task is Task.VERIFY:
        return float(response.label is not None and response.label == sample.label)
    return None


def task_metrics(rows: list[Row], task: str, samples: dict[str, Sample], seed: int) -> dict[str, Any]:
    """Every metric of ``task`` over answered ``rows``, each with a seeded 95% bootstrap interval."""
    return _caption_metrics(rows, samples, seed) if task == "caption" else _scored(rows, task, seed)


def paired_scores(
    task: str, a: dict[str, Row], b: dict[str, Row], keys: list[str], samples: dict[str, Sample]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample scores of two providers on the same ``keys`` (CIDEr-D for captions)."""
    if task == "caption":
        refs = {k: samples[k].references or [] for k in keys}
        return (
            cider_scores({k: a[k].prediction or "" for k in keys}, refs),
            cider_scores({k: b[k].prediction or "" for k in keys}, refs),
        )
    return np.array([a[k].score for k in keys], dtype=float), np.array([b[k].score for k in keys], dtype=float)


def _metric(value: float, ci: tuple[float, float]) -> dict[str, Any]:
    clean = [None if math.isnan(x) else round(x, 6) for x in ci]
    return {"value": None if math.isnan(value) else round(float(value), 6), "ci95": clean}


def _scored(rows: list[Row], task: str, seed: int) -> dict[str, Any]:
    scores = np.array([r.score for r in rows], dtype=float)
    name = MAIN_METRIC[task]
    return {name: _metric(scores.mean() if len(scores) else math.nan, mean_ci(scores, seed=seed))}


def _caption_metrics(rows: list[Row], samples: dict[str, Sample], seed: int) -> dict[str, Any]:
    hyps = {r.sample_id: r.prediction or "" for r in rows}
    refs = {r.sample_id: samples[r.sample_id].references or [] for r in rows}
    if not hyps:
        return {}
    stats = bleu_stats(hyps, refs)
    metrics: dict[str, Any] = {}
    values = bleu_from_stats(stats)
    for k in range(4):
        ci = bootstrap_ci(len(stats), lambda idx, k=k: bleu_from_stats(stats[idx])[k], seed=seed)
        metrics[f"bleu{k + 1}"] = _metric(values[k], ci)
    per_cider, per_rouge = cider_scores(hyps, refs), rouge_l_scores(hyps, refs)
    metrics["cider"] = _metric(per_cider.mean(), mean_ci(per_cider, seed=seed))
    metrics["rouge_l"] = _metric(per_rouge.mean(), mean_ci(per_rouge, seed=seed))
    scenes = {k: samples[k].meta.get("scene") for k in hyps}
    if all(scenes.values()):
        mentioned, bad = (np.array(x, dtype=float) for x in chair_counts(hyps, scenes))  # type: ignore[arg-type]

        def ratio(idx: np.ndarray) -> float:
            total = mentioned[idx].sum()
            return float(bad[idx].sum() / total) if total else 0.0

        flagged = (bad > 0).astype(float)
        metrics["chair_i"] = _metric(ratio(np.arange(len(bad))), bootstrap_ci(len(bad), ratio, seed=seed))
        metrics["chair_s"] = _metric(flagged.mean(), mean_ci(flagged, seed=seed))
    return metrics
