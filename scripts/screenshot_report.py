"""Open an evaluation's report.html in headless Chromium, save a screenshot, and check it is not blank.

Run: python scripts/screenshot_report.py mmbridge-demo/report.html [out.png]
Needs Debian's chromium (apt-get install chromium). Exits 1 if the screenshot is blank.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def screenshot(report: Path, png: Path, size: str = "1200,2400") -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                f"--screenshot={png}",
                report.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def is_blank(png: Path) -> bool:
    """Blank: (nearly) one colour everywhere."""
    pixels = np.asarray(PILImage.open(png).convert("L"), dtype=float)
    return float(pixels.std()) < 2.0


def main() -> None:
    report = Path(sys.argv[1])
    png = Path(sys.argv[2]) if len(sys.argv) > 2 else report.with_suffix(".png")
    screenshot(report, png)
    blank = is_blank(png)
    print(f"{png}: {'BLANK' if blank else 'not blank'}")
    sys.exit(1 if blank else 0)


if __name__ == "__main__":
    main()
