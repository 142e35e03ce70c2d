"""Growth charts drawn on the server as SVG: no JavaScript library, works offline and in print.

:func:`growth_chart` draws one WHO chart (weight-for-age, length/height-for-age,
weight-for-length, weight-for-height, BMI-for-age, head-circumference-for-age or MUAC-for-age, by
sex) with the −3, −2, 0, +2 and +3 SD curves computed from the verified LMS tables
(``SD(k) = M·(1 + L·S·k)^(1/L)``) and a child's measurements on top, over one of WHO Anthro's age
ranges (0–6 months, 0–2 years, 2–5 years; the whole 0–5 years when none is asked for).
:func:`chart_points` turns a person's encounter history into those points, keeping only active
encounters: a voided or superseded measurement must never look like data. :func:`zscore_trend`
draws every indicator's z-score over age on one chart, from the z-scores stored with each visit.
Dates are written ``dd/mm/aaaa`` (the app's format in every language), never by the browser.

The result is a self-contained ``<svg>`` string: every text is escaped, colours are presentation
attributes (the page's CSP forbids inline styles) and each element carries a class so the
stylesheet can restyle it. It is ``role="img"`` with an ``aria-label``, a ``<title>`` and a
``<desc>`` that states the latest measurement, so a screen reader gets what the picture shows.
The plotted ranges are exposed as ``data-*`` attributes on the root for tests and tooling.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, Protocol
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from contigo.forms import dmy_date  # dd/mm/aaaa, as dates are typed and shown everywhere
from contigo.i18n import translate, translate_plural
from contigo.nutrition.tables import LENGTH_ROW_OFFSET, GrowthTables, load_tables

ChartKind = Literal["wfa", "lhfa", "wfl", "wfh", "bfa", "hcfa", "muac"]
CHART_KINDS: tuple[ChartKind, ...] = ("wfa", "lhfa", "wfl", "wfh", "bfa", "hcfa", "muac")
AgeRange = Literal["0-6m", "0-2y", "2-5y", "0-5y"]
#: WHO Anthro's ranges, in the order a user steps through them; "0-5y" is the whole standard.
AGE_RANGES: tuple[AgeRange, ...] = ("0-6m", "0-2y", "2-5y")
SD_LINES: tuple[int, ...] = (-3, -2, 0, 2, 3)
DAYS_PER_MONTH = 30.4375
LAST_DAY = 1826  # 60 completed months; the tables run a little further
HEIGHT_FROM_DAY = 731  # WHO: lying length under 731 days, standing height from then
MUAC_FIRST_DAY = 91
MUAC_CUTOFFS_MM = (115, 125)
MUAC_CUTOFF_FROM_MONTH = 6
#: Tables that step from lying length to standing height at 731 days (their curves break there).
_STEPPED: frozenset[ChartKind] = frozenset({"lhfa", "bfa"})

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
    "bfa": ChartSpec("bfa", "age", 2, 0, LAST_DAY, 14, 1.0, "charts.title.bfa",
                     "chart.axis.age_months", "charts.axis.bmi", "kg/m²"),
    "hcfa": ChartSpec("hcfa", "age", 3, 0, LAST_DAY, 14, 1.0, "charts.title.hcfa",
                      "chart.axis.age_months", "charts.axis.headc_cm", "cm"),
    "muac": ChartSpec("muac", "age", 4, MUAC_FIRST_DAY, LAST_DAY, 14, 10.0, "chart.title.muac",
                      "chart.axis.age_months", "chart.axis.muac_mm", "mm"),
}
# fmt: on


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """One age range: its ends in months, the month step of its axis, the curves' day step and
    the length range of its weight-for-length or weight-for-height chart."""

    first_month: int
    last_month: int
    tick_months: int
    day_step: int
    length_kind: ChartKind
    length_cm: tuple[float, float]


RANGES: dict[AgeRange, RangeSpec] = {
    "0-6m": RangeSpec(0, 6, 1, 1, "wfl", (45.0, 80.0)),
    "0-2y": RangeSpec(0, 24, 2, 4, "wfl", (45.0, 110.0)),
    "2-5y": RangeSpec(24, 60, 6, 7, "wfh", (65.0, 120.0)),
    "0-5y": RangeSpec(0, 60, 6, 14, "wfh", (65.0, 120.0)),
}


def range_kinds(age_range: AgeRange) -> tuple[ChartKind, ...]:
    """The charts shown for ``age_range``: the age charts and its weight-for-length/height."""
    return ("wfa", "lhfa", RANGES[age_range].length_kind, "bfa", "hcfa", "muac")


def range_for_age(age_days: int) -> AgeRange:
    """The range a child's charts open on: their own (WHO Anthro's 0–6 months, 0–2 years,
    2–5 years; a child past five stays on 2–5 years)."""
    if age_days < 6 * DAYS_PER_MONTH:
        return "0-6m"
    return "0-2y" if age_days < HEIGHT_FROM_DAY else "2-5y"


def _x_range(spec: ChartSpec, age_range: AgeRange) -> tuple[float, float]:
    """The x range plotted (days or cm): the range's ends, MUAC from WHO's first day (91)."""
    rng = RANGES[age_range]
    if spec.source == "length":
        if age_range == "0-5y":
            return spec.x_min, spec.x_max
        low, high = rng.length_cm
        return max(low, spec.x_min), min(high, spec.x_max)
    x_min = rng.first_month * DAYS_PER_MONTH
    x_max = rng.last_month * DAYS_PER_MONTH
    return max(x_min, spec.x_min), x_max


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


def _lms_rows(
    spec: ChartSpec, sex: str, tables: GrowthTables, age_range: AgeRange = "0-5y"
) -> tuple[np.ndarray, np.ndarray]:
    """The x values (days or cm) sampled for ``spec`` over ``age_range`` and their LMS rows:
    whole days (every table row of the range's step, both ends, both sides of the 731-day step)
    or 0.1 cm rows."""
    sex_index = 1 if sex == "F" else 0
    x_min, x_max = _x_range(spec, age_range)
    if spec.source == "age":
        first, last = math.ceil(x_min - 1e-9), math.floor(x_max + 1e-9)
        step = RANGES[age_range].day_step
        days = set(range(first, last + 1, step)) | {last}
        if spec.kind in _STEPPED and first < HEIGHT_FROM_DAY <= last:
            days |= {HEIGHT_FROM_DAY - 1, HEIGHT_FROM_DAY}
        xs = np.array(sorted(days), dtype=float)
        return xs, tables.by_age[spec.table, sex_index, xs.astype(int)]
    count = round((x_max - x_min) / spec.x_step) + 1
    xs = np.round(np.linspace(x_min, x_max, count), 1)
    rows = np.round(xs * 10).astype(int) - LENGTH_ROW_OFFSET
    return xs, tables.by_length[spec.table, sex_index, rows]


def reference_curves(
    kind: ChartKind,
    sex: str,
    tables: GrowthTables | None = None,
    age_range: AgeRange = "0-5y",
) -> dict[int, list[list[tuple[float, float]]]]:
    """The SD curves of one chart as ``{k: [segment, …]}``, each segment a list of
    ``(x, value)`` with x in days or cm and values in the chart's unit.

    Length/height-for-age and BMI-for-age have two segments per curve over a range that spans
    two years: WHO's tables step from lying length to standing height at 731 days, and joining
    them would draw a growth spurt (or a fall) that is not there. The curves of the pinned tables
    are computed once per chart, sex and range.
    """
    if tables is None:
        return _cached_curves(kind, sex, age_range)
    return _curves_of(kind, sex, tables, age_range)


@functools.lru_cache(maxsize=64)
def _cached_curves(
    kind: ChartKind, sex: str, age_range: AgeRange
) -> dict[int, list[list[tuple[float, float]]]]:
    return _curves_of(kind, sex, load_tables(), age_range)


def _curves_of(
    kind: ChartKind, sex: str, tables: GrowthTables, age_range: AgeRange
) -> dict[int, list[list[tuple[float, float]]]]:
    spec = SPECS[kind]
    xs, rows = _lms_rows(spec, sex, tables, age_range)
    curves: dict[int, list[list[tuple[float, float]]]] = {}
    for k in SD_LINES:
        segments: list[list[tuple[float, float]]] = [[]]
        for x, lms in zip(xs, rows, strict=True):
            if spec.kind in _STEPPED and x == HEIGHT_FROM_DAY and segments[-1]:
                segments.append([])
            segments[-1].append((float(x), sd_value(lms, k) * spec.y_scale))
        curves[k] = segments
    return curves


def curve_value(kind: ChartKind, sex: str, day: int, k: float) -> float:
    """The value of an age chart's curve at ``k`` SD on ``day`` (WHO's own row of that day), in
    the chart's unit: what a child measured at exactly ``k`` SD that day measures."""
    spec = SPECS[kind]
    if spec.source != "age":
        raise ValueError(f"{kind!r} is not an age chart")
    sex_index = 1 if sex == "F" else 0
    return sd_value(load_tables().by_age[spec.table, sex_index, day], k) * spec.y_scale


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
        headc = _number(enc.data.get("headc_cm"))
        oedema = int(enc.data.get("oedema_grade") or 0) > 0
        if weight is not None and not oedema:  # oedema fluid is not growth (WHO)
            out["wfa"].append(ChartPoint(age, weight, enc.occurred_on))
        if length is not None:
            adjusted = adjusted_length(age, length, enc.data.get("measure"))
            out["lhfa"].append(ChartPoint(age, adjusted, enc.occurred_on))
            if weight is not None and not oedema:
                kind: ChartKind = "wfl" if age < HEIGHT_FROM_DAY else "wfh"
                out[kind].append(ChartPoint(round(adjusted, 1), weight, enc.occurred_on))
                bmi = weight / (adjusted / 100) ** 2  # WHO: from the adjusted length
                out["bfa"].append(ChartPoint(age, bmi, enc.occurred_on))
        if headc is not None:
            out["hcfa"].append(ChartPoint(age, headc, enc.occurred_on))
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
    plot_bottom: float = HEIGHT - BOTTOM

    def px(self, x: float) -> float:
        return LEFT + (x - self.x_min) / (self.x_max - self.x_min) * (WIDTH - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return TOP + (self.y_max - y) / (self.y_max - self.y_min) * (self.plot_bottom - TOP)


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
    age_range: AgeRange = "0-5y",
) -> tuple[Frame, float]:
    """The plotted ranges: the age range's months across (MUAC from WHO's first day, 91, shown
    as 3 months), and the curves and points up, widened to whole ticks."""
    values = [y for segs in curves.values() for seg in segs for _x, y in seg]
    values += [p.y for p in points]
    low, high = min(values), max(values)
    step = nice_step(high - low)
    x_min, x_max = _x_range(spec, age_range)
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


