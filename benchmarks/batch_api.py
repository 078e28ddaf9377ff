"""What `mmbridge eval --batch` costs the client, and whether a kill while polling loses or repeats anything.

Targets (issue 15):
  10,000 requests with 256x256 PNG pictures: client-side CPU to build, upload and merge <= 2 ms per
  request; the input file is streamed, so peak memory grows by < 200 MB for a 190 MB file;
  a kill -9 during polling and a rerun: 0 lines submitted twice, every sample answered once.
The Batch API is the loopback server (mmbridge.testing), run as its own process so that its work
and memory are not counted as the client's. CPU is the client process's (all threads) over the
runner's whole offline path: cache lookups, building the lines, upload, polling, reading the
results, cache writes and rows; loading the dataset and writing the reports are left out.

Run: python benchmarks/batch_api.py [--requests 10000] [--kill-requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from mmbridge import Client
from mmbridge.config import CacheConfig, Config, ProviderConfig
from mmbridge.data import load_dataset
from mmbridge.eval.runner import run_eval

CPU_MS, MEMORY_MB = 2.0, 200.0


def _pictures(folder: Path, count: int, noisy_rows: int, side: int = 256) -> Path:
    """``count`` distinct PNGs (flat, with ``noisy_rows`` rows of noise: about 14 KB each at 18) and a
    JSONL dataset of one vqa question per picture."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        pixels = np.full((side, side, 3), (30 + i % 200, 90, 160), np.uint8)
        pixels[:noisy_rows] = rng.integers(0, 256, (noisy_rows, side, 3), dtype=np.uint8)
        name = f"{i:06d}.png"
        PILImage.fromarray(pixels).save(folder / name, compress_level=1)
        rows.append(
            {"id": f"q{i}", "task": "vqa", "image": name, "question": "What color is the picture?", "answers": ["blue"]}
        )
    data = folder / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def _server(batch_seconds: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mmbridge.testing.openai_server", "--batch-seconds", str(batch_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as response:
        return json.load(response)


def _config(url: str, cache: Path) -> Config:
    options = {"base_url": url, "batch": True, "batch_poll_s": 0.25}
    return Config(cache=CacheConfig(dir=cache), providers={"gpt": ProviderConfig(type="openai", **options)})


def _memory_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def cost(requests: int, work: Path) -> None:
    data = _pictures(work / "pictures", requests, noisy_rows=18)
    process, url = _server(batch_seconds=2.0)
    try:
        samples = list(load_dataset(str(data), cache_dir=work / "ds"))
        clients = {"gpt": Client("gpt", config=_config(url, work / "cache"))}
        (work / "out").mkdir()
        Path("/proc/self/clear_refs").write_text("5")  # restart the peak-memory count (VmHWM) here
        before_mb, cpu, wall = _memory_mb("VmRSS"), time.process_time(), time.perf_counter()
        rows, _ = asyncio.run(run_eval(clients, samples, work / "out", progress=False, offline=frozenset({"gpt"})))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        grew = _memory_mb("VmHWM") - before_mb
        clients["gpt"].close()
        state = json.loads((work / "out" / "batches" / "gpt.json").read_text())
        inputs = _stats(url)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    answered = sum(1 for r in rows if r.ok)
    per_request = cpu / requests * 1000
    print(f"{requests:,} requests, {len(state['batches'])} input file(s); {answered:,} answered; {wall:.1f} s wall")
    sizes = ", ".join(f"{size / 1e6:.0f} MB" for size in inputs["batch_input_bytes"])
    print(f"  input lines uploaded: {inputs['batch_lines']:,}, in files of {sizes}")
    verdict = "PASS" if per_request <= CPU_MS else "FAIL"
    print(f"  client CPU per request: {per_request:.3f} ms   (target <= {CPU_MS} ms)  {verdict}")
    print(
        f"  peak memory growth: {grew:.0f} MB   (target < {MEMORY_MB:.0f} MB)  {'PASS' if grew < MEMORY_MB else 'FAIL'}"
    )


def kill_and_rerun(requests: int, work: Path) -> None:
    data = _pictures(work / "small", requests, noisy_rows=2, side=64)
    process, url = _server(batch_seconds=6.0)
    config = work / "mmbridge.toml"
    config.write_text(
        f'[cache]\ndir = "{work / "kcache"}"\n[providers.gpt]\ntype = "openai"\nbase_url = "{url}"\n'
        "batch = true\nbatch_poll_s = 0.2\n"
    )
    out = work / "killed"
    command = [sys.executable, "-m", "mmbridge.cli.main", "eval", "-p", "gpt", "--dataset", str(data)]
    command += ["--out", str(out), "-c", str(config)]
    try:
        run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = out / "batches" / "gpt.json"
        while run.poll() is None and not (state.exists() and '"in_progress"' in state.read_text()):
            time.sleep(0.05)
        run.kill()  # SIGKILL while it polls
        run.wait()
        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
        stats = _stats(url)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    once = len({r["sample_id"] for r in rows}) == len(rows) == requests and not any(r["error"] for r in rows)
    twice = stats["batch_lines"] - requests
    print(f"kill -9 while polling, then the same command again (exit {again.returncode}):")
    verdict = "PASS" if twice == 0 and stats["batch_lines_max"] == 1 else "FAIL"
    print(f"  lines submitted twice: {twice}   (target 0)  {verdict}")
    print(f"  samples answered once: {len(rows):,} rows for {requests:,} samples  {'PASS' if once else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--kill-requests", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.pop("OPENAI_API_KEY", None)
        cost(args.requests, work)
        kill_and_rerun(args.kill_requests, work)


if __name__ == "__main__":
    main()
