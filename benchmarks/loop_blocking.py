"""How long does mmbridge block its event loop per request, in eval and in serve, with real-sized photos?

Target (issue 17, point 7): no single step of a request holds the loop over 1 ms of work (cache reads and
writes, image decode and hash, payload encoding, remote fetches); such work runs in a thread.
Every callback the loop runs is timed (asyncio's Handle._run, patched for the measurement; the
loops mmbridge runs on its own threads, such as the openai provider's for the SDK, are not the
caller's and are left out), and
for each scenario the benchmark prints the loop time a request costs in all, the longest single
step, and what the steps over 1 ms were.

Scenarios, each on 2048x1536 JPEG photos (a gradient plus noise, ~0.6 MB each):
  eval, cold cache: the openai provider against the loopback OpenAI-compatible server;
  eval, warm cache: the same again (every answer a hit);
  serve: base64 data URLs posted to `mmbridge serve` in front of the local model, cache on (the
         fake provider reads colours on the loop: a test double's own work, not serve's).

One request before each measurement warms up first-use costs (imports, lazy set-up), which are
paid once per process, not per request.

Run: python benchmarks/loop_blocking.py [--images 24]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import numpy as np
from PIL import Image as PILImage

from mmbridge import Client
from mmbridge.config import CacheConfig, Config
from mmbridge.eval.evaluate import evaluate

LIMIT_MS = 1.0


@contextmanager
def loop_steps() -> Iterator[list[tuple[float, float, str]]]:
    """Every asyncio callback run in the block, as (CPU ms of the loop's thread, wall ms, what it was)."""
    steps: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    original = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        if threading.current_thread().name.startswith("mmbridge-"):  # a portal's loop: kept busy on purpose
            original(handle)
            return
        cpu, wall = time.thread_time(), time.perf_counter()
        original(handle)
        cpu, wall = (time.thread_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000
        if wall > 0.05:
            callback = getattr(handle._callback, "__self__", None)  # a Task's step: name its coroutine
            coro = getattr(callback, "get_coro", lambda: None)()
            name = getattr(coro, "__qualname__", None) or repr(handle._callback)[:80]
            with lock:
                steps.append((cpu, wall, name))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield steps
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]


def photos(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        y, x = np.mgrid[0:1536, 0:2048]
        base = np.stack([(x * (i + 1)) % 256, (y * 3) % 256, ((x + y) // 8) % 256], -1)
        noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = folder / f"photo{i:03d}.jpg"
        PILImage.fromarray(noisy).save(path, quality=90)
        out.append(path)
    return out


def report(name: str, steps: list[tuple[float, float, str]], requests: int, first: str | None = None) -> None:
    """The verdict is on the loop thread's own CPU time per step: the work a step does on the loop.
    Wall time per step also counts waiting for the GIL while other threads (picture decoding, the
    SDK's loop) hold it; it is printed beside, not judged. ``first``: the name of the run's own
    coroutine, whose first step (the folder lock, the loop's first worker thread) is once per run
    and reported apart."""
    start = next((i for i, (_, _, what) in enumerate(steps) if what == first), None)
    if start is not None:
        print(f"{name}: start-up step {steps[start][0]:.2f} ms CPU, once per run (not judged)")
        steps = steps[:start] + steps[start + 1 :]
    total = sum(cpu for cpu, _, _ in steps)
    worst = max((cpu for cpu, _, _ in steps), default=0.0)
    worst_wall = max((wall for _, wall, _ in steps), default=0.0)
    over = collections.Counter(what for cpu, _, what in steps if cpu > LIMIT_MS)
    verdict = "PASS" if worst <= LIMIT_MS else "FAIL"
    print(f"{name}: {requests} requests, loop CPU {total / requests:.2f} ms a request (steps > 0.05 ms wall)")
    print(f"  longest step {worst:.2f} ms CPU (target <= {LIMIT_MS:g} ms): {verdict}")
    if steps:
        cpus = sorted(cpu for cpu, _, _ in steps)
        p99 = cpus[min(len(cpus) - 1, int(0.99 * len(cpus)))]
        print(
            f"  median step {statistics.median(cpus):.3f} ms CPU, 99th percentile {p99:.2f} ms; "
            f"longest wall {worst_wall:.2f} ms (GIL waits included)"
        )
    for what, n in over.most_common(6):
        longest = max(cpu for cpu, _, w in steps if w == what)
        print(f"  over {LIMIT_MS:g} ms: {n} x {what} (longest {longest:.1f} ms CPU)")


def eval_scenarios(images: list[Path], extra: Path, folder: Path) -> None:
    from mmbridge.testing import OpenAICompatibleServer

    data = folder / "photos.jsonl"
    rows = [
        {"id": f"q{i}", "image": p.name, "task": "vqa", "question": "What is it?", "answers": ["x"]}
        for i, p in enumerate(images)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with OpenAICompatibleServer(max_seconds=300) as server:
        config_file = folder / "mmbridge.toml"
        config_file.write_text(
            f'[cache]\ndir = "{folder / "cache"}"\n[providers.remote]\ntype = "openai"\nbase_url = "{server.url}"\n'
            'api_key_env = "LOOP_BENCH_KEY"\n'
        )
        import os

        os.environ["LOOP_BENCH_KEY"] = "unused"
        from mmbridge.config import load_config

        config = load_config(config_file)
        warm_up = folder / "warm-up.jsonl"  # first-use costs (imports, lazy set-up) are not per request
        warm_up.write_text(json.dumps({**rows[0], "image": str(extra)}) + "\n")
        asyncio.run(evaluate(["remote"], str(warm_up), folder / "warm-up", config=config, progress=False))
        for label in ("eval, cold cache", "eval, warm cache"):
            with loop_steps() as steps:
                asyncio.run(
                    evaluate(["remote"], str(data), folder / "run", config=config, progress=False, restart=True)
                )
            report(label, steps, len(images), first="evaluate")


def serve_scenario(images: list[Path], extra: Path, folder: Path) -> None:
    from mmbridge.serve import run

    # uvicorn picks uvloop, whose callbacks cannot be timed from Python: measure on asyncio's loop
    plain = run.uvicorn_config
    run.uvicorn_config = lambda app, limits, **options: plain(app, limits, **{**options, "loop": "asyncio"})

    urls = ["data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode() for p in [extra, *images]]
    client = Client("local", config=Config(cache=CacheConfig(dir=folder / "serve-cache")))
    with run.running_server(client, "local") as url, loop_steps() as steps:
        for number, image_url in enumerate(urls):
            if number == 1:  # the first request paid the first-use costs (imports, lazy set-up): not counted
                steps.clear()
            body = {
                "model": "local",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What shape is the red object?"},
                            {"type": "image_url", "image_url": {"url": image_url}},
                        ],
                    }
                ],
            }
            response = httpx2.post(f"{url}/chat/completions", json=body, timeout=60)
            assert response.status_code == 200, response.text
    client.close()
    report("serve (local model, cache on)", steps, len(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        *images, extra = photos(folder, args.images + 1)  # extra: a warm-up request's picture
        eval_scenarios(images, extra, folder)
        serve_scenario(images, extra, folder)


if __name__ == "__main__":
    main()
