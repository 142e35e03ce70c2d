"""Growth charts as WHO Anthro users expect them (issue 15.7): head-circumference- and
BMI-for-age curves where WHO's own computations put them, the three age ranges and the child's
own, MUAC from 3 months, dates as the app writes them, and the z-score trend of every indicator.

The curves are checked against WHO's own results: ``../shared/reference`` holds children
measured and scored by WHO's igrowup and ``anthro`` software (z-scores rounded to 2 decimals).
A child measured at ``z`` SD lies on the chart's curve of ``z`` SD on that day: the curve's
value there must equal the child's measurement within what rounding z to 2 decimals allows."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from contigo.charts import (
    AGE_RANGES,
    DAYS_PER_MONTH,
    LEFT,
    RANGES,
    ChartPoint,
    ZPoint,
    chart_points,
    curve_value,
    growth_chart,
    range_for_age,
    range_kinds,
    reference_curves,
    sd_value,
    zscore_points,
    zscore_trend,
)
from contigo.nutrition.tables import load_tables

NS = {"svg": "http://www.w3.org/2000/svg"}
REFERENCE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
WHO_CASES = REFERENCE / "who_growth_reference_dev.csv"


def who_cases(column: str) -> list[dict[str, str]]:
    with WHO_CASES.open(encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row[column]]


def value_at(kind: str, sex: str, day: int, z: float, restricted: bool) -> float:
    """The measurement of a child at ``z`` SD on ``day``, read off the chart's curves (beyond
    ±3 SD WHO's restricted indicators extend linearly by the distance between 2 and 3 SD)."""
    if restricted and z > 3:
        sd2, sd3 = curve_value(kind, sex, day, 2), curve_value(kind, sex, day, 3)  # type: ignore[arg-type]
        return sd3 + (z - 3) * (sd3 - sd2)
    if restricted and z < -3:
        sd2, sd3 = curve_value(kind, sex, day, -2), curve_value(kind, sex, day, -3)  # type: ignore[arg-type]
        return sd3 + (z + 3) * (sd2 - sd3)
    return curve_value(kind, sex, day, z)  # type: ignore[arg-type]


def check_against_who(kind: str, measured: str, expected_z: str, restricted: bool) -> int:
    checked = 0
    for row in who_cases(expected_z):
        sex = "M" if row["sex"] == "1" else "F"
        day, z, y = int(row["age_days"]), float(row[expected_z]), float(row[measured])
        # What rounding z to 2 decimals leaves open: half a hundredth of an SD either side.
        low = value_at(kind, sex, day, z - 0.005, restricted)
        high = value_at(kind, sex, day, z + 0.005, restricted)
        assert low - 1e-4 <= y <= high + 1e-4, (row["case_id"], kind, low, y, high)
        assert round(value_at(kind, sex, day, z, restricted), 2) == pytest.approx(
            y, abs=0.01 + (high - low)
        )
        checked += 1
    return checked


def test_head_circumference_curves_agree_with_who_to_two_decimals() -> None:
    assert check_against_who("hcfa", "headc_cm", "exp_zhc", restricted=False) >= 90


def test_bmi_curves_agree_with_who_to_two_decimals() -> None:
    assert check_against_who("bfa", "exp_cbmi", "exp_zbmi", restricted=True) >= 450


def test_muac_curves_agree_with_who_to_two_decimals() -> None:
    rows = who_cases("exp_zac")
    for row in rows:
        row["muac_mm"] = str(float(row["muac_cm"]) * 10)
    checked = 0
    for row in rows:
        sex = "M" if row["sex"] == "1" else "F"
        day, z, y = int(row["age_days"]), float(row["exp_zac"]), float(row["muac_mm"])
        low = value_at("muac", sex, day, z - 0.005, True)
        high = value_at("muac", sex, day, z + 0.005, True)
        assert low - 1e-3 <= y <= high + 1e-3, (row["case_id"], low, y, high)
        checked += 1
    assert checked >= 400


