"""The cascade analysis: what "local first, then the API" would have scored and cost, from the rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbridge.data.sample import Sample
from mmbridge.eval.report import render_html
from mmbridge.eval.rows import Row
from mmbridge.eval.summary import summarize
from mmbridge.types import Task

# ten vqa samples: the local model is sure of six (all right) and unsure of four (two wrong);
# the API is always right at $0.001 a call
SURE = [0.99] * 6 + [0.5] * 4
LOCAL_RIGHT = [1.0] * 6 + [1.0, 0.0, 1.0, 0.0]


def _rows() -> tuple[list[Row], list[Sample]]:
    samples = [
        Sample(id=f"s{i}", image=Path("x.png"), task=Task.VQA, question="What colour?", answers=["red"])
        for i in range(10)
    ]
    rows = []
    for i, (sure, right) in enumerate(zip(SURE, LOCAL_RIGHT, strict=True)):
        common = {"sample_id": f"s{i}", "task": Task.VQA, "latency_s": 0.01}
        rows.append(Row(provider="local", answer="red", score=right, confidence=sure, cost_usd=0.0, **common))
        rows.append(Row(provider="gpt", answer="red", score=1.0, cost_usd=0.001, **common))
    return rows, samples


def test_the_sweep_finds_the_cheapest_point_that_matches_the_api_and_the_safe_coverage() -> None:
    rows, samples = _rows()
    model = summarize(rows, samples, providers=["gpt", "local"], dataset="d")
    summary = model.model_dump(mode="json", by_alias=True)
    (cascade,) = summary["cascades"]
    assert (cascade["first"], cascade["then"], cascade["task"], cascade["n"]) == ("local", "gpt", "vqa", 10)
    assert cascade["single"] == {
        "local": {"accuracy": 0.8, "cost_per_1000": 0.0},
        "gpt": {"accuracy": 1.0, "cost_per_1000": 1.0},
    }
    best = cascade["matches_best"]
    assert (best["threshold"], best["accuracy"], best["cost_per_1000"], best["local_share"]) == (0.99, 1.0, 0.4, 0.6)
    assert cascade["coverage_at_1pct_risk"] == {"share": 0.6, "threshold": 0.99}
    always_escalate = cascade["points"][-1]
    assert always_escalate == {"threshold": None, "accuracy": 1.0, "cost_per_1000": 1.0, "local_share": 0.0}
    assert "Cascade: local then gpt, vqa" in render_html(model, rows, samples)
    # calibration: 0.99 sure and always right, 0.5 sure and right half the time: |1 - 0.99| x 60%
    assert summary["providers"]["local"]["tasks"]["vqa"]["calibration_error"] == 0.006
    assert summary["providers"]["gpt"]["tasks"]["vqa"]["calibration_error"] is None


def test_no_cascade_without_a_confidence_and_none_from_a_sure_but_wrong_first_stage() -> None:
    rows, samples = _rows()
    blind = [r.model_copy(update={"confidence": None}) if r.provider == "local" else r for r in rows]
    assert summarize(blind, samples, providers=["local", "gpt"], dataset="d").cascades == []
    # sure of everything, and wrong on two: no share of its answers stays within 1% risk
    overconfident = [r.model_copy(update={"confidence": 1.0}) if r.provider == "local" else r for r in rows]
    (cascade,) = summarize(overconfident, samples, providers=["local", "gpt"], dataset="d").cascades
    assert (cascade.coverage_at_1pct_risk.share, cascade.coverage_at_1pct_risk.threshold) == (0.0, None)


def test_fit_picks_per_task_thresholds_for_a_target_or_a_budget(tmp_path: Path) -> None:
    import tomllib

    from mmbridge.config import check_config, load_config
    from mmbridge.eval.cascade_fit import fit_thresholds, toml_table

    rows, _ = _rows()
    fitted = fit_thresholds(rows, "local", "gpt", target_accuracy=1.0)["vqa"]
    assert (fitted["threshold"], fitted["cost_per_1000"], fitted["local_share"], fitted["met"]) == (
        0.99,
        0.4,
        0.6,
        True,
    )
    assert fitted["ci95"] == [1.0, 1.0]  # right on every sample at that threshold
    cheap = fit_thresholds(rows, "local", "gpt", budget_per_1000=0.0)["vqa"]
    assert (cheap["threshold"], cheap["accuracy"], cheap["met"]) == (0.5, 0.8, True)
    assert cheap["ci95"][0] < 0.8 < cheap["ci95"][1]
    assert fit_thresholds(rows, "local", "gpt", target_accuracy=1.01)["vqa"]["met"] is False
    table = toml_table("team", "local", "gpt", {"vqa": fitted})
    config = tmp_path / "mmbridge.toml"
    config.write_text('[providers.local]\ntype = "fake"\n[providers.gpt]\ntype = "fake"\n' + table)
    assert tomllib.loads(table)["providers"]["team"]["thresholds"] == {"vqa": 0.99}
    assert check_config(load_config(config)) == []


def test_cascade_fit_evaluates_and_prints_the_table_to_paste(tmp_path: Path, capsys, monkeypatch) -> None:
    from mmbridge.cli.main import main

    config = tmp_path / "mmbridge.toml"
    config.write_text('[providers.prior]\ntype = "prior"\ntrain = "builtin:shapes?split=train&images=40"\n')
    argv = ["mmbridge", "cascade", "fit", "--provider", "prior", "--provider", "fake", "--config", str(config)]
    argv += ["--dataset", "builtin:shapes?split=val&images=40", "--out", str(tmp_path / "fit")]
    monkeypatch.setattr("sys.argv", [*argv, "--target-accuracy", "0.5"])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    shown = capsys.readouterr().out
    assert (tmp_path / "fit" / "samples.jsonl").is_file()
    assert '[providers.cascade]\ntype = "cascade"\nproviders = ["prior", "fake"]' in shown
    fitted = json.loads((tmp_path / "fit" / "cascade_fit.json").read_text())
    threshold = fitted["tasks"]["vqa"]["threshold"]
    assert (fitted["first"], fitted["then"]) == ("prior", "fake") and f"vqa = {threshold}" in shown
    # the viewer marks the chosen point on the run's cascade curve
    from mmbridge.eval.report import summary_sections
    from mmbridge.view.app import _chosen
    from mmbridge.view.library import Library

    run, _ = Library(tmp_path / "fit").run(".")
    assert _chosen(run.fit) == {("prior", "fake", t): f["threshold"] for t, f in fitted["tasks"].items()}
    assert f"threshold {threshold:.4g}" in "".join(summary_sections(run.summary(), _chosen(run.fit)))


def test_the_live_cascade_and_the_offline_sweep_decide_alike_on_the_same_rows(shapes_png: Path) -> None:
    """One rule: fed the same answers, the wrapper and the sweep keep the same first answers, pay the
    same, and escalate the same errors, unparsed answers and answers without a confidence."""
    import asyncio

    from mmbridge import Client, ProviderError, Request, Response
    from mmbridge.eval.cascade import cascade_curve, paired
    from mmbridge.types import Usage
    from mmbridge.wrappers import Cascade
    from mmbridge.wrappers.cascade_rule import stays

    kinds = ["sure", "unsure", "unparsed", "failed", "silent", "sure", "sure", "unsure"]
    strong_fails = {6, 7}
    rows = []
    for i, kind in enumerate(kinds):
        common = {"sample_id": f"s{i}", "task": Task.VQA}
        rows.append(
            Row(
                provider="local",
                answer=None if kind in ("unparsed", "failed") else "red",
                confidence={"sure": 0.95, "unsure": 0.4, "unparsed": 0.99, "silent": None}.get(kind),
                score=0.0 if kind in ("unparsed", "failed") else 1.0,
                cost_usd=None if kind == "failed" else 0.0002,
                error={"type": "ProviderError", "message": "out of memory"} if kind == "failed" else None,
                **common,
            )
        )
        failed = i in strong_fails
        rows.append(
            Row(
                provider="gpt",
                answer=None if failed else "blue",
                score=None if failed else 0.5,
                cost_usd=None if failed else 0.001,
                error={"type": "ProviderError", "message": "503"} if failed else None,
                **common,
            )
        )
    by_stage = {(r.provider, r.sample_id): r for r in rows}

    def replay(stage: str):
        def answer(request: Request) -> Response:
            row = by_stage[(stage, request.question)]
            if row.error is not None:
                raise ProviderError(row.error.message)
            usage = Usage(cost_usd=row.cost_usd)
            return Response(
                task=Task.VQA,
                text=row.answer or "?",
                answer=row.answer,
                confidence=row.confidence,
                usage=usage,
                provider=stage,
            )

        return Client("function", fn=answer, model=stage).provider

    keyed = {"local": {r.sample_id: r for r in rows if r.provider == "local"}}
    keyed["gpt"] = {r.sample_id: r for r in rows if r.provider == "gpt"}
    sure, first, second, cost_a, cost_b = paired("local", "gpt", "vqa", keyed)
    for threshold in (0.4, 0.95):
        cascade = Cascade([replay("local"), replay("gpt")], thresholds={"vqa": threshold})

        async def ask(i: int, cascade: Cascade = cascade) -> Response | None:
            try:
                return await cascade.generate(Request(task=Task.VQA, image=shapes_png, question=f"s{i}"))
            except ProviderError:
                return None

        async def all_of(n: int = len(kinds)) -> list:
            return await asyncio.gather(*(ask(i) for i in range(n)))

        live = asyncio.run(all_of())
        kept_live = [r is not None and r.escalated_from == () for r in live]
        kept_offline = stays(sure, threshold).tolist()
        assert kept_live == kept_offline, threshold
        assert kept_live[2] is False and kept_live[3] is False and kept_live[4] is False  # unparsed, failed, silent
        # what the live cascade paid and scored, against the sweep's point at this threshold
        # (a call that failed at the last stage returns no usage: those samples are compared by decision only)
        answered = [i for i, r in enumerate(live) if r is not None]
        paid = sum(live[i].usage.cost_usd or 0.0 for i in answered)
        offline_paid = sum(cost_a[i] + (0.0 if kept_offline[i] else cost_b[i]) for i in answered)
        assert paid == pytest.approx(offline_paid)
        assert len(answered) == len(kinds) - (not kept_live[7])  # the strong stage fails sample 7 when asked
        point = next(p for p in cascade_curve(sure, first, second, cost_a, cost_b) if p["threshold"] == threshold)
        assert point["local_share"] == pytest.approx(sum(kept_live) / len(kinds))
