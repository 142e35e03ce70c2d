"""Monthly trend charts drawn on the server as SVG (no library, offline, printable), in the
manner of :mod:`contigo.charts`: escaped text, presentation attributes only (the page's CSP
forbids inline styles), ``role="img"`` with a title and a description a screen reader reads."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from contigo.charts import format_number, nice_step

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 40
COLOURS = ("#1f3f9e", "#b3261e", "#1b6e3a", "#c77700")


def trend_chart(
    title: str,
    months: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    lang: str,
    *,
    chart_id: str,
) -> str:
    """A line chart of one or more monthly series (``(label, values by month)``)."""
    peak = max([1, *(v for _label, values in series for v in values)])
    step = max(1.0, nice_step(float(peak), 4))
    top = step * (int(peak / step) + 1)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(1, len(months) - 1)

    def x(i: int) -> float:
        return LEFT + inner_w * (i / n if len(months) > 1 else 0.5)

    def y(v: float) -> float:
        return TOP + inner_h * (1 - v / top)

    parts = [
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(_description(months, series))}</desc>",
        f'<text x="{LEFT}" y="16" class="chart-title" font-size="13">{escape(title)}</text>',
    ]
    tick = 0.0
    while tick <= top + 1e-9:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#ddd" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(format_number(tick, lang, 0))}</text>"
        )
        tick += step
    for i, month in enumerate(months):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="10">{escape(month[2:])}</text>'
        )
    for k, (label, values) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2" '
            f'class="series series-{k}"/>'
        )
        for i, v in enumerate(values):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(f'{label} {months[i]}: {v}')}</title></circle>"
            )
        parts.append(
            f'<text x="{LEFT + 150 * k}" y="{HEIGHT - 6}" fill="{colour}" font-size="11">'
            f"{escape(label)}</text>"
        )
    label = quoteattr(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id={quoteattr(chart_id)} class="trend-chart" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label={label} data-months="{len(months)}">' + "".join(parts) + "</svg>"
    )


def _description(months: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    return "; ".join(
        f"{label}: " + ", ".join(f"{m} {v}" for m, v in zip(months, values, strict=False))
        for label, values in series
    )
