"""Growth charts drawn on the server as SVG: no JavaScript library, works offline and in print.

:func:`growth_chart` draws one WHO chart (weight-for-age, length/height-for-age,
weight-for-length, weight-for-height or MUAC-for-age, by sex) with the −3, −2, 0, +2 and +3 SD
curves computed from the verified LMS tables (``SD(k) = M·(1 + L·S·k)^(1/L)``) and a child's
measurements on top. :func:`chart_points` turns a person's encounter history into those points,
keeping only active encounters: a voided or superseded measurement must never look like data.

The result is a self-contained ``<svg>`` string: every text is escaped, colours are presentation
attributes (the page's CSP forbids inline styles) and each element carries a class so the
stylesheet can restyle it. It is ``role="img"`` with an ``aria-label``, a ``<title>`` and a
``<desc>`` that states the latest measurement, so a screen reader gets what the picture shows.
The plotted ranges are exposed as ``data-*`` attributes on the root for tests and tooling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from contigo.i18n import translate
from contigo.nutrition.tables import LENGTH_ROW_OFFSET, GrowthTables, load_tables

ChartKind = Literal["wfa", "lhfa", "wfl", "wfh", "muac"]
CHART_KINDS: tuple[ChartKind, ...] = ("wfa", "lhfa", "wfl", "wfh", "muac")
SD_LINES: tuple[int, ...] = (-3, -2, 0, 2, 3)
DAYS_PER_MONTH = 30.4375
LAST_DAY = 1826  # 60 completed months; the tables run a little further
HEIGHT_FROM_DAY = 731  # WHO: lying length under 731 days, standing height from then
MUAC_FIRST_DAY = 91
MUAC_CUTOFFS_MM = (115, 125)
MUAC_CUTOFF_FROM_MONTH = 6

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 58, 44, 40, 52

_SD_COLOURS = {-3: "#b3261e", -2: "#c77700", 0: "#1b6e3a", 2: "#c77700", 3: "#b3261e"}
_POINT_COLOUR = "#1f3f9e"


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """What one chart kind plots: its table, x range and units (x in days or cm)."""

    kind: ChartKind
    source: Literal["age", "length"]
    table: int  # index into ``by_age`` indicators, or ``by_length`` tables
    x_min: float
    x_max: float
    x_step: float
    y_scale: float  # table unit to plotted unit (MUAC cm → mm)
    title_key: str
    x_label_key: str
    y_label_key: str
    unit: str


# fmt: off
SPECS: dict[ChartKind, ChartSpec] = {
    "wfa": ChartSpec("wfa", "age", 0, 0, LAST_DAY, 14, 1.0, "chart.title.wfa",
                     "chart.axis.age_months", "chart.axis.weight_kg", "kg"),
    "lhfa": ChartSpec("lhfa", "age", 1, 0, LAST_DAY, 14, 1.0, "chart.title.lhfa",
                      "chart.axis.age_months", "chart.axis.lenhei_cm", "cm"),
    "wfl": ChartSpec("wfl", "length", 0, 45.0, 110.0, 0.5, 1.0, "chart.title.wfl",
                     "chart.axis.length_cm", "chart.axis.weight_kg", "kg"),
    "wfh": ChartSpec("wfh", "length", 1, 65.0, 120.0, 0.5, 1.0, "chart.title.wfh",
                     "chart.axis.height_cm", "chart.axis.weight_kg", "kg"),
    "muac": ChartSpec("muac", "age", 4, MUAC_FIRST_DAY, LAST_DAY, 14, 10.0, "chart.title.muac",
                      "chart.axis.age_months", "chart.axis.muac_mm", "mm"),
}
# fmt: on


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One measurement to plot: ``x`` in days (age charts) or cm, ``y`` in the chart's unit."""

    x: float
    y: float
    on: date | None = None


class EncounterLike(Protocol):
    """What :func:`chart_points` reads from an encounter (an ``EncounterView``)."""

    @property
    def active(self) -> bool: ...

    @property
    def occurred_on(self) -> date: ...

    @property
    def data(self) -> dict[str, Any]: ...


