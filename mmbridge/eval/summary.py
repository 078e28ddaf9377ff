"""Turn rows into summary.json: metrics with 95% CIs per provider and task, by type, and per pair.

The document is :class:`mmbridge.eval.summary_model.Summary` (schema ``mmbridge.eval.summary/3``;
``Summary.model_json_schema()`` is its JSON schema): per provider, each task's counts, metrics and
breakdown by type, latency, tokens and cost; the pairs of providers compared on the samples both
answered; and the cascades the rows allow (see eval/cascade.py).

Each line of samples.jsonl is a :class:`mmbridge.eval.rows.Row`; ``Row.model_json_schema()``
is its JSON schema.

Metric names: ``vqa_accuracy`` (vqa), ``accuracy`` (verify), ``bleu1``..``bleu4``, ``cider``,
``rouge_l``, ``chair_i``, ``chair_s`` (caption; CHAIR only when samples carry ``meta.scene``).
Errors are left out of a provider's metrics and reported as ``error_rate``; a pair is compared
on the samples both answered.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np

from ..data.sample import Sample
from .cascade import cascade_analysis
from .rows import Row, by_provider
from .scoring import MAIN_METRIC, paired_scores, task_metrics
from .stats import expected_calibration_error, mcnemar_exact, paired_bootstrap
from .summary_model import SCHEMA, Summary

__all__ = ["MAIN_METRIC", "SCHEMA", "failed_providers", "paired_comparison", "summarize"]


def _calibration_error(rows: list[Row]) -> float | None:
    """ECE of the confidences the provider reported against its per-sample scores; None without them."""
    sure = [(r.confidence, r.score) for r in rows if r.confidence is not None and r.score is not None]
    if not sure:
        return None
    return round(expected_calibration_error(*(np.array(x, dtype=float) for x in zip(*sure, strict=True))), 6)


def _task_summary(rows: list[Row], task: str, samples: dict[str, Sample], seed: int) -> dict[str, Any]:
    unsupported = bool(rows) and all(r.unsupported for r in rows)
    answered = [r for r in rows if r.ok]
    errors = sum(1 for r in rows if r.error is not None)
    asked = len(rows) - sum(1 for r in rows if r.unsupported)
    unparsed = sum(1 for r in answered if task == "vqa" and r.answer is None or task == "verify" and r.label is None)
    metrics = task_metrics(answered, task, samples, seed)
    by_type: dict[str, Any] = {}
    groups: defaultdict[str, list[Row]] = defaultdict(list)
    for r in answered:
        groups[str(r.type)].append(r)
    if len(groups) > 1 or task != "caption":
        for kind, group in sorted(groups.items()):
            part = task_metrics(group, task, samples, seed)
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
        "calibration_error": _calibration_error(answered),
    }


def _spread(seconds: np.ndarray) -> dict[str, float | None]:
    if not len(seconds):
        return {"p50": None, "p95": None, "mean": None}
    return {
        "p50": round(float(np.percentile(seconds, 50)), 6),
        "p95": round(float(np.percentile(seconds, 95)), 6),
        "mean": round(float(seconds.mean()), 6),
    }


#: a longer gap between answers is a pause between runs (a killed run resumed later), not work
PAUSE_S = 60.0


def answers_per_second(rows: list[Row]) -> float | None:
    """Answers a second over the time they were being made: from the first call's start to the
    last answer, the pauses between resumed runs left out; None with fewer than two answers."""
    times = sorted((r.answered_at, r.latency_s or 0.0) for r in rows if r.answered_at is not None)
    if len(times) < 2:
        return None
    busy, start, last = 0.0, times[0][0] - times[0][1], times[0][0]
    for at, latency in times[1:]:
        if at - last > PAUSE_S:  # a new session: close the span, open another at this call's start
            busy, start = busy + (last - start), at - latency
        last = at
    busy += last - start
    return round(len(times) / busy, 3) if busy > 0 else None


def paired_comparison(
    a: str, b: str, task: str, by_provider: dict[str, dict[str, Row]], samples: dict[str, Sample], seed: int
) -> dict[str, Any] | None:
    """``a`` against ``b`` on ``task``'s samples both answered: the mean difference of their scores
    with its 95% CI and a p-value (exact McNemar, or a paired bootstrap for captions); None if none."""
    ra, rb = by_provider[a], by_provider[b]
    common = [k for k, r in ra.items() if r.task == task and k in rb and r.ok and rb[k].ok]
    if not common:
        return None
    metric = MAIN_METRIC[task]
    sa, sb = paired_scores(task, ra, rb, common, samples)
    if task == "caption":
        diff, ci, p = paired_bootstrap(sa, sb, seed=seed)
        test = "paired_bootstrap"
    else:
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


def summarize(
    rows: list[Row],
    samples: list[Sample],
    *,
    providers: list[str],
    dataset: str,
    seed: int = 0,
    reasked_errors: int = 0,
    batch: frozenset[str] = frozenset(),
) -> Summary:
    """The summary for ``rows`` (every provider, task, metric, and pair); ``batch``: the providers
    that answered through the Batch API, ``reasked_errors``: error rows of an earlier run asked again."""
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
    keyed = by_provider(rows, providers)
    tasks = sorted({s.task.value for s in samples})
    for name in providers:
        mine = list(keyed[name].values())
        latencies = np.array([r.latency_s for r in mine if r.ok and r.latency_s is not None])
        served = np.array([r.service_s for r in mine if r.ok and not r.cached and r.service_s is not None])
        costs = [r.cost_usd for r in mine if r.ok and r.cost_usd is not None]
        answered = sum(1 for r in mine if r.ok)
        summary["providers"][name] = {
            "tasks": {t: _task_summary([r for r in mine if r.task == t], t, by_id, seed) for t in tasks},
            "latency_s": _spread(latencies),
            "service_s": _spread(served),
            "answers_per_s": answers_per_second([r for r in mine if r.ok and not r.cached]),
            "tokens": {
                "input": sum(r.input_tokens or 0 for r in mine),
                "output": sum(r.output_tokens or 0 for r in mine),
            },
            "cost_usd": round(sum(costs), 6) if costs else None,
            "cost_per_1000": round(sum(costs) / answered * 1000, 6) if costs and answered else None,
            "batch": name in batch,
        }
    for a, b in itertools.combinations(providers, 2):
        for task in tasks:
            pair = paired_comparison(a, b, task, keyed, by_id, seed)
            if pair is not None:
                summary["pairs"].append(pair)
    summary["cascades"] = cascade_analysis(keyed, providers, tasks)
    summary["reasked_errors"] = reasked_errors
    return Summary.model_validate(summary)


def failed_providers(summary: Summary) -> list[str]:
    """The providers of ``summary`` that answered nothing and failed at least once: a bad key, a dead
    server, a model that does not exist (a provider that does no task of the run fails nothing)."""
    return [name for name, entry in summary.providers.items() if entry.answered_nothing]