@pytest.mark.parametrize("kind", ["hcfa", "bfa"])
@pytest.mark.parametrize("sex", ["F", "M"])
@pytest.mark.parametrize("age_range", [*AGE_RANGES, "0-5y"])
def test_every_drawn_vertex_is_who_s_row_of_that_day(kind: str, sex: str, age_range: str) -> None:
    """Each vertex is ``SD(k)`` of WHO's LMS row of its day, to two decimals."""
    tables = load_tables()
    table = 3 if kind == "hcfa" else 2
    curves = reference_curves(kind, sex, age_range=age_range)  # type: ignore[arg-type]
    for k, segments in curves.items():
        for segment in segments:
            for day, value in segment:
                lms = tables.by_age[table, 1 if sex == "F" else 0, int(day)]
                assert round(value, 2) == round(sd_value(lms, k), 2)


def test_known_who_values_at_birth() -> None:
    """WHO's medians at birth (head circumference 34.46 cm for boys, 33.88 cm for girls; BMI
    13.41 for boys), as the charts start."""
    assert round(reference_curves("hcfa", "M")[0][0][0][1], 2) == 34.46
    assert round(reference_curves("hcfa", "F")[0][0][0][1], 2) == 33.88
    assert round(reference_curves("bfa", "M")[0][0][0][1], 2) == 13.41


def test_bmi_curves_break_where_the_table_steps_to_height() -> None:
    for segments in reference_curves("bfa", "F").values():
        assert len(segments) == 2
        assert segments[0][-1][0] == 730 and segments[1][0][0] == 731
    for segments in reference_curves("bfa", "F", age_range="2-5y").values():
        assert len(segments) == 1 and segments[0][0][0] == 731
    for segments in reference_curves("lhfa", "M", age_range="0-2y").values():
        assert len(segments) == 1 and segments[0][-1][0] == 730


# ── age ranges ─────────────────────────────────────────────────────────────────


def test_the_child_s_own_range() -> None:
    assert range_for_age(0) == "0-6m"
    assert range_for_age(182) == "0-6m"  # 5.98 months
    assert range_for_age(183) == "0-2y"  # 6.01 months
    assert range_for_age(730) == "0-2y"
    assert range_for_age(731) == "2-5y"
    assert range_for_age(2500) == "2-5y"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def ticks(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iterfind(".//svg:text[@class='tick x-tick']", NS)]


@pytest.mark.parametrize(
    ("age_range", "expected"),
    [
        ("0-6m", ["0", "1", "2", "3", "4", "5", "6"]),
        ("0-2y", [str(m) for m in range(0, 25, 2)]),
        ("2-5y", ["24", "30", "36", "42", "48", "54", "60"]),
    ],
)
def test_each_range_has_its_own_months(age_range: str, expected: list[str]) -> None:
    root = parse(growth_chart("wfa", "F", lang="es", age_range=age_range))  # type: ignore[arg-type]
    assert ticks(root) == expected
    rng = RANGES[age_range]  # type: ignore[index]
    assert float(root.get("data-x-min", "")) == pytest.approx(rng.first_month * DAYS_PER_MONTH)
    assert float(root.get("data-x-max", "")) == pytest.approx(rng.last_month * DAYS_PER_MONTH)
    assert root.get("data-range") == age_range


def test_each_range_shows_six_charts_with_its_weight_for_length_or_height() -> None:
    assert range_kinds("0-6m") == ("wfa", "lhfa", "wfl", "bfa", "hcfa", "muac")
    assert range_kinds("0-2y")[2] == "wfl"
    assert range_kinds("2-5y")[2] == "wfh"


def test_points_outside_the_range_are_left_out() -> None:
    pts = [ChartPoint(100, 6.0, date(2025, 1, 1)), ChartPoint(400, 9.0, date(2025, 10, 1)),
           ChartPoint(900, 12.0, date(2027, 1, 1))]  # fmt: skip
    counts = {
        r: len(parse(growth_chart("wfa", "M", pts, age_range=r)).findall(".//svg:circle", NS))
        for r in AGE_RANGES
    }
    assert counts == {"0-6m": 1, "0-2y": 2, "2-5y": 1}


def test_an_unknown_range_is_refused() -> None:
    with pytest.raises(ValueError, match="range"):
        growth_chart("wfa", "F", age_range="0-9y")  # type: ignore[arg-type]


