"""The HTML report renders in headless Chromium (skipped where Debian's chromium is not installed)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from mmbridge.eval.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_report_screenshot_is_not_blank(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from screenshot_report import is_blank, screenshot

    asyncio.run(evaluate(["fake"], "builtin:shapes?split=val&images=30", tmp_path / "out", progress=False))
    png = tmp_path / "report.png"
    screenshot(tmp_path / "out" / "report.html", png, size="1000,1400")
    assert png.stat().st_size > 0 and not is_blank(png)
