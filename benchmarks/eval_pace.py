"""Does evaluation keep the local model busy? Its eval throughput against its own client.batch.

Target (issue 17, point 5): evaluating the local model on 2,000 shapes samples runs at >= 80% of
its client.batch throughput, alone and beside a 50 ms-latency API provider (a fake with
delay_s = 0.05 at 16 calls at once, standing in for an API), since each provider runs at its own
pace. Beside the API, the local model's throughput is its 2,000 rows over the time its last row
arrived. The three measurements alternate round by round and the verdict is on medians: this
machine's speed drifts by tens of percent within minutes. The cache is off throughout.

Run: python benchmarks/eval_pace.py [--samples 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mmbridge import Client, Response
from mmbridge.config import CacheConfig, Config
from mmbridge.data import load_dataset
from mmbridge.eval.runner import run_eval
from mmbridge.provider import WrapperProvider

TARGET = 0.80
NO_CACHE = Config(cache=CacheConfig(enabled=False))


class LastAnswer(WrapperProvider):
    """Records when its provider gave its latest answer."""

    last = 0.0

    async def generate(self, request: Any) -> Response:
        response = await self.inner.generate(request)
        self.last = time.perf_counter()
        return response


def batch_rate(client: Client, samples: list) -> float:
    start = time.perf_counter()
    requests = [s.to_request(client.image(s.image)) for s in samples]  # as the runner builds them
    results = client.batch(requests, concurrency=256, cache=False, progress=False)
    assert all(isinstance(r, Response) for r in results), [r for r in results if not isinstance(r, Response)][:3]
    return len(samples) / (time.perf_counter() - start)


def eval_rate(local: Client, samples: list, api: Client | None) -> float:
    timed = LastAnswer(local.provider)
    clients = {"local": Client(timed, config=NO_CACHE)}
    paces = {"local": 256}
    if api is not None:
        clients["api"], paces["api"] = api, 16
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows, _ = asyncio.run(run_eval(clients, samples, Path(out), concurrency=paces, progress=False))
    assert sum(1 for r in rows if r.provider == "local" and r.ok) == len(samples)
    return len(samples) / (timed.last - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        pool = list(load_dataset(f"builtin:shapes?split=test&images={args.samples * 3 // 2}&seed=5", cache_dir=cache))
        samples = pool[: args.samples]
        local = Client("local", config=NO_CACHE)
        api = Client("fake", config=NO_CACHE, delay_s=0.05)
        batch_rate(local, samples[:300])  # warm up: threads, allocator, first-call costs
        rates: dict[str, list[float]] = {"client.batch": [], "eval alone": [], "eval beside the API": []}
        for round_ in range(args.rounds):
            rates["client.batch"].append(batch_rate(local, samples))
            rates["eval alone"].append(eval_rate(local, samples, None))
            rates["eval beside the API"].append(eval_rate(local, samples, api))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items()), flush=True)
        local.close()
        api.close()
    base = statistics.median(rates["client.batch"])
    print(f"local model, {len(samples)} shapes samples, medians of {args.rounds} alternating rounds:")
    print(f"  client.batch:         {base:7.0f} samples/s")
    for name in ("eval alone", "eval beside the API"):
        rate = statistics.median(rates[name])
        verdict = "PASS" if rate / base >= TARGET else "FAIL"
        print(f"  {name + ':':21s} {rate:7.0f} samples/s = {rate / base:.0%} (target >= {TARGET:.0%}): {verdict}")


if __name__ == "__main__":
    main()
