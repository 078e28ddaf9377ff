"""Is "the local model when sure, the API when not" worth it? A cascade fitted on validation, checked on test.

Targets (issue 16):
  on a shapes test split where the local model is imperfect (a checkpoint after --minutes of
  training, no scene help) and a stand-in API right 97% of the time at gpt-4o-mini's prices, the
  cascade with thresholds fitted on a separate validation split reaches at least the API's accuracy
  at <= 25% of its cost, and the local model answers >= 70% of the samples;
  the cascade's added latency for a locally answered request <= 1 ms over the local provider alone
  (paired, alternating calls; the median of the differences).
The stand-in (mmbridge.providers.standin) is not a model: it knows the answers and is right with
the stated probability; only its accuracy and price matter here. Both splits are vqa + verify.

Run: python benchmarks/cascade.py [--minutes 3] [--samples 1500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from mmbridge_torch.train import TrainOptions, train

from mmbridge import Client
from mmbridge.config import CacheConfig, Config, ProviderConfig
from mmbridge.eval.cascade import paired
from mmbridge.eval.cascade_fit import fit_thresholds
from mmbridge.eval.evaluate import evaluate
from mmbridge.eval.rows import read_rows
from mmbridge.wrappers import Cascade

SPEC = "builtin:shapes?split={}&images=6000&seed=21"
COST_SHARE, LOCAL_SHARE, LATENCY_MS = 0.25, 0.70, 1.0


def _config(cache: Path, checkpoint: Path, split: str) -> Config:
    providers = {
        "local": ProviderConfig(type="torch", checkpoint=str(checkpoint)),
        "api": ProviderConfig(type="standin", truth=SPEC.format(split), accuracy=0.97, cache_dir=str(cache)),
    }
    return Config(cache=CacheConfig(enabled=False, dir=cache), providers=providers)


def _evaluate(cache: Path, checkpoint: Path, split: str, out: Path, samples: int) -> list:
    config = _config(cache, checkpoint, split)
    asyncio.run(
        evaluate(["local", "api"], SPEC.format(split), out, tasks={"vqa", "verify"}, limit=samples, config=config)
    )
    return read_rows(out / "samples.jsonl")


def _on_test(rows: list, thresholds: dict[str, float | None]) -> tuple[float, float, float, float, float]:
    """(cascade accuracy, cascade cost, api accuracy, api cost, local share) over both tasks."""
    keyed: dict[str, dict] = {"local": {}, "api": {}}
    for r in rows:
        keyed[r.provider][r.sample_id] = r
    scores, costs, api_scores, api_costs, local = [], [], [], [], []
    for task in ("vqa", "verify"):
        confidence, a, b, cost_a, cost_b = paired("local", "api", task, keyed)
        threshold = thresholds.get(task)
        here = confidence >= (np.inf if threshold is None else threshold)
        scores += np.where(here, a, b).tolist()
        costs += (cost_a + np.where(here, 0.0, cost_b)).tolist()
        api_scores += b.tolist()
        api_costs += cost_b.tolist()
        local += here.tolist()
    return (
        float(np.mean(scores)),
        float(np.sum(costs)),
        float(np.mean(api_scores)),
        float(np.sum(api_costs)),
        float(np.mean(local)),
    )


def _latency(cache: Path, checkpoint: Path, image: Path, question: str, rounds: int = 300) -> float:
    """Median over paired, alternating calls of (cascade - local alone) in ms; the cascade's
    threshold 0 keeps every answer local."""
    config = _config(cache, checkpoint, "test")
    alone = Client("local", config=config)
    stages = [Client("local", config=config).provider, Client("api", config=config).provider]
    cascade = Client(Cascade(stages, {"vqa": 0.0}))
    diffs = []
    try:
        for i in range(rounds):
            timings = {}
            order = (("alone", alone), ("cascade", cascade)) if i % 2 else (("cascade", cascade), ("alone", alone))
            for name, client in order:
                start = time.perf_counter()
                client.ask(image, question)
                timings[name] = time.perf_counter() - start
            diffs.append((timings["cascade"] - timings["alone"]) * 1000)
    finally:
        alone.close()
        cascade.close()
    return statistics.median(diffs[20:])  # the first calls warm the model up


def main(minutes: float, samples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "ckpt"
        started = time.monotonic()
        train(
            TrainOptions(
                data=SPEC.format("train"),
                val=SPEC.format("val"),
                out=out,
                max_minutes=minutes,
                epochs=1000,
                cache_dir=cache,
                scene=False,
                validate_every_s=30,
            )
        )
        print(f"local model: {time.monotonic() - started:.0f} s of training (an early checkpoint, no scene help)")
        val_rows = _evaluate(cache, out / "best", "val", Path(tmp) / "val", samples)
        api_val = np.mean([r.score for r in val_rows if r.provider == "api" and r.score is not None])
        fitted = fit_thresholds(val_rows, "local", "api", target_accuracy=float(api_val))
        thresholds = {t: f["threshold"] for t, f in fitted.items()}
        print(f"thresholds fitted on validation (target: the API's {api_val:.3f}): {thresholds}")
        test_rows = _evaluate(cache, out / "best", "test", Path(tmp) / "test", samples)
        acc, cost, api_acc, api_cost, local = _on_test(test_rows, thresholds)
        local_alone = np.mean([r.score for r in test_rows if r.provider == "local" and r.score is not None])
        print(f"test: local alone {local_alone:.3f}; API alone {api_acc:.3f} for ${api_cost:.4f}")
        print(f"  cascade accuracy {acc:.3f}  target >= API {api_acc:.3f}: {'PASS' if acc >= api_acc else 'FAIL'}")
        share = cost / api_cost if api_cost else float("nan")
        print(
            f"  cascade cost ${cost:.4f} = {share:.1%} of the API's  target <= {COST_SHARE:.0%}: "
            f"{'PASS' if share <= COST_SHARE else 'FAIL'}"
        )
        print(
            f"  answered locally {local:.1%}  target >= {LOCAL_SHARE:.0%}: {'PASS' if local >= LOCAL_SHARE else 'FAIL'}"
        )
        sample = next(r for r in test_rows if r.provider == "local" and r.task.value == "vqa")
        from mmbridge.data import load_dataset

        image, question = next(
            (s.image, s.question)
            for s in load_dataset(SPEC.format("test"), cache_dir=cache)
            if s.id == sample.sample_id
        )
        added = _latency(cache, out / "best", image, question)
        print(
            f"  added latency, locally answered: {added:.3f} ms (median of paired differences)  "
            f"target <= {LATENCY_MS} ms: {'PASS' if added <= LATENCY_MS else 'FAIL'}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="training of the local model (an early checkpoint)")
    parser.add_argument("--samples", type=int, default=1500, help="samples per task on each split")
    args = parser.parse_args()
    main(args.minutes, args.samples)