@pytest.mark.parametrize("age_range", [*AGE_RANGES, "0-5y"])
def test_muac_axis_starts_at_three_months_where_who_s_curve_starts(age_range: str) -> None:
    root = parse(growth_chart("muac", "F", lang="es", age_range=age_range))  # type: ignore[arg-type]
    x_min = float(root.get("data-x-min", ""))
    assert x_min == (91 if age_range != "2-5y" else pytest.approx(24 * DAYS_PER_MONTH))
    first_tick = root.find(".//svg:text[@class='tick x-tick']", NS)
    assert first_tick is not None
    assert first_tick.text == ("3" if age_range != "2-5y" else "24")
    assert float(first_tick.get("x", "")) == pytest.approx(LEFT, abs=0.1)
    median = root.find(".//svg:polyline[@data-sd='0']", NS)
    assert median is not None
    first_x = float(median.get("points", "").split()[0].split(",")[0])
    assert first_x == pytest.approx(LEFT, abs=1.0)  # the curve starts on the axis
    cutoffs = root.findall(".//svg:line[@class='cutoff']", NS)
    assert len(cutoffs) == (0 if age_range == "0-6m" else 2)  # MUAC cut-offs: 6–59 months


# ── points and dates ───────────────────────────────────────────────────────────


@dataclass
class Enc:
    occurred_on: date
    data: dict[str, Any]
    active: bool = True
    assessment: dict[str, Any] = field(default_factory=dict)


def test_head_circumference_and_bmi_points() -> None:
    born = date(2024, 1, 1)
    encounters = [
        Enc(date(2024, 3, 1), {"weight_kg": 5.0, "lenhei_cm": 57.0, "measure": "l",
                               "headc_cm": 38.5}),
        Enc(date(2024, 4, 1), {"weight_kg": 5.6, "lenhei_cm": 59.0, "headc_cm": 39.1,
                               "oedema_grade": 1}),
        Enc(date(2024, 5, 1), {"weight_kg": 9.0, "lenhei_cm": 60.0, "headc_cm": 99.0},
            active=False),
        Enc(date(2025, 3, 1), {"weight_kg": 9.0, "lenhei_cm": 76.0, "measure": "h"}),
    ]  # fmt: skip
    pts = chart_points(born, encounters)
    assert [(p.x, p.y) for p in pts["hcfa"]] == [(60, 38.5), (91, 39.1)]
    # BMI from the adjusted length (standing at 14 months: +0.7 cm); none with oedema.
    assert [round(p.y, 4) for p in pts["bfa"]] == [
        round(5.0 / 0.57**2, 4), round(9.0 / 0.767**2, 4)]  # fmt: skip


@pytest.mark.parametrize("lang", ["es", "pt", "en"])
def test_tooltips_write_dates_as_the_app_does(lang: str) -> None:
    svg = growth_chart("hcfa", "F", [ChartPoint(200, 42.3, date(2025, 3, 7))], lang=lang,
                       age_range="0-2y")  # fmt: skip
    (title,) = [t.text or "" for t in parse(svg).iterfind(".//svg:g/svg:title", NS)]
    decimal = "42.3" if lang == "en" else "42,3"
    assert title.startswith(f"07/03/2025: {decimal} cm")
    assert "2025-03-07" not in svg


def test_charts_are_titled_in_each_language() -> None:
    titles = {lang: parse(growth_chart("hcfa", "M", lang=lang)).get("aria-label")
              for lang in ("es", "pt", "en")}  # fmt: skip
    assert titles == {
        "es": "Perímetro cefálico para la edad, niños",
        "pt": "Perímetro cefálico para idade, meninos",
        "en": "Head circumference-for-age, boys",
    }
    label = parse(growth_chart("bfa", "F", lang="pt")).find(
        ".//svg:text[@class='axis-label y-label']", NS)  # fmt: skip
    assert label is not None and label.text == "IMC (kg/m²)"


# ── z-score trend ──────────────────────────────────────────────────────────────


def scored(on: date, active: bool = True, **z: float | None) -> Enc:
    return Enc(on, {}, active, {"zscores": z})


