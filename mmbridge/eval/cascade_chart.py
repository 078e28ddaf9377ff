"""The report's cascade chart: accuracy against cost per 1,000 samples, one line per threshold sweep."""

from __future__ import annotations

import html

from .summary_model import Cascade

__all__ = ["cascade_chart", "cascade_sentence"]


def cascade_chart(cascade: Cascade, chosen: float | None = None) -> str:
    """An inline SVG: the cascade's (cost, accuracy) for every threshold as a line, each provider
    alone as a labelled dot, the cheapest point that matches the better one ringed, and with
    ``chosen`` (a threshold, e.g. the one `cascade fit` picked) the point nearest it as a square."""
    width, height, left, bottom = 520, 260, 56, 36
    points = cascade.points
    singles = cascade.single
    costs = [p.cost_per_1000 for p in points] + [s.cost_per_1000 for s in singles.values()]
    accs = [p.accuracy for p in points] + [s.accuracy for s in singles.values()]
    c_high = max(max(costs), 1e-9)
    a_low, a_high = min(accs), max(accs)
    a_low, a_high = (a_low - 0.01, a_high + 0.01) if a_high - a_low < 0.02 else (a_low, a_high)

    def xy(cost: float, acc: float) -> tuple[float, float]:
        x = left + cost / c_high * (width - left - 20)
        y = height - bottom - (acc - a_low) / (a_high - a_low) * (height - bottom - 12)
        return x, y

    label = f"cascade {cascade.first} then {cascade.then}, {cascade.task}"
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(label)}">']
    line = " ".join("{:.1f},{:.1f}".format(*xy(p.cost_per_1000, p.accuracy)) for p in points)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#4e79a7" stroke-width="2"/>')
    for name, s in singles.items():
        x, y = xy(s.cost_per_1000, s.accuracy)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#e15759"/>')
        parts.append(f'<text x="{x + 8:.1f}" y="{y - 6:.1f}" font-size="11">{html.escape(name)} alone</text>')
    best = cascade.matches_best
    if best:
        x, y = xy(best.cost_per_1000, best.accuracy)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="none" stroke="#222" stroke-width="2"/>')
    marked = [p for p in points if p.threshold is not None]
    if chosen is not None and marked:
        near = min(marked, key=lambda p: abs(p.threshold - chosen))  # type: ignore[operator]
        x, y = xy(near.cost_per_1000, near.accuracy)
        parts.append(f'<rect class="chosen" x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="#222"/>')
        parts.append(f'<text x="{x + 8:.1f}" y="{y + 14:.1f}" font-size="11">threshold {chosen:.4g}</text>')
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="11" fill="#666">cost per 1,000 samples, USD '
        f"(0 to {c_high:.4g}); accuracy {a_low:.3f} to {a_high:.3f}; ring: cheapest point as accurate "
        "as the better provider</text></svg>"
    )
    return "".join(parts)


def cascade_sentence(cascade: Cascade) -> str:
    """One line for the terminal: where the cascade matches the better provider, and at what cost."""
    first, then, task = cascade.first, cascade.then, cascade.task
    alone = cascade.single[then]
    head = f"cascade {first} -> {then} ({task}, {cascade.n} samples): "
    best = cascade.matches_best
    safe = cascade.coverage_at_1pct_risk.share
    tail = f"; {first} alone can take {safe:.0%} of them at <= 1% error"
    if best is None:
        return head + "never as accurate as the better one alone" + tail
    return head + (
        f"accuracy {best.accuracy:.3f} at ${best.cost_per_1000:.4f} per 1,000 samples "
        f"({then} alone: {alone.accuracy:.3f} at ${alone.cost_per_1000:.4f}), "
        f"{best.local_share:.0%} answered by {first}" + tail
    )