# ── curves ─────────────────────────────────────────────────────────────────────


def sd_value(lms: Sequence[float], k: float) -> float:
    """The measurement at ``k`` SD for one LMS row (WHO: ``M·(1 + L·S·k)^(1/L)``)."""
    l_, m, s = (float(v) for v in lms)
    if abs(l_) < 1e-9:
        return m * math.exp(s * k)
    return m * float((1 + l_ * s * k) ** (1 / l_))


def _lms_rows(spec: ChartSpec, sex: str, tables: GrowthTables) -> tuple[np.ndarray, np.ndarray]:
    """The x values (days or cm) sampled for ``spec`` and their LMS rows."""
    sex_index = 1 if sex == "F" else 0
    if spec.source == "age":
        days = list(range(int(spec.x_min), int(spec.x_max) + 1, int(spec.x_step)))
        extra = [int(spec.x_max)] + (
            [HEIGHT_FROM_DAY - 1, HEIGHT_FROM_DAY] if spec.kind == "lhfa" else []
        )
        xs = np.array(sorted(set(days) | set(extra)), dtype=float)
        return xs, tables.by_age[spec.table, sex_index, xs.astype(int)]
    count = round((spec.x_max - spec.x_min) / spec.x_step) + 1
    xs = np.round(np.linspace(spec.x_min, spec.x_max, count), 1)
    rows = np.round(xs * 10).astype(int) - LENGTH_ROW_OFFSET
    return xs, tables.by_length[spec.table, sex_index, rows]


def reference_curves(
    kind: ChartKind, sex: str, tables: GrowthTables | None = None
) -> dict[int, list[list[tuple[float, float]]]]:
    """The SD curves of one chart as ``{k: [segment, …]}``, each segment a list of
    ``(x, value)`` with x in days or cm and values in the chart's unit.

    Length/height-for-age has two segments per curve: WHO's table steps from lying length to
    standing height at 731 days, and joining them would draw a growth spurt that is not there.
    """
    spec = SPECS[kind]
    xs, rows = _lms_rows(spec, sex, tables or load_tables())
    curves: dict[int, list[list[tuple[float, float]]]] = {}
    for k in SD_LINES:
        segments: list[list[tuple[float, float]]] = [[]]
        for x, lms in zip(xs, rows, strict=True):
            if spec.kind == "lhfa" and x == HEIGHT_FROM_DAY and segments[-1]:
                segments.append([])
            segments[-1].append((float(x), sd_value(lms, k) * spec.y_scale))
        curves[k] = segments
    return curves


# ── points from encounters ─────────────────────────────────────────────────────


def adjusted_length(age_days: int, lenhei_cm: float, measure: str | None) -> float:
    """Length or height as WHO uses it: +0.7 cm if measured standing under 731 days, −0.7 cm if
    lying from 731 days; no change under 9 months standing (the position is then unknown)."""
    if measure == "h" and age_days < HEIGHT_FROM_DAY and age_days / DAYS_PER_MONTH >= 9:
        return lenhei_cm + 0.7
    if measure == "l" and age_days >= HEIGHT_FROM_DAY:
        return lenhei_cm - 0.7
    return lenhei_cm


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def chart_points(
    birth_date: date, encounters: Iterable[EncounterLike]
) -> dict[ChartKind, list[ChartPoint]]:
    """The points of every chart from a child's encounters (active ones only, by date)."""
    out: dict[ChartKind, list[ChartPoint]] = {kind: [] for kind in CHART_KINDS}
    for enc in sorted((e for e in encounters if e.active), key=lambda e: e.occurred_on):
        age = (enc.occurred_on - birth_date).days
        if not 0 <= age <= LAST_DAY:
            continue
        weight = _number(enc.data.get("weight_kg"))
        length = _number(enc.data.get("lenhei_cm"))
        muac = _number(enc.data.get("muac_mm"))
        oedema = int(enc.data.get("oedema_grade") or 0) > 0
        if weight is not None and not oedema:  # oedema fluid is not growth (WHO)
            out["wfa"].append(ChartPoint(age, weight, enc.occurred_on))
        if length is not None:
            adjusted = adjusted_length(age, length, enc.data.get("measure"))
            out["lhfa"].append(ChartPoint(age, adjusted, enc.occurred_on))
            if weight is not None and not oedema:
                kind: ChartKind = "wfl" if age < HEIGHT_FROM_DAY else "wfh"
                out[kind].append(ChartPoint(round(adjusted, 1), weight, enc.occurred_on))
        if muac is not None and age >= MUAC_FIRST_DAY:
            out["muac"].append(ChartPoint(age, muac, enc.occurred_on))
    return out


