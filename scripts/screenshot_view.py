"""Write docs/view.png: `mmbridge view`'s sample browser over two small runs, in Debian's Chromium.

Run: python scripts/screenshot_view.py [out.png]
Needs Debian's chromium (apt-get install chromium) and playwright (the dev extra). The runs are
made in a temporary folder: the fake provider and the blind prior on the built-in shapes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mmbridge.eval.evaluate import evaluate
from mmbridge.view.run import running_viewer

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.chdir(home)  # the built-in dataset's pictures and the cache go here too
        for seed in (0, 1):
            run = evaluate(
                ["fake", "prior"], "builtin:shapes?split=val&images=40", home / "runs" / f"seed-{seed}", seed=seed
            )
            asyncio.run(run)
        with running_viewer(home / "runs", max_seconds=120) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            page.goto(url + "#/run/seed-0")
            page.click("button[data-tab=samples]")
            page.select_option("select[data-filter=outcome]", "disagreement")
            page.wait_for_selector(".sample img")
            page.wait_for_load_state("networkidle")  # the pictures in view (the rest load lazily)
            page.screenshot(path=str(out))
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "docs" / "view.png")