def _x_ticks(
    spec: ChartSpec, frame: Frame, age_range: AgeRange = "0-5y"
) -> list[tuple[float, float]]:
    """``(value, label value)`` pairs: the range's months on age charts (every month over 0–6
    months, every 2 over 0–2 years, every 6 otherwise), nice cm steps otherwise. MUAC's first
    tick, 3 months, sits on WHO's first day (91), where the axis and the curves start."""
    if spec.source == "age":
        rng = RANGES[age_range]
        first = math.ceil(frame.x_min / DAYS_PER_MONTH - 1e-6)
        months = [m for m in range(first, rng.last_month + 1)
                  if m % rng.tick_months == 0 or m == first]  # fmt: skip
        return [
            (frame.x_min if abs(m * DAYS_PER_MONTH - frame.x_min) < 1 else m * DAYS_PER_MONTH,
             float(m))
            for m in months
        ]  # fmt: skip
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


def _axes(
    spec: ChartSpec, frame: Frame, y_step: float, lang: str, age_range: AgeRange = "0-5y"
) -> list[str]:
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
    for value, shown in _x_ticks(spec, frame, age_range):
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
    start = max(MUAC_CUTOFF_FROM_MONTH * DAYS_PER_MONTH, frame.x_min)
    if start >= frame.x_max - 1:  # 0–6 months: the cut-offs apply from 6 months only
        return out
    x1 = round(frame.px(start), 1)
    for mm in MUAC_CUTOFFS_MM:
        if not frame.y_min <= mm <= frame.y_max:
            continue
        py = round(frame.py(mm), 1)
        out.append(_el("line", class_="cutoff", data_value=mm, x1=x1, x2=WIDTH - RIGHT, y1=py,
                       y2=py, **_CUTOFF))  # fmt: skip
        out.append(_el("text", translate("chart.cutoff", lang, mm=mm), class_="cutoff-label",
                       x=x1 + 4, y=py - 4, font_size=10, fill=_CUTOFF["stroke"]))  # fmt: skip
    return out


