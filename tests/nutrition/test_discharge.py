"""Discharge from treatment (NUTRITION.md §4): the cure rule on the recorded visits with the
minimum stay, weight gain and the target weight, checked against hand-worked cases."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

import pytest

from contigo.nutrition import discharge
from contigo.nutrition.discharge import (
    Weighing,
    check_cure,
    days_in_programme,
    min_stay_days,
    target_weight_kg,
    weight_gain,
)
from contigo.nutrition.episodes import (
    Episode,
    EpisodeStatus,
    RecordedExit,
    Visit,
    derive_status,
    outcome_rates,
)
from contigo.nutrition.profiles import WHO
from contigo.nutrition.zscores import Measurement, compute

ADMITTED = date(2025, 3, 3)
WHO2013 = replace(WHO, code="T13", cure_rule="who2013")


def day(n: int) -> date:
    return ADMITTED + timedelta(days=n)


def otp(criteria: tuple[str, ...] = ("whz_lt_-3",)) -> Episode:
    return Episode("sam_otp", ADMITTED, criteria)


def test_the_reported_case_admission_day_whz_minus_351_is_not_a_cure() -> None:
    check = check_cure(otp(), [Visit(day(0), whz=-3.51, muac_mm=118)], WHO, day(0))
    assert not check.met
    assert check.reasons == ("criteria_not_met", "min_stay")
    assert check.cured_on is None and check.earliest_on == day(14)


def test_weekly_visits_recovered_for_two_weeks_after_the_minimum_stay_are_a_cure() -> None:
    visits = [
        Visit(day(0), whz=-3.4),
        Visit(day(7), whz=-2.6),
        Visit(day(14), whz=-1.9),
        Visit(day(21), whz=-1.8),
        Visit(day(28), whz=-1.7),
    ]
    # WHO 2013, admitted on WHZ: WHZ >= -2 on days 14, 21, 28 -> held for 14 days on day 28.
    assert check_cure(otp(), visits, WHO2013, day(28)) == check_cure(
        otp(), visits, WHO2013, day(30)
    )
    check = check_cure(otp(), visits, WHO2013, day(28))
    assert check.met and check.reasons == () and check.cured_on == day(28)
    early = check_cure(otp(), visits, WHO2013, day(21))
    assert not early.met and early.reasons == ("not_sustained",)


def test_oedema_at_the_last_visit_or_two_weeks_ago_blocks_the_cure() -> None:
    visits = [Visit(day(0), whz=-2.5, oedema_grade=2), Visit(day(14), whz=-1.5, oedema_grade=1)]
    check = check_cure(otp(("oedema",)), visits, WHO2013, day(14))
    assert check.reasons == ("oedema",)
    # Oedema gone on day 14, back to WHZ >= -2: one visit is not two weeks without oedema.
    visits = [Visit(day(0), whz=-2.5, oedema_grade=2), Visit(day(14), whz=-1.5)]
    assert check_cure(otp(("oedema",)), visits, WHO2013, day(14)).reasons == ("not_sustained",)
    visits.append(Visit(day(28), whz=-1.4))
    assert check_cure(otp(("oedema",)), visits, WHO2013, day(28)).met


def test_who2013_uses_the_admitting_indicator_and_who2023_both() -> None:
    # Admitted on MUAC: WHZ stays below -2 but MUAC recovers.
    visits = [Visit(day(n), whz=-2.3, muac_mm=127) for n in (0, 14)]
    assert check_cure(otp(("muac_lt_115",)), visits, WHO2013, day(14)).met
    # WHO 2023: WHZ >= -2 AND MUAC >= 125 mm wherever each is measured.
    assert check_cure(otp(("muac_lt_115",)), visits, WHO, day(14)).reasons == ("criteria_not_met",)


def test_the_minimum_stay_alone_blocks_a_sustained_cure(monkeypatch: pytest.MonkeyPatch) -> None:
    long = replace(WHO2013, code="T13L")
    visits = [Visit(day(n), whz=-1.5) for n in (0, 7, 14)]
    monkeypatch.setattr(discharge, "PROFILE_MIN_STAY_DAYS", {"T13L": {"sam_otp": 28}})
    assert min_stay_days("sam_otp", long) == 28
    check = check_cure(otp(), visits, long, day(14))
    assert check.reasons == ("min_stay",) and check.cured_on == day(14)
    assert check.earliest_on == day(28)
    assert check_cure(otp(), visits, long, day(28)).met


def test_visits_after_the_exit_date_do_not_count_and_no_visits_is_said() -> None:
    visits = [Visit(day(n), whz=-1.5) for n in (20, 27, 34)]
    assert check_cure(otp(), visits, WHO, day(15)).reasons == ("no_visits",)
    assert check_cure(
        Episode("plw_supplementation", ADMITTED, ()), visits, WHO, day(40)
    ).reasons == ("not_treatment",)


def test_weight_gain_from_the_minimum_weight_hand_worked() -> None:
    # 7.0 kg on admission, 6.9 kg on day 7 (the minimum), 7.6 kg on day 21:
    # (7.6 - 6.9) * 1000 / (6.9 * 14) = 700 / 96.6 = 7.2464 g/kg/day.
    gain = weight_gain([Weighing(day(21), 7.6), Weighing(day(0), 7.0), Weighing(day(7), 6.9)])
    assert gain is not None
    assert gain.g_kg_day == pytest.approx(7.2464, abs=1e-4)
    assert (gain.minimum.on, gain.latest.on, gain.days) == (day(7), day(21), 14)
    # 8.1 kg -> 8.5 kg in 7 days: 400 / 56.7 = 7.0547 g/kg/day.
    two = weight_gain([Weighing(day(0), 8.1), Weighing(day(7), 8.5)])
    assert two is not None and two.g_kg_day == pytest.approx(7.0547, abs=1e-4)


def test_no_weight_gain_without_an_interval() -> None:
    assert weight_gain([Weighing(day(0), 7.0)]) is None
    assert weight_gain([Weighing(day(0), 7.0), Weighing(day(7), 6.5)]) is None  # latest is min
    assert days_in_programme(otp(), day(23)) == 23


def test_target_weight_is_whz_minus_2_hand_worked() -> None:
    # Boys, weight-for-length 80.0 cm: L -0.3521, M 10.4475, S 0.08308.
    # 10.4475 * (1 + 0.3521 * 0.08308 * 2) ** (1 / -0.3521) = 8.8896 kg -> 8.9 kg
    # (WHO's simplified field table, boys 80 cm, -2 SD: 8.9 kg).
    assert target_weight_kg("M", 400, 80.0) == 8.9
    # Girls, weight-for-height 90.0 cm (WHO simplified table, -2 SD: 10.6 kg).
    assert target_weight_kg("F", 1000, 90.0) == 10.6
    # And the z-score engine agrees that the unrounded weight sits at WHZ -2.
    z = compute(Measurement(sex=1, age_days=400, weight_kg=8.8896, lenhei_cm=80.0, measure="l"))
    assert z.zwfl == -2.0


def test_no_target_weight_outside_the_table_or_without_length() -> None:
    assert target_weight_kg("M", 400, None) is None
    assert target_weight_kg("M", 400, 111.0) is None  # weight-for-length stops at 110 cm
    assert target_weight_kg("M", 800, 60.0) is None  # weight-for-height starts at 65 cm
    assert target_weight_kg("M", None, 60.0) is not None  # age unknown: under 87 cm, length


def test_an_overridden_cure_is_counted_apart_from_cures() -> None:
    overridden = Episode("sam_otp", ADMITTED, ("whz_lt_-3",), RecordedExit("cured", day(0), True))
    status = derive_status(overridden, [Visit(day(0), whz=-3.51)], WHO, day(1))
    assert (status.state, status.override) == ("cured", True)
    real = EpisodeStatus("sam_otp", "cured", day(30), day(30), 0, None)
    report = outcome_rates([status, real, real, real], "sam", day(0), day(40))
    assert report.total_exits == 4
    assert report.rate("cured").count == 3 and report.rate("cured").rate == Fraction(3, 4)
    assert report.rate("cured_override").count == 1
    assert report.rate("cured").met is False  # 75 % is not above 75 %
