"""Pregnant and lactating women: MUAC cut-offs and gestational age (NUTRITION.md §5)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import pytest

from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.labels import LABELS, LANGS
from contigo.nutrition.profiles import PROFILES, WHO, PlwMuacCutoffs
from contigo.nutrition.women import classify_plw, gestational_age_from_lmp, trimester

SEVERE = replace(WHO, code="T185", plw_muac=PlwMuacCutoffs(230, 185))
CUT_220 = replace(WHO, code="T220", plw_muac=PlwMuacCutoffs(220))
CUT_210 = replace(WHO, code="T210", plw_muac=PlwMuacCutoffs(210))


@pytest.mark.parametrize(
    ("profile", "muac", "status"),
    [
        (WHO, 150, "acute"),
        (WHO, 229, "acute"),
        (WHO, 229.9, "acute"),
        (WHO, 230, "none"),
        (WHO, 260, "none"),
        (WHO, None, "unknown"),
        (SEVERE, 184, "severe"),
        (SEVERE, 184.9, "severe"),
        (SEVERE, 185, "acute"),
        (SEVERE, 230, "none"),
        (CUT_220, 219, "acute"),
        (CUT_220, 220, "none"),
        (CUT_210, 209, "acute"),
        (CUT_210, 210, "none"),
    ],
)
def test_plw_muac_cutoffs(profile: object, muac: float | None, status: str) -> None:
    result = classify_plw(muac, profile)  # type: ignore[arg-type]
    assert result.status == status
    assert result.malnourished is (status in ("acute", "severe"))
    for lang in LANGS:
        assert result.label(lang)


def test_plw_default_cutoff_in_every_profile() -> None:
    for profile in PROFILES:
        assert classify_plw(229, profile).status == "acute"
        assert classify_plw(230, profile).cutoff_mm == 230


@pytest.mark.parametrize("muac", [23, 99.9, 600.1])
def test_plw_muac_unit_errors(muac: float) -> None:
    with pytest.raises(MeasurementError) as err:
        classify_plw(muac, WHO)
    assert (err.value.field, err.value.code) == ("muac_mm", "unit")


@pytest.mark.parametrize(
    ("weeks", "expected"),
    [(0, 1), (13, 1), (13.9, 1), (14, 2), (20, 2), (27, 2), (27.9, 2), (28, 3), (40, 3), (45, 3)],
)
def test_trimester_boundaries(weeks: float, expected: int) -> None:
    assert trimester(weeks) == expected


@pytest.mark.parametrize(
    ("weeks", "code"), [(-1, "negative"), (45.1, "out_of_range"), (math.nan, "not_finite")]
)
def test_trimester_errors(weeks: float, code: str) -> None:
    with pytest.raises(MeasurementError) as err:
        trimester(weeks)
    assert err.value.code == code


LMP = date(2024, 1, 1)


@pytest.mark.parametrize(
    ("days", "weeks", "extra", "tri"),
    [
        (0, 0, 0, 1),
        (97, 13, 6, 1),
        (98, 14, 0, 2),
        (195, 27, 6, 2),
        (196, 28, 0, 3),
        (315, 45, 0, 3),
    ],
)
def test_gestational_age_from_lmp(days: int, weeks: int, extra: int, tri: int) -> None:
    ga = gestational_age_from_lmp(LMP, LMP + timedelta(days=days))
    assert (ga.weeks, ga.days, ga.total_days, ga.trimester) == (weeks, extra, days, tri)


def test_lmp_errors() -> None:
    with pytest.raises(MeasurementError) as err:
        gestational_age_from_lmp(LMP, LMP - timedelta(days=1))
    assert err.value.code == "future"
    with pytest.raises(MeasurementError) as err:
        gestational_age_from_lmp(LMP, LMP + timedelta(days=316))
    assert err.value.code == "out_of_range"


def test_trimester_labels_exist() -> None:
    for n in (1, 2, 3):
        assert all(LABELS[f"trimester.{n}"].get(lang) for lang in LANGS)