def at_months(age_days: float, lang: str) -> str:
    """An age in months to one decimal ("a los 7,3 meses"); a whole month by its plural rule
    ("a 1 mes"), a fraction in the plural form, as the three languages write decimals."""
    months = round(age_days / DAYS_PER_MONTH, 1)
    if months == int(months):
        return translate_plural("chart.at_months", int(months), lang, months=int(months))
    return translate("chart.at_months.other", lang, months=format_number(months, lang, 1))


def _point_text(spec: ChartSpec, point: ChartPoint, lang: str) -> str:
    value = f"{format_number(point.y, lang, 0 if spec.unit == 'mm' else 1)} {spec.unit}"
    if spec.source == "age":
        where = at_months(point.x, lang)
    else:
        where = f"{format_number(point.x, lang, 1)} cm"
    when = dmy_date(point.on) if point.on else ""
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
    return translate_plural("chart.desc", len(points), lang, latest=_point_text(spec, latest, lang))


def growth_chart(
    kind: ChartKind,
    sex: str,
    points: Sequence[ChartPoint] = (),
    lang: str = "es",
    *,
    id_prefix: str = "chart",
    tables: GrowthTables | None = None,
    age_range: AgeRange = "0-5y",
) -> str:
    """One WHO growth chart with a child's points, as an escaped, self-contained SVG string.

    ``sex`` is ``"F"`` or ``"M"``; ``points`` are in the chart's units (see :class:`ChartPoint`);
    points beyond the chart's x range (its age range) are left out rather than drawn at the
    edge, where they would look like real measurements. ``id_prefix`` keeps element ids unique
    when several charts share a page.
    """
    if kind not in SPECS:
        raise ValueError(f"unknown chart kind {kind!r}")
    if sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M', not {sex!r}")
    if age_range not in RANGES:
        raise ValueError(f"unknown age range {age_range!r}")
    spec = SPECS[kind]
    x_low, x_high = _x_range(spec, age_range)
    shown = [p for p in points if x_low <= p.x <= x_high and math.isfinite(p.y)]
    curves = reference_curves(kind, sex, tables, age_range)
    frame, y_step = _frame(spec, curves, shown, age_range)
    title = chart_title(kind, sex, lang)
    tid, did = f"{id_prefix}-{kind}-title", f"{id_prefix}-{kind}-desc"
    parts = [
        _el("title", title, id=tid),
        _el("desc", _description(spec, shown, lang), id=did),
        *_axes(spec, frame, y_step, lang, age_range),
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
        data_range=age_range,
        data_x_min=frame.x_min,
        data_x_max=frame.x_max,
        data_y_min=frame.y_min,
        data_y_max=frame.y_max,
    )
    return f"<svg{root}>{''.join(parts)}</svg>"