def weight_for_length_kind(age_days: int) -> ChartKind:
    """Which weight-for-length/height chart applies at ``age_days``."""
    return "wfl" if age_days < HEIGHT_FROM_DAY else "wfh"


# ── scales and drawing ─────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Frame:
    """Maps chart values to pixels inside the plot area."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def px(self, x: float) -> float:
        return LEFT + (x - self.x_min) / (self.x_max - self.x_min) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return TOP + (self.y_max - y) / (self.y_max - self.y_min) * (HEIGHT - TOP - BOTTOM)


def nice_step(span: float, target_ticks: int = 8) -> float:
    """A 1, 2 or 5 × 10ⁿ step giving about ``target_ticks`` ticks over ``span``."""
    raw = span / max(target_ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def _frame(
    spec: ChartSpec,
    curves: dict[int, list[list[tuple[float, float]]]],
    points: Sequence[ChartPoint],
) -> tuple[Frame, float]:
    values = [y for segs in curves.values() for seg in segs for _x, y in seg]
    values += [p.y for p in points]
    low, high = min(values), max(values)
    step = nice_step(high - low)
    x_min, x_max = spec.x_min, spec.x_max
    if spec.source == "age":  # whole months on the axis
        x_min = math.floor(x_min / DAYS_PER_MONTH) * DAYS_PER_MONTH
        x_max = 60 * DAYS_PER_MONTH
    return Frame(x_min, x_max, math.floor(low / step) * step, math.ceil(high / step) * step), step


def format_number(value: float, lang: str, decimals: int = 1) -> str:
    """A number as the language writes it (decimal comma in Spanish and Portuguese)."""
    text = f"{value:.{decimals}f}"
    if decimals and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang in ("es", "pt") else text


def _attrs(**attrs: Any) -> str:
    return "".join(
        f" {name.rstrip('_').replace('_', '-')}={quoteattr(str(value))}"
        for name, value in attrs.items()
        if value is not None
    )


def _el(tag: str, text: str | None = None, **attrs: Any) -> str:
    if text is None:
        return f"<{tag}{_attrs(**attrs)}/>"
    return f"<{tag}{_attrs(**attrs)}>{escape(text)}</{tag}>"


def _x_ticks(spec: ChartSpec, frame: Frame) -> list[tuple[float, float]]:
    """``(value, label value)`` pairs: months every 6 on age charts, nice cm steps otherwise."""
    if spec.source == "age":
        first = math.ceil(frame.x_min / DAYS_PER_MONTH)
        months = [m for m in range(first, 61) if m % 6 == 0 or m == first]
        return [(m * DAYS_PER_MONTH, float(m)) for m in months]
    step = 5.0
    start = math.ceil(frame.x_min / step) * step
    ticks = np.arange(start, frame.x_max + 1e-9, step)
    return [(float(t), float(t)) for t in ticks]


# Presentation attributes (not inline styles, which the CSP forbids), by element role.
_GRID: dict[str, Any] = {"class_": "grid", "stroke": "#e3e3e3"}
_TICK: dict[str, Any] = {"font_size": 11, "fill": "#333333"}
_AXIS_LABEL: dict[str, Any] = {"text_anchor": "middle", "font_size": 12, "fill": "#222222"}
_CUTOFF: dict[str, Any] = {"stroke": "#7a1f5c", "stroke_width": 1.2, "stroke_dasharray": "2 3"}
_POINT: dict[str, Any] = {"r": 4.5, "fill": _POINT_COLOUR, "stroke": "#ffffff", "stroke_width": 1.5}
_PLOT_W, _PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _axes(spec: ChartSpec, frame: Frame, y_step: float, lang: str) -> list[str]:
    out = [_el("rect", class_="plot", x=LEFT, y=TOP, width=_PLOT_W, height=_PLOT_H,
               fill="#ffffff", stroke="#6b6b6b")]  # fmt: skip
    decimals = 0 if y_step >= 1 else 1
    y = frame.y_min
    while y <= frame.y_max + 1e-9:
        py = round(frame.py(y), 1)
        out.append(_el("line", x1=LEFT, x2=WIDTH - RIGHT, y1=py, y2=py, **_GRID))
        label = format_number(y, lang, decimals)
        out.append(_el("text", label, class_="tick y-tick", x=LEFT - 6, y=py + 4,
                       text_anchor="end", **_TICK))  # fmt: skip
        y += y_step
    for value, shown in _x_ticks(spec, frame):
        px = round(frame.px(value), 1)
        out.append(_el("line", x1=px, x2=px, y1=TOP, y2=HEIGHT - BOTTOM, **_GRID))
        label = format_number(shown, lang, 0)
        out.append(_el("text", label, class_="tick x-tick", x=px, y=HEIGHT - BOTTOM + 16,
                       text_anchor="middle", **_TICK))  # fmt: skip
    mid_x, mid_y = LEFT + _PLOT_W / 2, TOP + _PLOT_H / 2
    out.append(_el("text", translate(spec.x_label_key, lang), class_="axis-label x-label",
                   x=mid_x, y=HEIGHT - 12, **_AXIS_LABEL))  # fmt: skip
    out.append(_el("text", translate(spec.y_label_key, lang), class_="axis-label y-label",
                   x=14, y=mid_y, transform=f"rotate(-90 14 {mid_y})", **_AXIS_LABEL))  # fmt: skip
    return out


def _curves(curves: dict[int, list[list[tuple[float, float]]]], frame: Frame) -> list[str]:
    out: list[str] = []
    for k, segments in curves.items():
        colour = _SD_COLOURS[k]
        dash = "5 3" if abs(k) == 3 else None
        for segment in segments:
            pts = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in segment)
            out.append(_el("polyline", class_=f"curve sd{k:+d}", data_sd=k, points=pts,
                           fill="none", stroke=colour, stroke_width=2 if k == 0 else 1.4,
                           stroke_dasharray=dash))  # fmt: skip
        end_x, end_y = segments[-1][-1]
        out.append(_el("text", "0" if k == 0 else f"{k:+d}", class_=f"curve-label sd{k:+d}",
                       x=round(frame.px(end_x) + 4, 1), y=round(frame.py(end_y) + 4, 1),
                       font_size=11, fill=colour))  # fmt: skip
    return out


def _muac_cutoffs(frame: Frame, lang: str) -> list[str]:
    out: list[str] = []
    x1 = round(frame.px(MUAC_CUTOFF_FROM_MONTH * DAYS_PER_MONTH), 1)
    for mm in MUAC_CUTOFFS_MM:
        if not frame.y_min <= mm <= frame.y_max:
            continue
        py = round(frame.py(mm), 1)
        out.append(_el("line", class_="cutoff", data_value=mm, x1=x1, x2=WIDTH - RIGHT, y1=py,
                       y2=py, **_CUTOFF))  # fmt: skip
        out.append(_el("text", translate("chart.cutoff", lang, mm=mm), class_="cutoff-label",
                       x=x1 + 4, y=py - 4, font_size=10, fill=_CUTOFF["stroke"]))  # fmt: skip
    return out


def _point_text(spec: ChartSpec, point: ChartPoint, lang: str) -> str:
    value = f"{format_number(point.y, lang, 0 if spec.unit == 'mm' else 1)} {spec.unit}"
    if spec.source == "age":
        months = format_number(point.x / DAYS_PER_MONTH, lang, 1)
        where = translate("chart.at_months", lang, months=months)
    else:
        where = f"{format_number(point.x, lang, 1)} cm"
    when = point.on.isoformat() if point.on else ""
    return translate("chart.point", lang, date=when, value=value, where=where).strip()


def _points(spec: ChartSpec, points: Sequence[ChartPoint], frame: Frame, lang: str) -> list[str]:
    ordered = sorted(points, key=lambda p: p.x)
    out = []
    if len(ordered) > 1:
        path = " ".join(f"{frame.px(p.x):.1f},{frame.py(p.y):.1f}" for p in ordered)
        out.append(_el("polyline", class_="trajectory", points=path, fill="none",
                       stroke=_POINT_COLOUR, stroke_width=1.5))  # fmt: skip
    for p in ordered:
        circle = _el("circle", class_="point", cx=f"{frame.px(p.x):.1f}",
                     cy=f"{frame.py(p.y):.1f}", data_x=p.x, data_y=p.y, **_POINT)  # fmt: skip
        title = _el("title", _point_text(spec, p, lang))
        out.append(f'<g class="measurement">{title}{circle}</g>')
    return out


def chart_title(kind: ChartKind, sex: str, lang: str) -> str:
    """The chart's visible and accessible title, e.g. "Weight-for-age, girls"."""
    sex_label = translate("chart.sex.F" if sex == "F" else "chart.sex.M", lang)
    return translate(
        "chart.title", lang, indicator=translate(SPECS[kind].title_key, lang), sex=sex_label
    )


