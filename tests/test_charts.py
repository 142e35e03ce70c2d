"""The server-drawn growth charts: WHO curves where the LMS tables put them, the child's points
where the measurements put them, only active encounters, escaped text, accessible markup."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from contigo.charts import (
    BOTTOM,
    CHART_KINDS,
    DAYS_PER_MONTH,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    ChartPoint,
    adjusted_length,
    chart_points,
    format_number,
    growth_chart,
    nice_step,
    reference_curves,
    sd_value,
)
from contigo.nutrition.tables import load_tables

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def to_value(root: ET.Element, px: float, py: float) -> tuple[float, float]:
    """Invert the chart's pixel mapping using the ranges it declares on its root."""
    x_min, x_max = float(root.get("data-x-min", "")), float(root.get("data-x-max", ""))
    y_min, y_max = float(root.get("data-y-min", "")), float(root.get("data-y-max", ""))
    x = x_min + (px - LEFT) / (WIDTH - LEFT - RIGHT) * (x_max - x_min)
    y = y_max - (py - TOP) / (HEIGHT - TOP - BOTTOM) * (y_max - y_min)
    return x, y


def polyline(root: ET.Element, sd: int) -> list[list[tuple[float, float]]]:
    segments = []
    for line in root.iterfind(f".//svg:polyline[@data-sd='{sd}']", NS):
        pts = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
        segments.append([(x, y) for x, y in pts])
    return segments


def test_sd_value_matches_the_lms_formula_and_the_box_cox_limit() -> None:
    assert sd_value((1.0, 10.0, 0.1), 2) == pytest.approx(12.0)
    assert sd_value((0.0, 10.0, 0.1), -2) == pytest.approx(10 * math.exp(-0.2))
    assert sd_value((-0.3521, 7.4327, 0.08217), 0) == pytest.approx(7.4327)


@pytest.mark.parametrize("kind", CHART_KINDS)
@pytest.mark.parametrize("sex", ["F", "M"])
def test_every_chart_draws_five_ordered_sd_curves(kind: str, sex: str) -> None:
    root = parse(growth_chart(kind, sex, lang="en"))  # type: ignore[arg-type]
    assert root.get("role") == "img"
    assert root.get("aria-label")
    assert root.find("svg:title", NS) is not None
    medians = polyline(root, 0)
    assert medians, "median curve missing"
    for low, high in ((-3, -2), (-2, 0), (0, 2), (2, 3)):
        lows, highs = polyline(root, low), polyline(root, high)
        for seg_low, seg_high in zip(lows, highs, strict=True):
            # SVG y grows downwards: a higher SD curve is drawn above (smaller y).
            assert all(b[1] < a[1] for a, b in zip(seg_low, seg_high, strict=True))


def test_weight_for_age_median_sits_at_the_table_median() -> None:
    tables = load_tables()
    root = parse(growth_chart("wfa", "F", lang="en"))
    (segment,) = polyline(root, 0)
    # The first vertex is day 0: WHO's median birth weight of a girl is 3.2322 kg.
    x, y = to_value(root, *segment[0])
    assert x == pytest.approx(0, abs=0.5)
    assert y == pytest.approx(float(tables.by_age[0, 1, 0, 1]), abs=0.01)
    x, y = to_value(root, *segment[-1])
    assert x == pytest.approx(1826, abs=1)
    assert y == pytest.approx(float(tables.by_age[0, 1, 1826, 1]), abs=0.01)


def test_minus_three_sd_curve_follows_the_lms_formula() -> None:
    tables = load_tables()
    root = parse(growth_chart("wfl", "M", lang="en"))
    (segment,) = polyline(root, -3)
    x, y = to_value(root, *segment[10])  # 45.0 + 10 × 0.5 = 50.0 cm
    assert x == pytest.approx(50.0, abs=0.05)
    lms = tables.by_length[0, 0, 500 - 450]
    assert y == pytest.approx(sd_value(lms, -3), abs=0.01)


def test_length_for_age_curves_step_at_two_years() -> None:
    curves = reference_curves("lhfa", "M")
    for segments in curves.values():
        assert len(segments) == 2
        assert segments[0][-1][0] == 730 and segments[1][0][0] == 731
    root = parse(growth_chart("lhfa", "M", lang="en"))
    assert len(polyline(root, 2)) == 2


def test_muac_chart_is_in_millimetres_from_three_months_with_cut_offs() -> None:
    tables = load_tables()
    curves = reference_curves("muac", "F")
    first_x, first_y = curves[0][0][0]
    assert first_x == 91
    assert first_y == pytest.approx(float(tables.by_age[4, 1, 91, 1]) * 10)
    root = parse(growth_chart("muac", "F", lang="en"))
    cutoffs = sorted(
        int(e.get("data-value", "0")) for e in root.iterfind(".//svg:line[@class='cutoff']", NS)
    )
    assert cutoffs == [115, 125]


def test_points_are_plotted_where_the_measurements_are() -> None:
    pts = [
        ChartPoint(400, 110, date(2025, 1, 10)),
        ChartPoint(500, 118, date(2025, 4, 20)),
    ]
    root = parse(growth_chart("muac", "F", pts, lang="en"))
    circles = root.findall(".//svg:circle[@class='point']", NS)
    assert len(circles) == 2
    for circle, point in zip(circles, pts, strict=True):
        x, y = to_value(root, float(circle.get("cx", "")), float(circle.get("cy", "")))
        assert x == pytest.approx(point.x, abs=2)
        assert y == pytest.approx(point.y, abs=0.3)
    assert root.find(".//svg:polyline[@class='trajectory']", NS) is not None
    titles = [t.text or "" for t in root.iterfind(".//svg:g[@class='measurement']/svg:title", NS)]
    assert titles[0].startswith("10/01/2025: 110 mm")