# ── z-score trend ──────────────────────────────────────────────────────────────

ZIndicator = Literal["waz", "haz", "whz", "baz", "hcz", "muacz"]
#: Every indicator of the trend, in WHO Anthro's order, with its colour (Okabe–Ito, told apart
#: without colour vision by the marker) and marker.
Z_SERIES: tuple[tuple[ZIndicator, str, str], ...] = (
    ("waz", "#0072b2", "circle"),
    ("haz", "#d55e00", "square"),
    ("whz", "#009e73", "triangle"),
    ("baz", "#cc79a7", "diamond"),
    ("hcz", "#8a6100", "down"),
    ("muacz", "#444444", "ring"),
)
Z_HEIGHT = 460
_Z_PLOT_BOTTOM = Z_HEIGHT - 108
_Z_LIMIT = 6.0  # beyond ±6 a z-score is implausible for every indicator (WHO flags)
_Z_LINES = {0: ("#1b6e3a", None), 2: ("#c77700", "5 3"), -2: ("#c77700", "5 3"),
            3: ("#b3261e", "2 3"), -3: ("#b3261e", "2 3")}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ZPoint:
    """One stored z-score: age in days, z, and the visit's date."""

    age_days: int
    z: float
    on: date


class ScoredEncounterLike(Protocol):
    """What :func:`zscore_points` reads from an encounter (an ``EncounterView``)."""

    @property
    def active(self) -> bool: ...

    @property
    def occurred_on(self) -> date: ...

    @property
    def assessment(self) -> dict[str, Any]: ...


