"""Anaemia (NUTRITION.md §6): WHO 2024 cut-offs, severity bands and elevation adjustment.

Expected values are taken from the tables in the spec; equation values are worked by hand.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contigo.nutrition.anaemia import (
    CUTOFFS,
    HbGroup,
    assess_hb,
    child_group,
    elevation_adjustment,
    smoking_adjustment,
    woman_group,
)
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.labels import LABELS, LANGS
from contigo.nutrition.profiles import PE, WHO

# (hb, severity) at sea level, for each band edge of each group.
SIX_23 = [
    (105, "none"),
    (104.9, "mild"),
    (95, "mild"),
    (94.9, "moderate"),
    (70, "moderate"),
    (69.9, "severe"),
]
TWENTY4_59 = [
    (110, "none"),
    (109.9, "mild"),
    (100, "mild"),
    (99.9, "moderate"),
    (70, "moderate"),
    (69.9, "severe"),
]
WOMEN = [
    (120, "none"),
    (119.9, "mild"),
    (110, "mild"),
    (109.9, "moderate"),
    (80, "moderate"),
    (79.9, "severe"),
]
CASES: list[tuple[HbGroup, float, str]] = [
    *(("child_6_23", hb, sev) for hb, sev in SIX_23),
    *(("child_24_59", hb, sev) for hb, sev in TWENTY4_59),
    *(("woman_non_pregnant", hb, sev) for hb, sev in WOMEN),
    *(("pregnant_t1", hb, sev) for hb, sev in TWENTY4_59),
    *(("pregnant_t2", hb, sev) for hb, sev in SIX_23),
    *(("pregnant_t3", hb, sev) for hb, sev in TWENTY4_59),
]


@pytest.mark.parametrize(("group", "hb", "severity"), CASES)
def test_cutoffs_and_severity_at_sea_level(group: HbGroup, hb: float, severity: str) -> None:
    for profile in (WHO, PE):
        result = assess_hb(hb, group, 0, profile)
        assert result.hb_adjusted_g_l == hb
        assert result.severity == severity
        assert result.anaemic is (severity != "none")


def test_anaemia_thresholds() -> None:
    assert {g: c.anaemia_below for g, c in CUTOFFS.items()} == {
        "child_6_23": 105,
        "child_24_59": 110,
        "woman_non_pregnant": 120,
        "pregnant_t1": 110,
        "pregnant_t2": 105,
        "pregnant_t3": 110,
    }


@pytest.mark.parametrize(
    ("elevation", "grams"),
    [
        (-400, 0),
        (0, 0),
        (999, 0),
        (1000, 2),
        (1499, 2),
        (1500, 5),
        (1999, 5),
        (2000, 8),
        (2499, 8),
        (2500, 13),
        (2999, 13),
        (3000, 19),
        (3499, 19),
        (3500, 27),
        (3999, 27),
        (4000, 35),
        (4499, 35),
        (4500, 45),
        (5800, 45),
    ],
)
def test_step_table(elevation: float, grams: float) -> None:
    assert elevation_adjustment(elevation, "steps") == grams


@pytest.mark.parametrize(
    ("elevation", "grams"),
    [
        (-400, 0.0),
        (0, 0.0),
        (500, 2.8942),  # 2.8192 + 0.075
        (1000, 5.9384),  # 5.6384 + 0.3
        (2000, 12.4768),  # 11.2768 + 1.2
        (3000, 19.6152),  # 16.9152 + 2.7
        (4000, 27.3536),  # 22.5536 + 4.8
    ],
)
def test_who2024_equation(elevation: float, grams: float) -> None:
    assert elevation_adjustment(elevation, "who2024") == pytest.approx(grams, abs=1e-9)


def test_steps_method_boundaries_through_assess() -> None:
    # Peru: 2000 m subtracts 8 g/L; a child 6–23 months is anaemic below 105 adjusted.
    assert assess_hb(113, "child_6_23", 2000, PE).severity == "none"
    low = assess_hb(112.9, "child_6_23", 2000, PE)
    assert (low.hb_adjusted_g_l, low.severity, low.method) == (104.9, "mild", "steps")
    assert assess_hb(112.9, "child_6_23", 1999, PE).severity == "none"  # 5 g/L → 107.9


def test_who2024_through_assess_rounds_adjustment_first() -> None:
    # 2000 m: 12.4768 → 12.5 g/L.
    ok = assess_hb(117.5, "child_6_23", 2000, WHO)
    assert (ok.elevation_adjustment_g_l, ok.hb_adjusted_g_l, ok.anaemic) == (12.5, 105.0, False)
    low = assess_hb(117.4, "child_6_23", 2000, WHO)
    assert (low.hb_adjusted_g_l, low.severity, low.method) == (104.9, "mild", "who2024")
    # 1 m: 0.0056 rounds to 0.0, so 105 stays 105.
    assert assess_hb(105, "child_6_23", 1, WHO).severity == "none"


def test_not_applicable_group() -> None:
    result = assess_hb(90, None, 0, WHO)
    assert (result.anaemic, result.severity, result.threshold_g_l) == (None, "not_applicable", None)
    assert result.hb_adjusted_g_l == 90
    for lang in LANGS:
        assert result.label(lang)


@pytest.mark.parametrize(
    ("age_days", "group"),
    [
        (0, None),
        (182, None),
        (183, "child_6_23"),
        (730, "child_6_23"),
        (731, "child_24_59"),
        (1826, "child_24_59"),
        (1827, None),
    ],
)
def test_child_group(age_days: int, group: str | None) -> None:
    assert child_group(age_days) == group


def test_woman_group() -> None:
    assert woman_group(25, True, 1) == "pregnant_t1"
    assert woman_group(14, True, 2) == "pregnant_t2"
    assert woman_group(30, True, 3) == "pregnant_t3"
    assert woman_group(15, False, None) == "woman_non_pregnant"
    assert woman_group(14, False, None) is None
    with pytest.raises(MeasurementError) as err:
        woman_group(20, True, None)
    assert err.value.code == "missing"


@pytest.mark.parametrize(
    ("hb", "elevation", "field", "code"),
    [
        (19.9, 0, "hb_g_l", "unit"),
        (11.2, 0, "hb_g_l", "unit"),
        (250.1, 0, "hb_g_l", "out_of_range"),
        (110, -501, "elevation_m", "out_of_range"),
        (110, 6001, "elevation_m", "out_of_range"),
    ],
)
def test_impossible_inputs(hb: float, elevation: float, field: str, code: str) -> None:
    with pytest.raises(MeasurementError) as err:
        assess_hb(hb, "child_6_23", elevation, WHO)
    assert (err.value.field, err.value.code) == (field, code)


def test_input_limits_accepted() -> None:
    assess_hb(20, "child_6_23", -500, WHO)
    assess_hb(250, "child_6_23", 6000, PE)


@pytest.mark.parametrize(
    ("smoker", "cigs", "grams"),
    [
        (False, 40, 0),
        (True, None, 3),
        (True, 9, 0),
        (True, 10, 3),
        (True, 19, 3),
        (True, 20, 5),
        (True, 39, 5),
        (True, 40, 7),
    ],
)
def test_smoking_table(smoker: bool, cigs: int | None, grams: float) -> None:
    assert smoking_adjustment(smoker, cigs) == grams


def test_smoking_adjustment_only_where_profile_enables_it() -> None:
    smoking = replace(WHO, code="TSMK", hb_smoking_adjustment=True)
    assert assess_hb(122, "woman_non_pregnant", 0, WHO, smoker=True).severity == "none"
    on = assess_hb(122, "woman_non_pregnant", 0, smoking, smoker=True)
    assert (on.smoking_adjustment_g_l, on.hb_adjusted_g_l, on.severity) == (3.0, 119.0, "mild")
    child = assess_hb(106, "child_6_23", 0, smoking, smoker=True)
    assert child.smoking_adjustment_g_l == 0 and child.severity == "none"


@given(
    hb=st.floats(min_value=20, max_value=250).map(lambda x: round(x, 1)),
    elevation=st.integers(min_value=-500, max_value=6000),
    group=st.sampled_from(list(CUTOFFS)),
)
def test_adjusted_never_above_measured_and_severity_monotone(
    hb: float, elevation: int, group: HbGroup
) -> None:
    order = ["none", "mild", "moderate", "severe"]
    for profile in (WHO, PE):
        result = assess_hb(hb, group, elevation, profile)
        assert result.hb_adjusted_g_l <= hb
        higher = assess_hb(min(250.0, hb + 5), group, elevation, profile)
        assert order.index(higher.severity) <= order.index(result.severity)


def test_group_and_method_labels_exist() -> None:
    keys = [f"hb_group.{g}" for g in CUTOFFS] + ["hb_method.who2024", "hb_method.steps"]
    keys += [f"anaemia.{s}" for s in ("none", "mild", "moderate", "severe", "not_applicable")]
    for key in keys:
        assert all(LABELS[key].get(lang) for lang in LANGS)
