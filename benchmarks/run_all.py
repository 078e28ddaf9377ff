"""Every quick benchmark in one command: each measured figure beside its target, written to BENCHMARKS.md.

Each benchmark runs in its own process, as a user would run it (the sizes below keep the whole
under about five minutes on a 2-core machine). Its verdict lines (those that name a target and
say PASS or FAIL) are kept verbatim. A benchmark that misses a target is run once more: these
machines drift by tens of percent within minutes, so a miss counts only when the repeat misses
too, and both runs are written down. The exit status is 1 when any benchmark missed twice.

The long ones stay apart: `python benchmarks/local_model.py` (the shipped model; --learning: the
15-minute learning runs), `benchmarks/cascade.py` (trains for minutes), `benchmarks/backbones.py`.

Run: python benchmarks/run_all.py [--only NAME ...] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from mmbridge.atomic import atomic_write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (name, arguments): the quick benchmarks, at sizes that keep the whole run near five minutes
QUICK = [
    ("cli", []),
    ("metrics", []),
    ("data", []),
    ("openai_path", []),
    ("loop_blocking", ["--images", "16"]),
    ("batch_api", ["--requests", "2000", "--kill-requests", "200"]),
    ("serve", ["--rounds", "3", "--requests", "1000"]),
    ("eval_pace", ["--samples", "1000", "--rounds", "3"]),
    ("images", []),
    ("view", []),
    ("hf", []),
    # the local model's part needs its full 2,000 samples: with fewer, its rows come back in one or
    # two blocks and the steady rate between the first and last rows is meaningless (1,778% measured)
    ("ray_eval", ["--scaling-samples", "400"]),
]
VERDICT = re.compile(r"\b(PASS|FAIL)\b")


def verdicts(output: str) -> list[str]:
    """The lines that judge a figure against its target; an indented one after the heading it is under."""
    out, heading = [], ""
    for line in output.splitlines():
        if line and not line[0].isspace() and not VERDICT.search(line):
            heading = line.strip().rstrip(":")
        elif "target" in line.lower() and VERDICT.search(line):
            said = " ".join(line.split())
            out.append(f"{heading}: {said}" if line[0].isspace() and heading else said)
    return out


def run(name: str, args: list[str]) -> tuple[list[str], float, int]:
    """(verdict lines, seconds, exit status) of one benchmark run in its own process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    lines = verdicts(done.stdout + done.stderr)
    if done.returncode != 0 and not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        lines = [f"FAIL: exited {done.returncode} ({tail[0][:200]})"]
    return lines, time.perf_counter() - start, done.returncode


def missed(lines: list[str]) -> bool:
    return any("FAIL" in line for line in lines)


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run only these (names as in QUICK)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    options = parser.parse_args()
    chosen = [(n, a) for n, a in QUICK if not options.only or n in options.only]
    sections, failed, total = [], [], time.perf_counter()
    for name, args in chosen:
        lines, seconds, _ = run(name, args)
        note = ""
        if missed(lines):
            again, more, _ = run(name, args)
            note = f"\nA target was missed; the repeat took {more:.0f} s and said:\n\n" + "\n".join(
                f"    {line}" for line in again
            )
            if missed(again):
                failed.append(name)
        command = " ".join(["python", f"benchmarks/{name}.py", *args])
        body = "\n".join(f"    {line}" for line in lines) or "    (no verdict lines)"
        sections.append(f"## {name}\n\n`{command}` ({seconds:.0f} s)\n\n{body}\n{note}\n")
        print(f"{name}: {'missed twice' if name in failed else 'ok'} ({seconds:.0f} s)", flush=True)
    header = (
        "# Benchmarks\n\n"
        f"Measured on commit {commit()}, {datetime.date.today().isoformat()}, on {os.cpu_count()} CPUs, by "
        f"`python benchmarks/run_all.py` in {time.perf_counter() - total:.0f} s. Each line is a benchmark's "
        "own verdict: the measured figure beside its target. A benchmark that missed a target ran "
        "once more; it counts as missed only when the repeat missed too.\n\n"
        + (f"**Missed twice: {', '.join(failed)}.**\n\n" if failed else "Every target met (or met on the repeat).\n\n")
    )
    with atomic_write(options.out) as f:
        f.write(header + "\n".join(sections))
    print(f"wrote {options.out}; {'missed twice: ' + ', '.join(failed) if failed else 'every target met'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