def zscore_points(
    birth_date: date, encounters: Iterable[ScoredEncounterLike]
) -> dict[ZIndicator, list[ZPoint]]:
    """Every indicator's z-scores as stored with each active visit (computed when it was saved,
    by the engine, from WHO's tables), by date; a missing z-score (not measured, oedema, outside
    WHO's range) is simply not there."""
    out: dict[ZIndicator, list[ZPoint]] = {name: [] for name, _c, _m in Z_SERIES}
    for enc in sorted((e for e in encounters if e.active), key=lambda e: e.occurred_on):
        scores = (enc.assessment or {}).get("zscores") or {}
        age = (enc.occurred_on - birth_date).days
        for name, _colour, _marker in Z_SERIES:
            z = scores.get(name)
            if isinstance(z, int | float) and not isinstance(z, bool) and math.isfinite(z):
                out[name].append(ZPoint(age, float(z), enc.occurred_on))
    return out


def format_z(value: float, lang: str) -> str:
    """A z-score with its sign, two decimals, a true minus and the language's decimal mark."""
    text = f"{value:+.2f}".replace("-", "−")
    return text.replace(".", ",") if lang in ("es", "pt") else text


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    r = 4.5
    common: dict[str, Any] = {"class_": "point", "fill": colour, "stroke": "#ffffff",
                              "stroke_width": 1}  # fmt: skip
    if shape == "circle":
        return _el("circle", cx=f"{x:.1f}", cy=f"{y:.1f}", r=r, **common)
    if shape == "ring":
        return _el("circle", class_="point", cx=f"{x:.1f}", cy=f"{y:.1f}", r=r - 0.5,
                   fill="#ffffff", stroke=colour, stroke_width=2)  # fmt: skip
    if shape == "square":
        return _el("rect", x=f"{x - 4:.1f}", y=f"{y - 4:.1f}", width=8, height=8, **common)
    corners = {
        "triangle": ((0, -5.5), (5, 4), (-5, 4)),
        "down": ((0, 5.5), (5, -4), (-5, -4)),
        "diamond": ((0, -5.5), (5.5, 0), (0, 5.5), (-5.5, 0)),
    }[shape]
    pts = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in corners)
    return _el("polygon", points=pts, **common)


