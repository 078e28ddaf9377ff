"""The viewer in a real browser: Debian's Chromium driven by Playwright (no browser download).

Skipped where Chromium or Playwright is missing, except when MMBRIDGE_BROWSER_TESTS=required (as in
.ci/run), where a missing browser fails instead of hiding the tests.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmbridge.view.browse import outcome
from mmbridge.view.run import running_viewer

from .conftest import rows_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if os.environ.get("MMBRIDGE_BROWSER_TESTS") == "required":
    assert CHROMIUM, "MMBRIDGE_BROWSER_TESTS=required but chromium is not installed (apt-get install chromium)"
    from playwright.sync_api import Page, expect, sync_playwright
else:
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium)", allow_module_level=True)
    sync_api = pytest.importorskip("playwright.sync_api")
    Page, expect, sync_playwright = sync_api.Page, sync_api.expect, sync_api.sync_playwright

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def url(runs_root: Path) -> Iterator[str]:
    with running_viewer(runs_root, max_seconds=300) as address:
        yield address


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, url: str) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1200, "height": 900})
    opened.set_default_timeout(15_000)
    opened.goto(url)
    yield opened
    opened.close()


def test_the_runs_list_shows_each_run_and_its_numbers(page: Page, runs_root: Path) -> None:
    expect(page.locator("#runs tr[data-run]")).to_have_count(3)
    summary = json.loads((runs_root / "first" / "summary.json").read_text())
    value = summary["providers"]["prior"]["tasks"]["vqa"]["metrics"]["vqa_accuracy"]["value"]
    expect(page.locator('tr[data-run="first"]')).to_contain_text(f"vqa vqa_accuracy {value:.3f}")
    expect(page.locator('tr[data-run="first"] .status')).to_have_text("complete")
    expect(page.locator('tr[data-run="second"] .status')).to_have_text("all rows, no summary yet")
    page.click('#runs a[href="#/run/first"]')
    expect(page.locator("main h2").first).to_contain_text("first")
    expect(page.locator("#tab svg").first).to_be_visible()  # the report's charts


def test_filtering_the_samples_shows_the_rows_that_match(page: Page, runs_root: Path) -> None:
    page.goto(page.url + "#/run/second")
    page.click("button[data-tab=samples]")
    page.select_option("select[data-filter=provider]", "prior")
    page.select_option("select[data-filter=outcome]", "wrong")
    wrong = {r.sample_id for r in rows_of(runs_root / "second") if r.provider == "prior" and outcome(r) == "wrong"}
    expect(page.locator("#count")).to_have_text(f"{len(wrong)} samples")
    assert 0 < len(wrong) <= 50  # one page holds them all
    shown = page.locator(".sample")
    expect(shown).to_have_count(len(wrong))
    for sample in wrong:  # each expect waits, so a list still being redrawn is not read half-way
        expect(page.locator(f'.sample[data-sample="{sample}"]')).to_have_count(1)
    for i in range(shown.count()):
        expect(shown.nth(i).locator('.answer[data-provider="prior"]')).to_have_attribute("data-outcome", "wrong")


def test_an_older_filters_late_answer_does_not_replace_the_newer_one(page: Page, runs_root: Path) -> None:
    page.goto(page.url + "#/run/second")
    page.click("button[data-tab=samples]")
    expect(page.locator("#count")).to_contain_text("samples")
    held = []  # the page asked for the provider filter alone: that answer is held back until the newer one is shown

    def hold_the_older(route) -> None:  # noqa: ANN001 - playwright's Route
        if "outcome=" not in route.request.url and not held:
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/samples?*", hold_the_older)
    page.select_option("select[data-filter=provider]", "prior")
    page.select_option("select[data-filter=outcome]", "wrong")
    rows = rows_of(runs_root / "second")
    wrong = {r.sample_id for r in rows if r.provider == "prior" and outcome(r) == "wrong"}
    stale = len({r.sample_id for r in rows if r.provider == "prior"})
    assert stale != len(wrong)  # else the test could not tell them apart
    expect(page.locator("#count")).to_have_text(f"{len(wrong)} samples")
    with page.expect_response(lambda response: "outcome=" not in response.url):
        held[0].continue_()
    # an expect passes as soon as the text matches, before a late redraw could change it: give the page
    # time to read the late answer (milliseconds), then check once
    page.wait_for_timeout(500)
    assert page.locator("#count").inner_text() == f"{len(wrong)} samples"
    assert page.locator(".sample").count() == len(wrong)


def test_one_sample_shows_its_picture_question_and_every_answer(page: Page, runs_root: Path) -> None:
    rows = [r for r in rows_of(runs_root / "first") if r.task.value == "vqa"]
    target = rows[0].sample_id
    page.goto(page.url + "#/run/first")
    page.click("button[data-tab=samples]")
    page.fill("#search", target)
    page.press("#search", "Enter")
    expect(page.locator("#count")).to_have_text("1 samples")
    card = page.locator(f'.sample[data-sample="{target}"]')
    sample = next(
        json.loads(line)
        for line in (runs_root / "first" / "inputs.jsonl").read_text().splitlines()
        if json.loads(line)["id"] == target
    )
    expect(card.locator(".q")).to_contain_text(sample["question"])
    for row in (r for r in rows if r.sample_id == target):
        expect(card.locator(f'.answer[data-provider="{row.provider}"]')).to_contain_text(row.prediction or "")
    picture = card.locator("img")
    expect(picture).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())


def test_two_ticked_runs_open_side_by_side(page: Page, runs_root: Path) -> None:
    page.check('tr[data-run="first"] .pick')
    expect(page.locator("#compare")).to_be_disabled()
    page.check('tr[data-run="second"] .pick')
    page.click("#compare")
    before = {r.key: r for r in rows_of(runs_root / "first")}
    changed = [r for r in rows_of(runs_root / "second") if outcome(r) != outcome(before[r.key])]
    expect(page.locator("#changes tr[data-sample]")).to_have_count(len(changed))
    expect(page.locator("#pairs")).to_contain_text("prior")
    expect(page.locator("main h2")).to_have_text("second against first")  # the newer against the older


def test_a_run_being_written_refreshes_as_its_rows_arrive(browser, runs_root: Path, tmp_path: Path) -> None:
    from mmbridge.eval.rundir import exclusive

    root = tmp_path / "runs"
    shutil.copytree(runs_root / "first", root / "live")
    (root / "live" / "summary.json").unlink()
    lines = (root / "live" / "samples.jsonl").read_text().splitlines(keepends=True)
    half = len(lines) // 2
    (root / "live" / "samples.jsonl").write_text("".join(lines[:half]))
    with running_viewer(root, max_seconds=120) as address, exclusive(root / "live"):
        page = browser.new_page()
        page.goto(address)
        status = page.locator('tr[data-run="live"] .status')
        expect(status).to_have_text(f"running {half} of {len(lines)} rows")
        with (root / "live" / "samples.jsonl").open("a") as f:
            f.write("".join(lines[half:]))
        expect(status).to_have_text(f"running {len(lines)} of {len(lines)} rows", timeout=15_000)
        page.close()
