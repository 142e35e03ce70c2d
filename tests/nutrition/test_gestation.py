"""Pregnancy dating, BMI and gestational weight gain (NUTRITION.md §5), and the Hb group of a
pregnant woman whose gestational age is unknown (§5, §6)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from contigo.nutrition.anaemia import CUTOFFS, assess_hb, protective_pregnancy_group
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.gestation import (
    IOM_2009,
    assess_gain,
    bmi,
    bmi_category,
    edd_from_lmp,
    expected_gain,
    gain_band,
    gestational_age_from_edd,
)
from contigo.nutrition.labels import LABELS, LANGS
from contigo.nutrition.profiles import BR, CO, PROFILES, WHO
from contigo.nutrition.women import GestationalAge, gestational_age_from_lmp

VISIT = date(2026, 6, 1)


def test_naegele_and_dating_from_the_edd_agree_with_the_lmp() -> None:
    lmp = VISIT - timedelta(days=150)
    edd = edd_from_lmp(lmp)
    assert edd == lmp + timedelta(days=280)
    assert gestational_age_from_edd(edd, VISIT) == gestational_age_from_lmp(lmp, VISIT)
    assert gestational_age_from_edd(VISIT + timedelta(days=280), VISIT) == GestationalAge(0, 0)
    for bad in (VISIT + timedelta(days=281), VISIT - timedelta(days=36)):
        with pytest.raises(MeasurementError) as info:
            gestational_age_from_edd(bad, VISIT)
        assert info.value.field == "edd_on"


def test_bmi_and_its_categories() -> None:
    assert bmi(57.0, 155.0) == 23.7
    assert [bmi_category(v) for v in (18.4, 18.5, 24.9, 25.0, 29.9, 30.0)] == [
        "underweight", "normal", "normal", "overweight", "overweight", "obese"
    ]  # fmt: skip
    for weight, height in ((0.0, 150.0), (50.0, 0.0)):
        with pytest.raises(MeasurementError):
            bmi(weight, height)


def test_iom_2009_ranges_by_week() -> None:
    assert expected_gain("normal", 0) == (0.0, 0.0)
    assert expected_gain("normal", 13) == (0.5, 2.0)
    assert expected_gain("normal", 40) == (10.0, 15.5)  # 0.5 + 27 × 0.35 = 9.95, half up
    for category, r in IOM_2009.items():
        low, high = expected_gain(category, 40)
        assert r.total_low - 2 <= low <= r.total_low + 1  # the weekly rates meet the totals
        assert r.total_high - 1 <= high <= r.total_high + 1.5
    band = gain_band("obese")
    assert len(band) == 43 and all(lo <= hi for _w, lo, hi in band)


def test_gain_below_within_above_and_unknown() -> None:
    ga = GestationalAge(20, 0)  # normal BMI: 3.0 to 5.5 kg
    assert assess_gain(54.9, 52.0, 155.0, ga, WHO).status == "below"
    assert assess_gain(56.0, 52.0, 155.0, ga, WHO).status == "within"
    assert assess_gain(58.0, 52.0, 155.0, ga, WHO).status == "above"
    assert assess_gain(58.0, None, 155.0, ga, WHO).status == "unknown"


def test_profiles_without_their_national_chart_say_so() -> None:
    assert "verify.gwg_co" in CO.verify_notes and "verify.gwg_br" in BR.verify_notes
    for profile in PROFILES:
        assert "verify.gwg_iom" in profile.verify_notes
        for key in profile.verify_notes:
            for lang in LANGS:
                assert LABELS[key].get(lang)


def test_unknown_trimester_uses_the_most_protective_pregnancy_cutoff() -> None:
    group = protective_pregnancy_group()
    pregnant = [g for g in CUTOFFS if g.startswith("pregnant")]
    assert CUTOFFS[group].anaemia_below == max(CUTOFFS[g].anaemia_below for g in pregnant)
    assert CUTOFFS[group].moderate_below == max(CUTOFFS[g].moderate_below for g in pregnant)
    # 107 g/L: anaemia under the protective cut-off though not under the 2nd trimester's.
    assert assess_hb(107, group, 0, WHO).severity == "mild"
    assert assess_hb(107, "pregnant_t2", 0, WHO).severity == "none"