def _z_frame(series: dict[ZIndicator, list[ZPoint]]) -> tuple[Frame, int]:
    """Ages across (whole months, at least six), z up (at least −4 to +4, at most ±6)."""
    points = [p for pts in series.values() for p in pts if abs(p.z) <= _Z_LIMIT]
    if not points:
        return Frame(0, 6 * DAYS_PER_MONTH, -4, 4, _Z_PLOT_BOTTOM), 1
    first = min(p.age_days for p in points) / DAYS_PER_MONTH
    last = max(p.age_days for p in points) / DAYS_PER_MONTH
    span = max(last - first, 1.0)
    step = 1 if span <= 8 else 3 if span <= 24 else 6
    low = max(0, math.floor(first / step) * step)
    high = max(math.ceil(last / step) * step, low + step * 2)
    if high == last:  # a point on the last month stays inside the frame
        high += step
    z_low = max(-_Z_LIMIT, min(-4.0, math.floor(min(p.z for p in points))))
    z_high = min(_Z_LIMIT, max(4.0, math.ceil(max(p.z for p in points))))
    frame = Frame(low * DAYS_PER_MONTH, high * DAYS_PER_MONTH, z_low, z_high, _Z_PLOT_BOTTOM)
    return frame, step


def _z_point_text(name: ZIndicator, point: ZPoint, lang: str) -> str:
    return translate(
        "charts.z.point", lang, date=dmy_date(point.on),
        indicator=translate(f"charts.z.{name}", lang), z=format_z(point.z, lang),
        where=at_months(point.age_days, lang),
    )  # fmt: skip


def _z_axes(frame: Frame, step: int, lang: str) -> list[str]:
    plot_h = frame.plot_bottom - TOP
    out = [_el("rect", class_="plot", x=LEFT, y=TOP, width=_PLOT_W, height=plot_h,
               fill="#ffffff", stroke="#6b6b6b")]  # fmt: skip
    z = frame.y_min
    while z <= frame.y_max + 1e-9:
        py = round(frame.py(z), 1)
        out.append(_el("line", x1=LEFT, x2=WIDTH - RIGHT, y1=py, y2=py, **_GRID))
        out.append(_el("text", format_number(z, lang, 0).replace("-", "−"), class_="tick y-tick",
                       x=LEFT - 6, y=py + 4, text_anchor="end", **_TICK))  # fmt: skip
        z += 1
    first, last = round(frame.x_min / DAYS_PER_MONTH), round(frame.x_max / DAYS_PER_MONTH)
    for month in range(first, last + 1, step):
        px = round(frame.px(month * DAYS_PER_MONTH), 1)
        out.append(_el("line", x1=px, x2=px, y1=TOP, y2=frame.plot_bottom, **_GRID))
        out.append(_el("text", str(month), class_="tick x-tick", x=px,
                       y=frame.plot_bottom + 16, text_anchor="middle", **_TICK))  # fmt: skip
    for k, (colour, dash) in _Z_LINES.items():
        if not frame.y_min <= k <= frame.y_max:
            continue
        py = round(frame.py(k), 1)
        out.append(_el("line", class_=f"zline sd{k:+d}", data_sd=k, x1=LEFT, x2=WIDTH - RIGHT,
                       y1=py, y2=py, stroke=colour, stroke_width=2 if k == 0 else 1.2,
                       stroke_dasharray=dash))  # fmt: skip
        out.append(_el("text", "0" if k == 0 else f"{k:+d}".replace("-", "−"),
                       class_=f"curve-label sd{k:+d}", x=WIDTH - RIGHT + 4, y=py + 4,
                       font_size=11, fill=colour))  # fmt: skip
    mid_x, mid_y = LEFT + _PLOT_W / 2, TOP + plot_h / 2
    out.append(_el("text", translate("chart.axis.age_months", lang), class_="axis-label x-label",
                   x=mid_x, y=frame.plot_bottom + 36, **_AXIS_LABEL))  # fmt: skip
    out.append(_el("text", translate("charts.z.axis", lang), class_="axis-label y-label",
                   x=14, y=mid_y, transform=f"rotate(-90 14 {mid_y})", **_AXIS_LABEL))  # fmt: skip
    return out