def test_z_points_come_from_each_active_visit_s_stored_scores() -> None:
    born = date(2024, 1, 1)
    series = zscore_points(born, [
        scored(date(2024, 7, 1), waz=-2.13, haz=-1.5, whz=None, baz=-2.0, hcz=0.4, muacz=-1.0),
        scored(date(2024, 3, 1), waz=-1.0, haz=-1.2, whz=-0.5, baz=-0.7, hcz=0.2, muacz=None),
        scored(date(2024, 5, 1), False, waz=-5.0),
        Enc(date(2024, 6, 1), {}, True, {}),  # a visit without scores (an adult's, a failed one)
    ])  # fmt: skip
    assert [(p.on, p.z) for p in series["waz"]] == [(date(2024, 3, 1), -1.0),
                                                    (date(2024, 7, 1), -2.13)]  # fmt: skip
    assert [p.z for p in series["whz"]] == [-0.5]
    assert [p.z for p in series["muacz"]] == [-1.0]
    assert series["waz"][0].age_days == 60


def test_the_trend_draws_every_indicator_where_its_z_is() -> None:
    series = {
        "waz": [ZPoint(60, -1.0, date(2024, 3, 1)), ZPoint(182, -2.13, date(2024, 7, 1))],
        "haz": [ZPoint(182, -1.5, date(2024, 7, 1))],
        "whz": [ZPoint(60, -0.5, date(2024, 3, 1))],
        "baz": [ZPoint(182, 2.5, date(2024, 7, 1))],
        "hcz": [ZPoint(182, 0.4, date(2024, 7, 1))],
        "muacz": [ZPoint(182, -3.2, date(2024, 7, 1))],
    }
    root = parse(zscore_trend(series, "es", id_prefix="t"))  # type: ignore[arg-type]
    assert root.get("aria-label") == "Puntuaciones z en el tiempo"
    y_min, y_max = float(root.get("data-y-min", "")), float(root.get("data-y-max", ""))
    assert (y_min, y_max) == (-4, 4)
    lines = sorted(int(e.get("data-sd", "")) for e in root.iterfind(".//svg:line[@data-sd]", NS))
    assert lines == [-3, -2, 0, 2, 3]
    legend = [g.get("data-indicator") for g in root.iterfind(".//svg:g[@class='legend-item']", NS)]
    assert legend == ["waz", "haz", "whz", "baz", "hcz", "muacz"]
    groups = {g.get("data-indicator"): g for g in root.iterfind(".//svg:g[@class='zseries']", NS)}
    assert len(groups["waz"].findall(".//svg:g[@class='measurement']", NS)) == 2
    assert groups["waz"].find("svg:polyline", NS) is not None  # two points: joined
    titles = [t.text for t in groups["waz"].iterfind(".//svg:title", NS)]
    assert titles[1] == "01/07/2024: Peso/edad −2,13 a los 6 meses"
    # A point's pixel height maps back to its z.
    muac = groups["muacz"].find(".//svg:circle", NS)
    assert muac is not None
    from contigo.charts import _Z_PLOT_BOTTOM, TOP

    cy = float(muac.get("cy", ""))
    z = y_max - (cy - TOP) / (_Z_PLOT_BOTTOM - TOP) * (y_max - y_min)
    assert z == pytest.approx(-3.2, abs=0.01)


def test_the_trend_in_portuguese_and_when_empty() -> None:
    pt = parse(zscore_trend({"waz": [ZPoint(400, 1.25, date(2025, 2, 5))]}, "pt"))
    (title,) = [t.text for t in pt.iterfind(".//svg:g[@class='measurement']/svg:title", NS)]
    assert title == "05/02/2025: Peso/idade +1,25 aos 13,1 meses"
    empty = parse(zscore_trend({}, "en"))
    desc = empty.find("svg:desc", NS)
    assert desc is not None and desc.text == "No z-scores yet."
    assert empty.find(".//svg:g[@class='measurement']", NS) is None


def test_implausible_z_scores_do_not_stretch_the_trend() -> None:
    root = parse(zscore_trend({"haz": [ZPoint(400, -7.5, date(2025, 1, 1)),
                                       ZPoint(430, -4.6, date(2025, 2, 1))]}, "en"))  # fmt: skip
    assert float(root.get("data-y-min", "")) == -5
    assert len(root.findall(".//svg:g[@class='measurement']", NS)) == 1
