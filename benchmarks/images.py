"""Cost of mmbridge.Image normalization (decode + EXIF + RGB + pixel hash) beside a plain Pillow decode.

Target (issue 2): hashing and conversion add at most 30% over the decode, for 256^2, 1024^2 and
4096^2 PNG and JPEG files. Run: python benchmarks/images.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from mmbridge import Image

TARGET_OVERHEAD = 0.30


def photo_like(side: int, seed: int = 0) -> PILImage.Image:
    """Smooth gradients, shapes and mild noise: compresses like a photo, not like noise or a flat fill."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    base = np.stack([np.sin(6 * x + 1) * 80 + 128, np.cos(5 * y) * 80 + 128, (x + y) * 100 + 20], axis=-1)
    base += rng.normal(0, 6, base.shape)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, 1, 2).tolist() + [rng.uniform(0.03, 0.15)]
        base[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return PILImage.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def median_times(first, second, repeats: int) -> tuple[float, float, float]:
    """Medians of both, and the median of their paired ratios (second / first).

    The two run alternately and each ratio compares neighbours in time, so drift in the machine's
    speed (another process waking on the second core) hits both sides of a ratio alike.
    """
    first(), second()  # warm up
    a, b = [], []
    for _ in range(repeats):
        for fn, samples in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    ratios = [y / x for x, y in zip(a, b, strict=True)]
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def pillow_decode(path: Path) -> None:
    with PILImage.open(path) as im:
        im.load()


def mmbridge_normalize(path: Path) -> None:
    _ = Image(path).content_hash


def main() -> None:
    print(f"{'input':<14}{'pillow decode':>15}{'mmbridge.Image':>16}{'overhead':>10}{'target':>9}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for side in (256, 1024, 4096):
            picture = photo_like(side)
            for fmt, suffix, kwargs in (("PNG", "png", {}), ("JPEG", "jpg", {"quality": 90})):
                path = Path(tmp) / f"{side}.{suffix}"
                picture.save(path, fmt, **kwargs)
                repeats = {256: 1000, 1024: 150, 4096: 9}[side]
                plain, ours, ratio = median_times(
                    lambda p=path: pillow_decode(p), lambda p=path: mmbridge_normalize(p), repeats
                )
                overhead = ratio - 1
                worst = max(worst, overhead)
                label = f"{side}^2 {fmt}"
                print(f"{label:<14}{plain * 1e3:>12.2f} ms{ours * 1e3:>13.2f} ms{overhead:>9.0%}{'<= 30%':>9}")
    verdict = "PASS" if worst <= TARGET_OVERHEAD else "FAIL"
    print(f"worst overhead {worst:.0%} (target <= {TARGET_OVERHEAD:.0%}): {verdict}")


if __name__ == "__main__":
    main()
