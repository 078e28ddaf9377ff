"""The Ray executor against the local one: API throughput, scaling with actors, and the local model.

Targets (issue 14):
  1. 2,000 samples against the loopback OpenAI-compatible server at 50 ms latency: the Ray executor
     with 2 actors on this 2-core machine reaches >= 80% of the local executor's throughput, with
     the same calls in flight in all (local: 16; Ray: 2 actors x 8);
  2. the same at 200 ms latency with 1, 2 and 4 actors, each at 8 calls at once: throughput scales
     >= 1.8x from 1 to 2 actors and >= 3.2x from 1 to 4;
  3. the local model on 2,000 shapes samples: Ray with 1 actor (given both cores) >= 70% of the
     local executor.
Throughput is the steady rate: the rows written to samples.jsonl after the first ones appeared, over
the time from then to the last (a thread watches the file). Start-up is reported apart: the
cluster's (ray.init, once) and each run's time to its first rows (actors start and build their
providers, the local model loads, the first block is answered). End-to-end times are printed too.

Run: python benchmarks/ray_eval.py [--samples 2000] [--scaling-samples 800]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from pathlib import Path

from mmbridge.config import CacheConfig, Config, ProviderConfig
from mmbridge.distributed import RayOptions
from mmbridge.eval.evaluate import evaluate
from mmbridge.testing import OpenAICompatibleServer


class RowClock:
    """When each line of a samples.jsonl appeared (polled every 5 ms)."""

    def __init__(self, path: Path) -> None:
        self.path, self.times, self._stop = path, [], threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        seen = 0
        while not self._stop.is_set():
            count = self.path.read_bytes().count(b"\n") if self.path.exists() else 0
            now = time.perf_counter()
            self.times.extend([now] * (count - seen))
            seen = max(seen, count)
            time.sleep(0.005)

    def __enter__(self) -> RowClock:
        self.start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.02)
        self._stop.set()
        self._thread.join()

    def steady(self) -> float:
        """Rows per second after the first rows arrived (start-up and the first block left out)."""
        first = self.times[0]
        later = [t for t in self.times if t > first]
        return len(later) / (later[-1] - first)

    def first(self) -> float:
        return self.times[0] - self.start


def run(names: list[str], dataset: str, config: Config, out: Path, executor: RayOptions | None, pace: int) -> RowClock:
    with RowClock(out / "samples.jsonl") as clock:
        asyncio.run(
            evaluate(
                names, dataset, out, config=config, progress=False, concurrency=pace, executor=executor, restart=True
            )
        )
    clock.end = time.perf_counter() - clock.start
    return clock


def line(label: str, clock: RowClock) -> str:
    return (
        f"{label}: {clock.steady():7.1f} rows/s steady; first row after {clock.first():.1f} s; {clock.end:.1f} s in all"
    )


def api(work: Path, samples: int, scaling_samples: int) -> None:
    spec = f"builtin:shapes?split=test&images={samples * 5 // 4}&seed=3"
    with OpenAICompatibleServer(latency_s=0.05, max_seconds=1200) as server:
        config = Config(
            cache=CacheConfig(enabled=False), providers={"gpt": ProviderConfig(type="openai", base_url=server.url)}
        )
        local = run(["gpt"], spec, config, work / "local", None, 16)
        on_ray = run(["gpt"], spec, config, work / "ray", RayOptions(actors=2, block_rows=128), 8)
    ratio = on_ray.steady() / local.steady()
    print(f"1. {samples:,} samples, 50 ms latency, 16 calls in flight in all")
    print("   " + line("local executor, 16 at once ", local))
    print("   " + line("Ray, 2 actors x 8 at once  ", on_ray))
    print(f"   Ray / local = {ratio:.0%} (target >= 80%): {'PASS' if ratio >= 0.8 else 'FAIL'}")
    spec = f"builtin:shapes?split=test&images={scaling_samples * 5 // 4}&seed=4"
    rates = {}
    with OpenAICompatibleServer(latency_s=0.2, max_seconds=1200) as server:
        config = Config(
            cache=CacheConfig(enabled=False), providers={"gpt": ProviderConfig(type="openai", base_url=server.url)}
        )
        print(f"2. {scaling_samples:,} samples, 200 ms latency, each actor 8 calls at once")
        for actors in (1, 2, 4):
            options = RayOptions(actors=actors, actor_cpus=0.25, block_rows=16)
            clock = run(["gpt"], spec, config, work / f"scale{actors}", options, 8)
            rates[actors] = clock.steady()
            print("   " + line(f"{actors} actor(s)", clock))
    two, four = rates[2] / rates[1], rates[4] / rates[1]
    print(f"   1 -> 2 actors: {two:.2f}x (target >= 1.8x): {'PASS' if two >= 1.8 else 'FAIL'}")
    print(f"   1 -> 4 actors: {four:.2f}x (target >= 3.2x): {'PASS' if four >= 3.2 else 'FAIL'}")


def local_model(work: Path, samples: int) -> None:
    spec = f"builtin:shapes?split=test&images={samples * 5 // 4}&seed=5"
    config = Config(cache=CacheConfig(enabled=False))
    local = run(["local"], spec, config, work / "model-local", None, 512)
    on_ray = run(["local"], spec, config, work / "model-ray", RayOptions(actors=1, actor_cpus=2, block_rows=512), 512)
    ratio = on_ray.steady() / local.steady()
    print(f"3. the local model, {samples:,} shapes samples")
    print("   " + line("local executor      ", local))
    print("   " + line("Ray, 1 actor, 2 CPUs", on_ray))
    print(f"   Ray / local = {ratio:.0%} (target >= 70%): {'PASS' if ratio >= 0.7 else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--scaling-samples", type=int, default=800)
    args = parser.parse_args()
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"cluster start-up (ray.init, a local 2-CPU cluster): {time.perf_counter() - start:.1f} s, not counted")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            api(Path(tmp), args.samples, args.scaling_samples)
            local_model(Path(tmp), args.samples)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
