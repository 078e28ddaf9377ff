"""Generating the shapes benchmark: 10,000 images with all their samples.

Target (issue 3): under 60 s on the 2-core project machine. Run: python benchmarks/data.py
"""

from __future__ import annotations

import tempfile
import time

from mmbridge.data.shapes import generate_shapes

IMAGES = 10_000
TARGET_S = 60.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        manifest = generate_shapes(tmp, images=IMAGES, seed=0, progress=False)
        elapsed = time.perf_counter() - start
    samples = sum(split["samples"] for split in manifest["splits"].values())
    verdict = "PASS" if elapsed < TARGET_S else "FAIL"
    print(f"{IMAGES} images, {samples} samples in {elapsed:.1f} s (target < {TARGET_S:.0f} s): {verdict}")
    print(f"{IMAGES / elapsed:,.0f} images/s, {samples / elapsed:,.0f} samples/s")


if __name__ == "__main__":
    main()