def _z_legend(lang: str) -> list[str]:
    out: list[str] = []
    for i, (name, colour, shape) in enumerate(Z_SERIES):
        x = LEFT + (i % 3) * 190
        y = Z_HEIGHT - 44 + (i // 3) * 22
        label = _el("text", translate(f"charts.z.{name}", lang), x=x + 14, y=y + 4,
                    font_size=11, fill="#222222")  # fmt: skip
        out.append(f'<g class="legend-item" data-indicator="{name}">'
                   f"{_marker(shape, x + 4, y, colour)}{label}</g>")  # fmt: skip
    return out


def zscore_trend(
    series: dict[ZIndicator, list[ZPoint]], lang: str = "es", *, id_prefix: str = "chart"
) -> str:
    """Every indicator's z-score over age on one chart (WHO Anthro's z-score view): reference
    lines at 0, ±2 and ±3, one coloured line and marker per indicator, a legend, each point's
    date, value and age in its tooltip. Points beyond ±6 (implausible, flagged) are left out."""
    frame, step = _z_frame(series)
    title = translate("charts.z.title", lang)
    shown = {
        name: sorted((p for p in series.get(name, []) if abs(p.z) <= _Z_LIMIT),
                     key=lambda p: p.age_days)
        for name, _c, _m in Z_SERIES
    }  # fmt: skip
    count = sum(len(pts) for pts in shown.values())
    desc = (
        translate_plural("charts.z.desc", count, lang, count=count)
        if count
        else translate("charts.z.empty", lang)
    )
    tid, did = f"{id_prefix}-z-title", f"{id_prefix}-z-desc"
    parts = [_el("title", title, id=tid), _el("desc", desc, id=did), *_z_axes(frame, step, lang)]
    for name, colour, shape in Z_SERIES:
        pts = shown[name]
        group = [f'<g class="zseries" data-indicator="{name}">']
        if len(pts) > 1:
            path = " ".join(f"{frame.px(p.age_days):.1f},{frame.py(p.z):.1f}" for p in pts)
            group.append(_el("polyline", class_="trajectory", points=path, fill="none",
                             stroke=colour, stroke_width=1.6))  # fmt: skip
        for p in pts:
            title_el = _el("title", _z_point_text(name, p, lang))
            marker = _marker(shape, frame.px(p.age_days), frame.py(p.z), colour)
            group.append(f'<g class="measurement" data-x="{p.age_days}" data-z="{p.z}">'
                         f"{title_el}{marker}</g>")  # fmt: skip
        group.append("</g>")
        parts.append("".join(group))
    if not count:
        parts.append(_el("text", translate("charts.z.empty", lang), class_="empty",
                         x=LEFT + _PLOT_W / 2, y=TOP + (frame.plot_bottom - TOP) / 2,
                         text_anchor="middle", font_size=13, fill="#555555"))  # fmt: skip
    parts += _z_legend(lang)
    parts.append(_el("text", title, class_="chart-title", x=LEFT, y=22, font_size=14,
                     font_weight="bold", fill="#111111"))  # fmt: skip
    parts.append(_el("text", translate("charts.z.source", lang), class_="chart-source",
                     x=WIDTH - RIGHT, y=22, text_anchor="end", font_size=10,
                     fill="#555555"))  # fmt: skip
    root = _attrs(
        xmlns="http://www.w3.org/2000/svg",
        class_="growth-chart chart-z",
        role="img",
        aria_label=title,
        aria_describedby=did,
        viewBox=f"0 0 {WIDTH} {Z_HEIGHT}",
        width=WIDTH,
        height=Z_HEIGHT,
        font_family="system-ui, sans-serif",
        data_kind="z",
        data_x_min=frame.x_min,
        data_x_max=frame.x_max,
        data_y_min=frame.y_min,
        data_y_max=frame.y_max,
    )
    return f"<svg{root}>{''.join(parts)}</svg>"