def _description(spec: ChartSpec, points: Sequence[ChartPoint], lang: str) -> str:
    if not points:
        return translate("chart.desc.empty", lang)
    latest = max(points, key=lambda p: (p.on or date.min, p.x))
    return translate("chart.desc", lang, count=len(points), latest=_point_text(spec, latest, lang))


def growth_chart(
    kind: ChartKind,
    sex: str,
    points: Sequence[ChartPoint] = (),
    lang: str = "es",
    *,
    id_prefix: str = "chart",
    tables: GrowthTables | None = None,
) -> str:
    """One WHO growth chart with a child's points, as an escaped, self-contained SVG string.

    ``sex`` is ``"F"`` or ``"M"``; ``points`` are in the chart's units (see :class:`ChartPoint`);
    points beyond the chart's x range are left out rather than drawn at the edge, where they
    would look like real measurements. ``id_prefix`` keeps element ids unique when several
    charts share a page.
    """
    if kind not in SPECS:
        raise ValueError(f"unknown chart kind {kind!r}")
    if sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', not {sex!r}")
    spec = SPECS[kind]
    shown = [p for p in points if spec.x_min <= p.x <= spec.x_max and math.isfinite(p.y)]
    curves = reference_curves(kind, sex, tables)
    frame, y_step = _frame(spec, curves, shown)
    title = chart_title(kind, sex, lang)
    tid, did = f"{id_prefix}-{kind}-title", f"{id_prefix}-{kind}-desc"
    parts = [
        _el("title", title, id=tid),
        _el("desc", _description(spec, shown, lang), id=did),
        *_axes(spec, frame, y_step, lang),
        *_curves(curves, frame),
        *(_muac_cutoffs(frame, lang) if kind == "muac" else []),
        *_points(spec, shown, frame, lang),
        _el(
            "text",
            title,
            class_="chart-title",
            x=LEFT,
            y=22,
            font_size=14,
            font_weight="bold",
            fill="#111111",
        ),
        _el(
            "text",
            translate("chart.source", lang),
            class_="chart-source",
            x=WIDTH - RIGHT,
            y=22,
            text_anchor="end",
            font_size=10,
            fill="#555555",
        ),
    ]
    root = _attrs(
        xmlns="http://www.w3.org/2000/svg",
        class_=f"growth-chart chart-{kind}",
        role="img",
        aria_label=title,
        aria_describedby=did,
        viewBox=f"0 0 {WIDTH} {HEIGHT}",
        width=WIDTH,
        height=HEIGHT,
        font_family="system-ui, sans-serif",
        data_kind=kind,
        data_sex=sex,
        data_x_min=frame.x_min,
        data_x_max=frame.x_max,
        data_y_min=frame.y_min,
        data_y_max=frame.y_max,
    )
    return f"<svg{root}>{''.join(parts)}</svg>"
