"""The viewer's API against run folders written by real evaluations: what it finds, filters, compares,
and that it reads without writing and serves nothing outside its folder."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmbridge.eval.rows import Row
from mmbridge.eval.rundir import exclusive
from mmbridge.view.browse import outcome
from mmbridge.view.run import running_viewer

from .conftest import rows_of, snapshot


def fetch(url: str, **params: object) -> tuple[int, bytes]:
    query = "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}) if params else ""
    try:
        with urllib.request.urlopen(url + query, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def api(url: str, path: str, **params: object) -> dict:
    status, body = fetch(url + path, **params)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def viewer(runs_root: Path) -> Iterator[str]:
    with running_viewer(runs_root, max_seconds=120) as url:
        yield url


def test_the_runs_list_finds_every_run_and_shows_its_summary(runs_root: Path, viewer: str) -> None:
    cards = {c["key"]: c for c in api(viewer, "api/runs")["runs"]}
    assert set(cards) == {"first", "second", "old/third"}  # nested found, the hidden folder skipped
    summary = json.loads((runs_root / "first" / "summary.json").read_text())
    shown = cards["first"]["headline"]["prior"]["tasks"]["vqa"]
    assert shown["value"] == summary["providers"]["prior"]["tasks"]["vqa"]["metrics"]["vqa_accuracy"]["value"]
    assert cards["first"]["rows"] == cards["first"]["expected_rows"] == 2 * summary["samples"]
    assert cards["second"]["headline"] == {} and not cards["second"]["running"]


def test_a_run_without_its_summary_gets_one_from_its_rows(viewer: str) -> None:
    made = api(viewer, "api/summary", key="second")
    assert made["live"] and "vqa_accuracy" in made["summary_html"] and made["problems"] == []
    assert not api(viewer, "api/summary", key="first")["live"]


@pytest.mark.parametrize(
    ("task", "provider", "wanted"),
    [(None, "prior", "wrong"), ("vqa", "fake", "correct"), ("verify", None, "error"), (None, None, "disagreement")],
)
def test_filters_keep_exactly_the_matching_samples(
    runs_root: Path, viewer: str, task: str | None, provider: str | None, wanted: str
) -> None:
    rows = rows_of(runs_root / "second")
    by_sample: dict[str, list[Row]] = {}
    for row in rows:
        by_sample.setdefault(row.sample_id, []).append(row)
    expected = set()
    for sample_id, mine in by_sample.items():
        if task and mine[0].task.value != task:
            continue
        if wanted == "disagreement":
            said = {
                str(r.label) if r.task.value == "verify" else r.answer
                for r in mine
                if r.ok and r.task.value != "caption"
            }
            if len(said) > 1:
                expected.add(sample_id)
        elif any(outcome(r) == wanted and (provider is None or r.provider == provider) for r in mine):
            expected.add(sample_id)
    page = api(viewer, "api/samples", key="second", task=task, provider=provider, outcome=wanted, limit=200)
    assert page["total"] == len(expected) > 0
    assert {item["id"] for item in page["items"]} == expected
    for item in page["items"]:
        assert not provider or item["answers"][provider]["outcome"] == wanted


def test_search_and_paging(viewer: str) -> None:
    everything = api(viewer, "api/samples", key="first", limit=200)
    first_page = api(viewer, "api/samples", key="first", limit=5)
    second_page = api(viewer, "api/samples", key="first", limit=5, offset=5)
    assert [i["id"] for i in first_page["items"] + second_page["items"]] == [i["id"] for i in everything["items"][:10]]
    word = everything["items"][0]["question"].split()[-1].strip("?").lower()
    found = api(viewer, "api/samples", key="first", q=word.upper(), limit=200)

    def said(item: dict) -> str:
        return " ".join(
            [item["id"], item["question"], item["truth"], *(a["text"] or "" for a in item["answers"].values())]
        )

    assert [i["id"] for i in found["items"]] == [i["id"] for i in everything["items"] if word in said(i).lower()]
    status, body = fetch(viewer + "api/samples", key="first", outcome="maybe")
    assert status == 422 and b"use one of" in body


def test_pictures_are_the_samples_pictures(viewer: str) -> None:
    item = api(viewer, "api/samples", key="first", limit=1)["items"][0]
    status, body = fetch(viewer + "api/picture", key="first", id=item["id"])
    assert status == 200 and body.startswith(b"\x89PNG")
    assert fetch(viewer + "api/picture", key="first", id="no-such-sample")[0] == 404


def test_two_runs_compared_on_their_shared_samples(runs_root: Path, viewer: str) -> None:
    data = api(viewer, "api/compare", a="first", b="second")
    assert data["same_samples"] and data["providers"] == ["fake", "prior"]
    before = {r.key: r for r in rows_of(runs_root / "first")}
    flipped = [r for r in rows_of(runs_root / "second") if outcome(r) != outcome(before[r.key])]
    assert sum(data["changed"].values()) == len(flipped) > 0
    assert {(c["sample_id"], c["provider"]) for c in data["changes"]} == {r.key for r in flipped}
    fake = [p for p in data["pairs"] if p["provider"] == "fake"]
    assert fake and all(p["diff"] == 0 for p in fake)  # fake's rows were not touched
    prior_vqa = next(p for p in data["pairs"] if p["provider"] == "prior" and p["task"] == "vqa")
    a = {k: r.score for k, r in before.items() if r.provider == "prior" and r.task.value == "vqa"}
    b = {r.key: r.score for r in rows_of(runs_root / "second") if r.provider == "prior" and r.task.value == "vqa"}
    assert prior_vqa["diff"] == pytest.approx(sum(b[k] - a[k] for k in a) / len(a), abs=1e-6)


def test_nothing_outside_the_folder_is_served(runs_root: Path, viewer: str) -> None:
    for key in ("..", "../..", "/etc", "first/../..", ".cache"):
        assert fetch(viewer + "api/run", key=key)[0] == 404
    for path in ("static/../app.py", "static/%2e%2e/app.py", "static/..%2fapp.py", "api/../app.py"):
        status, body = fetch(viewer + path)
        assert status == 404 and b"create_app" not in body


def test_the_viewer_never_writes_into_a_run_folder(runs_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs_root / "first", root / "cut")
    rows = root / "cut" / "samples.jsonl"
    lines = rows.read_text().splitlines(keepends=True)
    lines[3] = "{not json\n"
    rows.write_text("".join(lines) + lines[5][:20])  # a bad line, and a last line cut short
    (root / "cut" / "summary.json").unlink()
    inputs = root / "cut" / "inputs.jsonl"
    sample = json.loads(inputs.read_text().splitlines()[0])
    sample["image"] = str(Path(__file__))  # a file that is not a picture: never served as bytes
    inputs.write_text(json.dumps(sample) + "\n" + "".join(inputs.read_text().splitlines(keepends=True)[1:]))
    before = snapshot(root)
    with running_viewer(root, max_seconds=60) as url:
        info = api(url, "api/run", key="cut")
        assert any("samples.jsonl line 4: not a result row" in p for p in info["problems"])
        assert any(f"line {len(lines) + 1} was cut short" in p for p in info["problems"])
        assert info["rows"] == len(lines) - 1
        status, body = fetch(url + "api/picture", key="cut", id=sample["id"])
        assert status == 404 and b"import" not in body
        for path, params in [
            ("api/runs", {}),
            ("api/samples", {"key": "cut"}),
            ("api/compare", {"a": "cut", "b": "cut"}),
        ]:
            assert fetch(url + path, **params)[0] == 200
    assert snapshot(root) == before


def test_a_run_being_written_is_shown_as_running(runs_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(runs_root / "first", root / "live")
    with running_viewer(root, max_seconds=60) as url:
        with exclusive(root / "live"):
            assert api(url, "api/runs")["runs"][0]["running"]
            with (root / "live" / "samples.jsonl").open("a") as f:
                f.write('{"sample_id": "half')  # the eval is mid-line: not a problem while it runs
            info = api(url, "api/run", key="live")
            assert info["running"] and info["problems"] == []
        assert not api(url, "api/runs")["runs"][0]["running"]
