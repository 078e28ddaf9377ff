"""`mmbridge view` over a folder of 20 runs with 100,000 rows in all: the runs list and a filtered page.

One real evaluation (fake + prior on the built-in shapes) is copied 20 times, each copy with other
answers, as runs a user keeps. Timed through HTTP on loopback, as the page asks: the runs list on
first open (cold: every folder found and its summary read) and again; one run opened (its rows
parsed and indexed); then filtered pages of that run (a provider's wrong answers, disagreements,
a text search, a later page), medians of repeats; then the same pages of one run that holds all
100,000 rows (opening it parses them once; pages after that come from its index).

Targets (issue 31): the runs list in under 1 s; a filtered page of samples in under 200 ms.

Run: python benchmarks/view.py [--runs 20] [--rows 100000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from mmbridge.eval.evaluate import evaluate
from mmbridge.eval.rows import Row
from mmbridge.view.run import running_viewer

LIST_TARGET_S = 1.0
PAGE_TARGET_S = 0.2


def timed(url: str, **params: object) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url + "?" + urllib.parse.urlencode(params), timeout=60) as response:
        response.read()
    return time.perf_counter() - start


def make_runs(home: Path, runs: int, rows: int) -> Path:
    """``runs`` run folders under home/runs with ``rows`` rows in all (two providers each)."""
    samples = rows // runs // 2
    images = samples * 5 // 4 + 1  # the built-in val split yields about 0.8 samples per picture asked for
    os.chdir(home)
    first = home / "runs" / "run-00"
    asyncio.run(evaluate(["fake", "prior"], f"builtin:shapes?split=val&images={images}", first, progress=False))
    lines = (first / "samples.jsonl").read_text().splitlines()
    for i in range(1, runs):
        copy = home / "runs" / f"run-{i:02d}"
        shutil.copytree(first, copy)
        changed = []
        for n, line in enumerate(lines):
            row = Row.model_validate_json(line)
            if row.score is not None and (n + i) % 7 == 0:
                row = row.model_copy(update={"score": 1.0 - row.score})
            changed.append(row.model_dump_json())
        (copy / "samples.jsonl").write_text("\n".join(changed) + "\n")
    return home / "runs"


def make_big_run(root: Path, copies: int) -> str:
    """One more run: run-00's samples and rows ``copies`` times over (ids suffixed), so one run holds
    all the rows; returns its key."""
    first, big = root / "run-00", root.parent / "big" / "one-run"
    big.mkdir(parents=True)
    shutil.copy(first / "run.json", big / "run.json")
    for name in ("inputs.jsonl", "samples.jsonl"):
        lines = (first / name).read_text().splitlines()
        key = '"id":"' if name == "inputs.jsonl" else '"sample_id":"'
        with (big / name).open("w") as out:
            for k in range(copies):
                out.writelines(line.replace(key, f"{key}{k}-", 1) + "\n" for line in lines)
    return "one-run"


def pages_of(url: str, key: str, repeats: int) -> dict[str, float]:
    queries = {
        "prior wrong": {"provider": "prior", "outcome": "wrong"},
        "disagreement": {"outcome": "disagreement"},
        "search 'red'": {"q": "red"},
        "vqa, page 3": {"task": "vqa", "offset": 100},
        "no filter, last page": {"offset": 10**9},
    }
    return {
        name: statistics.median(timed(url + "api/samples", key=key, limit=50, **query) for _ in range(repeats))
        for name, query in queries.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        root = make_runs(Path(folder), args.runs, args.rows)
        total = sum(sum(1 for _ in (r / "samples.jsonl").open()) for r in root.iterdir())
        print(f"{args.runs} runs, {total:,} rows in all (made in {time.perf_counter() - start:.0f} s)")
        with running_viewer(root, max_seconds=600) as url:
            cold = timed(url + "api/runs")
            warm = statistics.median(timed(url + "api/runs") for _ in range(args.repeats))
            opened = timed(url + "api/run", key="run-07")
            took = pages_of(url, "run-07", args.repeats)
        key = make_big_run(root, args.runs)
        with running_viewer(root.parent / "big", max_seconds=600) as url:
            big_opened = timed(url + "api/run", key=key)
            big = pages_of(url, key, args.repeats)
            big_summary = timed(url + "api/summary", key=key)
    print(f"runs list: first open {cold * 1000:.0f} ms, again {warm * 1000:.0f} ms (median)")
    for label, first_open, pages in (
        ("one of the runs", opened, took),
        (f"one run of {total:,} rows", big_opened, big),
    ):
        print(f"{label}: opened (rows parsed and indexed, once) in {first_open * 1000:.0f} ms; filtered pages:")
        for name, seconds in pages.items():
            print(f"  {name}: {seconds * 1000:.1f} ms (median of {args.repeats})")
    print(
        f"  its summary computed from its rows (it has no summary.json; once, on the Summary tab): {big_summary:.1f} s"
    )
    worst = max([*took.values(), *big.values()])
    print(
        f"runs list {max(cold, warm) * 1000:.0f} ms (target < {LIST_TARGET_S * 1000:.0f} ms): "
        f"{'PASS' if max(cold, warm) < LIST_TARGET_S else 'FAIL'}"
    )
    print(
        f"slowest filtered page {worst * 1000:.1f} ms (target < {PAGE_TARGET_S * 1000:.0f} ms): "
        f"{'PASS' if worst < PAGE_TARGET_S else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
