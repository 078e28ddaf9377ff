"""Reports of an evaluation: report.md, a self-contained report.html, and a rich table for the terminal."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from ..data.sample import Sample
from .cascade_chart import cascade_chart, cascade_sentence
from .rows import Row
from .summary import MAIN_METRIC
from .summary_model import Metric, ProviderSummary, Summary, TaskSummary

__all__ = ["render_html", "render_markdown", "summary_sections", "terminal_table"]

_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]
_ORDER = ["vqa_accuracy", "accuracy", "cider", "bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "chair_i", "chair_s"]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _metric_cell(metric: Metric | None) -> str:
    if not metric or metric.value is None:
        return "-"
    low, high = metric.ci95
    return f"{metric.value:.3f} [{_fmt(low)}, {_fmt(high)}]"


def _task_status(task: TaskSummary) -> str | None:
    if task.unsupported:
        return "unsupported"
    if task.answered == 0:
        return "no answers"
    return None


# -- terminal ------------------------------------------------------------------------------------


def terminal_table(summary: Summary) -> Any:
    """A rich Table: one row per provider; per task its main metric with the 95% CI below it."""
    from rich.table import Table

    tasks = _tasks(summary)
    table = Table(title=f"{summary.dataset} ({summary.samples} samples)")
    table.add_column("provider")
    for task_name in tasks:
        table.add_column(f"{task_name}\n{MAIN_METRIC[task_name]}", justify="right")
    # service: the provider's own time per answer; latency: as the run waited for it, queueing included
    for column in ("errors", "service p50", "latency p50", "answers/s", "cost / 1k"):
        table.add_column(column, justify="right")
    for name, provider in summary.providers.items():
        cells = []
        for task_name in tasks:
            task = provider.tasks[task_name]
            found = task.metrics.get(MAIN_METRIC[task_name])
            status = _task_status(task)
            if status or not found or found.value is None:
                cells.append(status or "-")
            else:
                cells.append(f"{found.value:.3f}\n[{_fmt(found.ci95[0])}, {_fmt(found.ci95[1])}]")
        asked = sum(t.n for t in provider.tasks.values() if not t.unsupported)
        errors = sum(t.errors for t in provider.tasks.values())
        table.add_row(
            name,
            *cells,
            f"{errors / asked:.1%}" if asked else "-",
            _ms(provider.service_s.p50),
            _ms(provider.latency_s.p50),
            _rate(provider.answers_per_s),
            _money(provider.cost_per_1000, provider),
        )
    return table


# -- markdown ------------------------------------------------------------------------------------


def render_markdown(summary: Summary) -> str:
    lines = [f"# Evaluation: {summary.dataset}", "", f"{summary.samples} samples, seed {summary.seed}.", ""]
    for task_name in _tasks(summary):
        metrics = _metrics_of(summary, task_name)
        lines += [f"## {task_name}", "", "| provider | " + " | ".join(metrics) + " | errors | unparsed |"]
        lines.append("|---" * (len(metrics) + 3) + "|")
        for name, provider in summary.providers.items():
            task = provider.tasks[task_name]
            status = _task_status(task)
            cells = [status or _metric_cell(task.metrics.get(m)) for m in metrics]
            errors = "-" if task.error_rate is None else f"{task.error_rate:.1%}"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {errors} | {task.unparsed} |")
        lines.append("")
    lines += [
        "## By type (main metric)",
        "",
        "| provider | task | type | n | value [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for name, provider in summary.providers.items():
        for task_name, task in provider.tasks.items():
            for kind, part in task.by_type.items():
                cell = _metric_cell(part.metrics.get(MAIN_METRIC[task_name]))
                lines.append(f"| {name} | {task_name} | {kind} | {part.n} | {cell} |")
    lines.append("")
    if summary.pairs:
        lines += [
            "## Pairs (same samples)",
            "",
            "| a | b | task | metric | n | a - b [95% CI] | p | test |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in summary.pairs:
            ci = f"{p.diff:+.3f} [{p.ci95[0]:+.3f}, {p.ci95[1]:+.3f}]"
            lines.append(f"| {p.a} | {p.b} | {p.task} | {p.metric} | {p.n} | {ci} | {p.p_value:.3g} | {p.test} |")
        lines.append("")
    lines += [
        "## Time and cost",
        "",
        "Service: the provider's own time per answer (an API call's round trip; for a model that answers",
        "in batches, its batch's time). Latency: from the call to the answer as this run drove it, time",
        "spent queued included (behind other requests, or waiting for a batch to fill). Answers/s: as",
        "this run asked them (cache hits left out).",
        "",
        "| provider | service p50 | service p95 | latency p50 | latency p95 | answers/s "
        "| input tokens | output tokens | cost | per 1k |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in summary.providers.items():
        cost, per_k = _money(p.cost_usd, p), _money(p.cost_per_1000, p)
        times = [_ms(p.service_s.p50), _ms(p.service_s.p95), _ms(p.latency_s.p50), _ms(p.latency_s.p95)]
        lines.append(
            f"| {name} | {' | '.join(times)} | {_rate(p.answers_per_s)} | {p.tokens.input} | {p.tokens.output} "
            f"| {cost} | {per_k} |"
        )
    return "\n".join(lines) + "\n"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def _rate(per_second: float | None) -> str:
    return "-" if per_second is None else f"{per_second:,.1f}"


def _money(value: float | None, provider: ProviderSummary) -> str:
    """Dollars, marked when the provider answered through the Batch API (at its price)."""
    if value is None:
        return "-"
    return f"${value:.4f}" + (" (batch price)" if provider.batch else "")


def _tasks(summary: Summary) -> list[str]:
    return summary.tasks()


def _metrics_of(summary: Summary, task_name: str) -> list[str]:
    found = {m for p in summary.providers.values() for m in p.tasks[task_name].metrics}
    return [m for m in _ORDER if m in found] or [MAIN_METRIC[task_name]]


# -- HTML ----------------------------------------------------------------------------------------


def _bars(summary: Summary, task_name: str, metric: str) -> str:
    """An inline SVG bar chart of one metric per provider, with CI whiskers."""
    names = list(summary.providers)
    values = [summary.providers[n].tasks[task_name].metrics.get(metric) for n in names]
    top = max([v.ci95[1] or v.value or 0 for v in values if v and v.value is not None] + [1e-9])
    top = 1.0 if top <= 1.0 and metric not in ("cider",) else top * 1.1
    width, row = 520, 28
    parts = [f'<svg width="{width}" height="{row * len(names) + 24}" role="img" aria-label="{metric}">']
    for i, (name, v) in enumerate(zip(names, values, strict=True)):
        y = i * row + 4
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{html.escape(name)}</text>')
        if not v or v.value is None:
            parts.append(f'<text x="120" y="{y + 16}" font-size="12" fill="#888">unsupported / none</text>')
            continue
        scale = (width - 200) / top
        parts.append(
            f'<rect x="120" y="{y}" width="{max(v.value * scale, 1):.1f}" height="20" '
            f'fill="{_COLORS[i % len(_COLORS)]}"/>'
        )
        low, high = v.ci95
        if low is not None and high is not None:
            x1, x2 = 120 + low * scale, 120 + high * scale
            parts.append(
                f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y + 10}" y2="{y + 10}" stroke="#222" stroke-width="2"/>'
            )
            for x in (x1, x2):
                parts.append(
                    f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 4}" y2="{y + 16}" stroke="#222" stroke-width="2"/>'
                )
        parts.append(
            f'<text x="{120 + max(v.value, high or 0) * scale + 6:.1f}" y="{y + 15}" font-size="11">'
            f"{v.value:.3f}</text>"
        )
    parts.append(
        f'<text x="120" y="{row * len(names) + 20}" font-size="11" fill="#666">{metric} '
        "(bars: value, whiskers: 95% bootstrap CI)</text></svg>"
    )
    return "".join(parts)


def _latency_plot(rows: list[Row], names: list[str]) -> str:
    """Box plots (5th, 25th, 50th, 75th, 95th percentiles) of per-call latency, log scale."""
    width, row = 520, 30
    data = {n: np.array([r.latency_s for r in rows if r.provider == n and r.latency_s and not r.cached]) for n in names}
    present = [a for a in data.values() if len(a)]
    if not present:
        return "<p>No latencies recorded.</p>"
    low = np.log10(max(min(float(a.min()) for a in present), 1e-5))
    high = np.log10(max(float(a.max()) for a in present)) + 1e-9
    span = max(high - low, 1e-6)

    def x(value: float) -> float:
        return 120 + (np.log10(max(value, 1e-5)) - low) / span * (width - 160)

    parts = [f'<svg width="{width}" height="{row * len(names) + 24}" role="img" aria-label="latency">']
    for i, name in enumerate(names):
        y = i * row + 4
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{html.escape(name)}</text>')
        values = data[name]
        if not len(values):
            continue
        p5, p25, p50, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95])
        color = _COLORS[i % len(_COLORS)]
        parts.append(f'<line x1="{x(p5):.1f}" x2="{x(p95):.1f}" y1="{y + 11}" y2="{y + 11}" stroke="{color}"/>')
        parts.append(
            f'<rect x="{x(p25):.1f}" y="{y + 2}" width="{max(x(p75) - x(p25), 1):.1f}" height="18" '
            f'fill="{color}" opacity="0.6"/>'
        )
        parts.append(
            f'<line x1="{x(p50):.1f}" x2="{x(p50):.1f}" y1="{y + 2}" y2="{y + 20}" stroke="#222" stroke-width="2"/>'
        )
        parts.append(f'<text x="{x(p95) + 6:.1f}" y="{y + 15}" font-size="11">p50 {p50 * 1000:.1f} ms</text>')
    parts.append(
        f'<text x="120" y="{row * len(names) + 20}" font-size="11" fill="#666">seconds per call, log scale; '
        "box 25-75%, whiskers 5-95%, cache hits left out</text></svg>"
    )
    return "".join(parts)


def _thumbnail(path: Path) -> str:
    from ..image import Image

    try:
        return Image(path).to_data_url(max_side=160)
    except Exception:  # noqa: BLE001 - a report must not fail over one unreadable image
        return ""


def _truth(sample: Sample) -> str:
    if sample.answers:
        return ", ".join(dict.fromkeys(sample.answers))
    if sample.label is not None:
        return "true" if sample.label else "false"
    return (sample.references or [""])[0]


def _said(row: Row | None) -> tuple[str, bool | None]:
    if row is None:
        return "-", None
    if row.unsupported:
        return "unsupported", None
    if row.error:
        return f"error: {row.error.type}", None
    if row.task == "verify":
        said = "unreadable" if row.label is None else ("true" if row.label else "false")
    elif row.task == "vqa":
        said = row.answer if row.answer is not None else f"unreadable: {row.prediction!r}"
    else:
        said = row.prediction or ""
    return said, None if row.score is None else row.score >= 0.5


def _gallery(rows: list[Row], samples: list[Sample], names: list[str], limit: int = 24) -> str:
    """The samples where providers disagree, each image with every provider's answer."""
    keyed = {(r.sample_id, r.provider): r for r in rows}
    cards = []
    for sample in samples:
        if sample.task.value == "caption" or len(cards) >= limit:
            continue
        answers = [_said(keyed.get((sample.id, n)))[0] for n in names]
        if len(set(answers)) < 2:
            continue
        prompt = sample.question or sample.statement or ""
        lines = []
        for name in names:
            said, right = _said(keyed.get((sample.id, name)))
            mark = {True: "right", False: "wrong", None: "none"}[right]
            lines.append(f'<li class="{mark}"><b>{html.escape(name)}</b>: {html.escape(said)}</li>')
        cards.append(
            f'<div class="card"><img src="{_thumbnail(sample.image)}" alt="{html.escape(sample.id)}">'
            f"<p>{html.escape(prompt)}</p><p class=truth>truth: {html.escape(_truth(sample))}</p>"
            f"<ul>{''.join(lines)}</ul></div>"
        )
    if not cards:
        return "<p>The providers agree on every sample.</p>"
    return f'<div class="gallery">{"".join(cards)}</div>'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}
