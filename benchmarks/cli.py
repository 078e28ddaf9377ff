"""Start-up time of `mmbridge --help` (target, issue 2: under 0.5 s; `import litellm` alone takes 3.7 s here).

Run: python benchmarks/cli.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5


def main() -> None:
    beside = Path(sys.executable).parent / "mmbridge"  # the venv this script runs in, activated or not
    exe = str(beside) if beside.exists() else shutil.which("mmbridge")
    if exe is None:
        sys.exit("install mmbridge first: pip install -e .")
    samples = []
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    verdict = "PASS" if median < TARGET_S else "FAIL"
    print(f"mmbridge --help: median {median:.3f} s, max {max(samples):.3f} s (target < {TARGET_S} s): {verdict}")


if __name__ == "__main__":
    main()
