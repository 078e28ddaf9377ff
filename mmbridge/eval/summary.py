"""Turn rows into summary.json: metrics with 95% CIs per provider and task, by type, and per pair.

Schema ``mmbridge.eval.summary/1`` (stable; new keys may be added, none renamed):

    {"schema", "dataset", "seed", "providers": {NAME: {
        "tasks": {TASK: {"n", "answered", "errors", "error_rate", "unparsed", "unsupported",
                         "metrics": {METRIC: {"value", "ci95": [low, high]}},
                         "by_type": {TYPE: {"n", "metrics": {...}}}}},
        "latency_s": {"p50", "p95", "mean"}, "tokens": {"input", "output"},
        "cost_usd", "cost_per_1000"}},
     "pairs": [{"a", "b", "task", "metric", "n", "diff", "ci95", "p_value", "test"}]}

Metric names: ``vqa_accuracy`` (vqa), ``accuracy`` (verify), ``bleu1``..``bleu4``, ``cider``,
``rouge_l``, ``chair_i``, ``chair_s`` (caption; CHAIR only when samples carry ``meta.scene``).
Errors are left out of a provider's metrics and reported as ``error_rate``; a pair is compared
on the samples both answered.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any

import numpy as np

from ..data.sample import Sample
from .metrics.chair import chair_counts
from .metrics.text import bleu_from_stats, bleu_stats, cider_scores, rouge_l_scores
from .rows import Row
from .stats import bootstrap_ci, mcnemar_exact, mean_ci, paired_bootstrap

__all__ = ["MAIN_METRIC", "SCHEMA", "summarize"]

SCHEMA = "mmbridge.eval.summary/1"
MAIN_METRIC = {"vqa": "vqa_accuracy", "verify": "accuracy", "caption": "cider"}


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


def _task_summary(rows: list[Row], task: str, samples: dict[str, Sample], seed: int) -> dict[str, Any]:
    unsupported = bool(rows) and all(r.unsupported for r in rows)
    answered = [r for r in rows if not r.unsupported and r.error is None]
    errors = sum(1 for r in rows if r.error is not None)
    asked = len(rows) - sum(1 for r in rows if r.unsupported)
    unparsed = sum(1 for r in answered if task == "vqa" and r.answer is None or task == "verify" and r.label is None)
    metrics = _caption_metrics(answered, samples, seed) if task == "caption" else _scored(answered, task, seed)
    by_type: dict[str, Any] = {}
    groups: defaultdict[str, list[Row]] = defaultdict(list)
    for r in answered:
        groups[str(r.type)].append(r)
    if len(groups) > 1 or task != "caption":
        for kind, group in sorted(groups.items()):
            part = _caption_metrics(group, samples, seed) if task == "caption" else _scored(group, task, seed)
            by_type[kind] = {"n": len(group), "metrics": part}
    return {
        "n": len(rows),
        "answered": len(answered),
        "errors": errors,
        "error_rate": round(errors / asked, 6) if asked else None,
        "unparsed": unparsed,
        "unsupported": unsupported,
        "metrics": {} if unsupported else metrics,
        "by_type": {} if unsupported else by_type,
    }


def _pair(
    a: str, b: str, task: str, by_provider: dict[str, dict[str, Row]], samples: dict[str, Sample], seed: int
) -> dict[str, Any] | None:
    ra, rb = by_provider[a], by_provider[b]
    common = [k for k, r in ra.items() if r.task == task and k in rb and _ok(r) and _ok(rb[k])]
    if not common:
        return None
    metric = MAIN_METRIC[task]
    if task == "caption":
        refs = {k: samples[k].references or [] for k in common}
        sa = cider_scores({k: ra[k].prediction or "" for k in common}, refs)
        sb = cider_scores({k: rb[k].prediction or "" for k in common}, refs)
        diff, ci, p = paired_bootstrap(sa, sb, seed=seed)
        test = "paired_bootstrap"
    else:
        sa = np.array([ra[k].score for k in common], dtype=float)
        sb = np.array([rb[k].score for k in common], dtype=float)
        diff, ci, _ = paired_bootstrap(sa, sb, seed=seed)
        p = mcnemar_exact(sa >= 0.5, sb >= 0.5)  # a sample is right when its accuracy is at least 0.5
        test = "mcnemar_exact"
    return {
        "a": a,
        "b": b,
        "task": task,
        "metric": metric,
        "n": len(common),
        "diff": round(diff, 6),
        "ci95": [round(ci[0], 6), round(ci[1], 6)],
        "p_value": round(p, 6),
        "test": test,
    }


def _ok(row: Row) -> bool:
    return row.error is None and not row.unsupported


def summarize(
    rows: list[Row], samples: list[Sample], *, providers: list[str], dataset: str, seed: int = 0
) -> dict[str, Any]:
    """The summary.json document for ``rows`` (every provider, task, metric, and pair)."""
    by_id = {s.id: s for s in samples}
    rows = [r for r in rows if r.sample_id in by_id and r.provider in providers]
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "dataset": dataset,
        "seed": seed,
        "samples": len(samples),
        "providers": {},
        "pairs": [],
    }
    keyed: dict[str, dict[str, Row]] = {p: {} for p in providers}
    for r in rows:
        keyed[r.provider][r.sample_id] = r
    tasks = sorted({s.task.value for s in samples})
    for name in providers:
        mine = list(keyed[name].values())
        latencies = np.array([r.latency_s for r in mine if _ok(r) and r.latency_s is not None])
        costs = [r.cost_usd for r in mine if _ok(r) and r.cost_usd is not None]
        answered = sum(1 for r in mine if _ok(r))
        summary["providers"][name] = {
            "tasks": {t: _task_summary([r for r in mine if r.task == t], t, by_id, seed) for t in tasks},
            "latency_s": {
                "p50": round(float(np.percentile(latencies, 50)), 6) if len(latencies) else None,
                "p95": round(float(np.percentile(latencies, 95)), 6) if len(latencies) else None,
                "mean": round(float(latencies.mean()), 6) if len(latencies) else None,
            },
            "tokens": {
                "input": sum(r.input_tokens or 0 for r in mine),
                "output": sum(r.output_tokens or 0 for r in mine),
            },
            "cost_usd": round(sum(costs), 6) if costs else None,
            "cost_per_1000": round(sum(costs) / answered * 1000, 6) if costs and answered else None,
        }
    for a, b in itertools.combinations(providers, 2):
        for task in tasks:
            pair = _pair(a, b, task, keyed, by_id, seed)
            if pair is not None:
                summary["pairs"].append(pair)
    return summary