th{background:#f3f3f3}.gallery{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px;width:220px;font-size:13px}
.card img{width:160px;image-rendering:pixelated;display:block;margin:auto}
.right{color:#1a7f37}.wrong{color:#c62828}.none{color:#777}.truth{color:#555}
"""


def summary_sections(summary: Summary, chosen: dict[tuple[str, str, str], float] | None = None) -> list[str]:
    """The report's HTML parts drawn from the summary alone: bars per metric, the tables, the cascades
    (also shown by ``mmbridge view``, which passes the thresholds `cascade fit` ``chosen`` by
    (first, then, task))."""
    names = list(summary.providers)
    body = []
    for task_name in _tasks(summary):
        body.append(f"<h2>{task_name}</h2>")
        for metric in _metrics_of(summary, task_name):
            body.append(_bars(summary, task_name, metric))
        rates = ", ".join(
            f"{n}: {summary.providers[n].tasks[task_name].error_rate:.1%} errors"
            for n in names
            if summary.providers[n].tasks[task_name].error_rate is not None
        )
        body.append(f"<p>{html.escape(rates)}</p>")
    markdown = render_markdown(summary)
    body.append("<h2>Tables</h2>" + _markdown_tables(markdown))
    for cascade in summary.cascades:
        cover = cascade.coverage_at_1pct_risk
        chart = cascade_chart(cascade, (chosen or {}).get((cascade.first, cascade.then, cascade.task)))
        body.append(
            f'<h2 class="cascade">Cascade: {html.escape(cascade.first)} then {html.escape(cascade.then)}, '
            f"{cascade.task}</h2>{chart}<p>{html.escape(cascade_sentence(cascade))}. "
            f"{html.escape(cascade.first)} can answer {cover.share:.1%} of the samples with at most 1% of them "
            "wrong.</p>"
        )
    return body


def render_html(summary: Summary, rows: list[Row], samples: list[Sample]) -> str:
    """One self-contained page: charts as inline SVG, images as data URLs, no outside requests."""
    names = list(summary.providers)
    body = [
        f"<h1>Evaluation: {html.escape(summary.dataset)}</h1>",
        f"<p>{summary.samples} samples; every provider answered the same ones. Seed {summary.seed}.</p>",
        *summary_sections(summary),
    ]
    body.append("<h2>Latency</h2>" + _latency_plot(rows, names))
    body.append("<h2>Where the providers disagree</h2>" + _gallery(rows, samples, names))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>mmbridge evaluation</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _markdown_tables(markdown: str) -> str:
    """The markdown report's tables as HTML (headings kept), so both reports show the same numbers."""
    out, table = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                table.append([html.escape(c.strip()) for c in line.strip("|").split("|")])
            continue
        if table:
            head, *rest = table
            out.append(
                "<table><tr>"
                + "".join(f"<th>{c}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rest)
                + "</table>"
            )
            table = []
        if line.startswith("## "):
            out.append(f"<h3>{html.escape(line[3:])}</h3>")
    return "".join(out)