def test_a_point_far_below_the_curves_widens_the_y_range() -> None:
    root = parse(growth_chart("wfa", "M", [ChartPoint(900, 3.0, date(2025, 1, 1))], lang="en"))
    assert float(root.get("data-y-min", "")) <= 3.0
    (circle,) = root.findall(".//svg:circle[@class='point']", NS)
    assert TOP <= float(circle.get("cy", "")) <= HEIGHT - BOTTOM


def test_points_outside_the_x_range_are_left_out() -> None:
    root = parse(growth_chart("wfh", "M", [ChartPoint(50.0, 3.0), ChartPoint(80.0, 9.0)]))
    assert len(root.findall(".//svg:circle", NS)) == 1


def test_labels_follow_the_language() -> None:
    for lang, axis in (("es", "Edad (meses)"), ("pt", "Idade (meses)"), ("en", "Age (months)")):
        root = parse(growth_chart("wfa", "F", lang=lang))
        labels = [t.text for t in root.iterfind(".//svg:text[@class='axis-label x-label']", NS)]
        assert labels == [axis]
    root = parse(growth_chart("wfa", "F", [ChartPoint(365, 7.25, date(2025, 1, 1))], lang="es"))
    desc = root.find("svg:desc", NS)
    assert desc is not None and "7,2" in (desc.text or "")


def test_text_is_escaped() -> None:
    from contigo.i18n import catalogue

    cat = catalogue("en")
    original = cat["chart.sex.F"]
    cat["chart.sex.F"] = '<girls & "co">'
    try:
        svg = growth_chart("wfa", "F", lang="en")
    finally:
        cat["chart.sex.F"] = original
    root = parse(svg)  # would raise on unescaped markup
    assert '<girls & "co">' in (root.get("aria-label") or "")
    assert "<girls" not in svg


def test_ids_are_unique_per_prefix() -> None:
    a = parse(growth_chart("wfa", "F", id_prefix="a"))
    b = parse(growth_chart("wfa", "F", id_prefix="b"))
    ids_a = {e.get("id") for e in a.iter() if e.get("id")}
    ids_b = {e.get("id") for e in b.iter() if e.get("id")}
    assert ids_a and not ids_a & ids_b


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        growth_chart("bmi", "F")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sex"):
        growth_chart("wfa", "X")


@dataclass
class Enc:
    occurred_on: date
    data: dict[str, Any]
    active: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def test_chart_points_keep_only_active_encounters_and_adjust_length() -> None:
    born = date(2023, 1, 1)
    encounters = [
        Enc(
            date(2024, 6, 1), {"weight_kg": 7.1, "lenhei_cm": 70.0, "measure": "h", "muac_mm": 112}
        ),
        Enc(date(2024, 3, 1), {"weight_kg": 99.0, "lenhei_cm": 60.0}, active=False),
        Enc(
            date(2025, 3, 1), {"weight_kg": 9.0, "lenhei_cm": 80.0, "measure": "l", "muac_mm": 126}
        ),
        Enc(date(2025, 4, 1), {"weight_kg": 9.5, "oedema_grade": 2, "muac_mm": 120}),
    ]
    pts = chart_points(born, encounters)
    assert [p.y for p in pts["wfa"]] == [7.1, 9.0]  # voided and oedematous weights are not growth
    assert [p.y for p in pts["lhfa"]] == [pytest.approx(70.7), pytest.approx(79.3)]
    assert [(p.x, p.y) for p in pts["wfl"]] == [(70.7, 7.1)]
    assert [(p.x, p.y) for p in pts["wfh"]] == [(79.3, 9.0)]
    assert [p.y for p in pts["muac"]] == [112, 126, 120]
    assert pts["wfa"][0].x == (date(2024, 6, 1) - born).days


def test_adjusted_length_follows_who_position_rules() -> None:
    assert adjusted_length(400, 70.0, "h") == pytest.approx(70.7)
    assert adjusted_length(800, 85.0, "l") == pytest.approx(84.3)
    assert adjusted_length(200, 65.0, "h") == 65.0  # under 9 months standing: unknown position
    assert adjusted_length(800, 85.0, "h") == 85.0
    assert adjusted_length(400, 70.0, None) == 70.0


def test_nice_steps_and_numbers() -> None:
    assert nice_step(18) == 5.0
    assert nice_step(7) == 1.0
    assert nice_step(100) == 20.0
    assert format_number(7.25, "es") == "7,2"
    assert format_number(7.0, "en") == "7"
    assert format_number(12.5, "pt") == "12,5"


def test_age_axis_is_in_months() -> None:
    root = parse(growth_chart("wfa", "M", lang="en"))
    ticks = [t.text for t in root.iterfind(".//svg:text[@class='tick x-tick']", NS)]
    assert ticks == ["0", "6", "12", "18", "24", "30", "36", "42", "48", "54", "60"]
    assert float(root.get("data-x-max", "")) == pytest.approx(60 * DAYS_PER_MONTH)
