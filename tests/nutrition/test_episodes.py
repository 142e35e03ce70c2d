"""Care episodes (NUTRITION.md §4): admission, schedule, derived exits, outcome rates."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from fractions import Fraction

import pytest

from contigo.nutrition.classify import ChildIndicators, classify_child
from contigo.nutrition.episodes import (
    Episode,
    EpisodeStatus,
    RecordedExit,
    Visit,
    admission_for,
    admission_for_plw,
    derive_status,
    outcome_rates,
    schedule,
)
from contigo.nutrition.labels import LABELS, LANGS
from contigo.nutrition.profiles import CO, WHO
from contigo.nutrition.women import classify_plw

ADMITTED = date(2024, 1, 1)
WHO2013 = replace(WHO, code="T13", cure_rule="who2013")
WHO2023 = replace(WHO, code="T23", cure_rule="who2023")


def day(n: int) -> date:
    return ADMITTED + timedelta(days=n)


def sam(criteria: tuple[str, ...] = ("whz_lt_-3",), exit_: RecordedExit | None = None) -> Episode:
    return Episode("sam_otp", ADMITTED, criteria, exit_)


def well(n: int) -> Visit:
    return Visit(day(n), whz=-1.5, muac_mm=130)


def ill(n: int) -> Visit:
    return Visit(day(n), whz=-2.5, muac_mm=120)


# Admission -----------------------------------------------------------------------------------


def test_admission_for_sam_mam_and_none() -> None:
    assert (
        admission_for(classify_child(ChildIndicators(800, whz=-3.5), WHO), WHO).programme
        == "sam_otp"
    )
    complicated = classify_child(ChildIndicators(800, oedema_grade=3), WHO)
    adm = admission_for(complicated, WHO)
    assert (adm.programme, adm.criteria) == ("sam_inpatient", ("oedema",))
    mam = admission_for(classify_child(ChildIndicators(800, muac_mm=120), WHO), WHO)
    assert (mam.programme, mam.criteria) == ("mam_tsfp", ("muac_lt_125",))
    assert admission_for(classify_child(ChildIndicators(800, whz=-1.5), WHO), WHO).programme is None


def test_admission_for_colombia_risk_and_referral() -> None:
    risk = admission_for(classify_child(ChildIndicators(800, whz=-1.5), CO), CO)
    assert (risk.programme, risk.criteria) == ("acute_risk_followup", ("co.whz.riesgo_dnt_aguda",))
    referral = admission_for(classify_child(ChildIndicators(800, whz=-0.5, muac_mm=110), CO), CO)
    assert (referral.programme, referral.criteria, referral.referral) == (
        None,
        ("muac_lt_115",),
        True,
    )


def test_admission_for_plw() -> None:
    adm = admission_for_plw(classify_plw(220, WHO))
    assert (adm.programme, adm.criteria) == ("plw_supplementation", ("plw_muac_lt_230",))
    assert admission_for_plw(classify_plw(230, WHO)).programme is None


# Schedule ------------------------------------------------------------------------------------


def test_schedule_sam_weekly_to_max_stay() -> None:
    dates = schedule(ADMITTED, "sam_otp", WHO)
    assert dates[0] == day(7) and dates[1] == day(14)
    assert len(dates) == 16 and dates[-1] == day(112)


def test_schedule_mam_fortnightly() -> None:
    dates = schedule(ADMITTED, "mam_tsfp", WHO)
    assert dates[:2] == (day(14), day(28))
    assert len(dates) == 8 and dates[-1] == day(112)


def test_schedule_risk_follow_up_and_others() -> None:
    assert schedule(ADMITTED, "acute_risk_followup", CO, until=day(42)) == (
        day(14),
        day(28),
        day(42),
    )
    assert schedule(ADMITTED, "sam_inpatient", WHO) == ()
    with pytest.raises(ValueError, match="until"):
        schedule(ADMITTED, "plw_supplementation", WHO)


# Defaulter -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "state", "missed"),
    [
        (0, "active", 0),
        (10, "active", 0),
        (11, "active", 1),
        (17, "active", 1),
        (18, "defaulted", 0),
    ],
)
def test_defaulter_after_exactly_two_missed_weekly(as_of: int, state: str, missed: int) -> None:
    status = derive_status(sam(), [], WHO, day(as_of))
    assert (status.state, status.missed_visits) == (state, missed)
    if state == "defaulted":
        assert status.exit_on == day(18)
    else:
        assert status.next_due_on == day(7 * (missed + 1))


def test_defaulter_threshold_is_configurable() -> None:
    three = replace(WHO, defaulter_missed_visits=3)
    assert derive_status(sam(), [], three, day(24)).state == "active"
    assert derive_status(sam(), [], three, day(24)).missed_visits == 2
    assert derive_status(sam(), [], three, day(25)).state == "defaulted"


def test_defaulter_mam_fortnightly() -> None:
    mam = Episode("mam_tsfp", ADMITTED, ("muac_lt_125",))
    assert derive_status(mam, [], WHO, day(31)).state == "active"
    assert derive_status(mam, [], WHO, day(32)).state == "defaulted"


def test_late_return_after_default_stays_defaulted() -> None:
    visits = [ill(7), ill(25)]
    status = derive_status(sam(), visits, WHO, day(30))
    assert (status.state, status.exit_on, status.last_contact_on) == ("defaulted", day(25), day(7))


def test_return_within_grace_of_second_visit_is_not_default() -> None:
    status = derive_status(sam(), [ill(7), ill(24)], WHO, day(26))
    assert (status.state, status.last_contact_on, status.missed_visits) == ("active", day(24), 0)
    assert status.next_due_on == day(31)


# Cure ----------------------------------------------------------------------------------------


def test_cure_needs_two_weeks_of_recovery() -> None:
    visits = [ill(7), well(14), well(21), well(28)]
    assert derive_status(sam(), visits, WHO2023, day(27)).state == "active"
    status = derive_status(sam(), visits, WHO2023, day(28))
    assert (status.state, status.exit_on) == ("cured", day(28))


def test_relapse_restarts_the_cure_run() -> None:
    visits = [well(14), Visit(day(21), whz=-1.5, muac_mm=124), well(28), well(35), well(42)]
    status = derive_status(sam(), visits, WHO2023, day(60))
    assert (status.state, status.exit_on) == ("cured", day(42))


def test_oedema_breaks_the_cure_run() -> None:
    visits = [well(14), Visit(day(21), whz=-1.5, muac_mm=130, oedema_grade=1), well(28)]
    assert derive_status(sam(), visits, WHO2023, day(30)).state == "active"


def test_mam_cure_two_fortnightly_visits() -> None:
    mam = Episode("mam_tsfp", ADMITTED, ("muac_lt_125",))
    visits = [well(14), well(28)]
    status = derive_status(mam, visits, WHO2023, day(30))
    assert (status.state, status.exit_on) == ("cured", day(28))


@pytest.mark.parametrize(
    ("criteria", "whz", "muac", "who2013", "who2023"),
    [
        (("whz_lt_-3",), -2.0, 110, True, False),
        (("whz_lt_-3",), -2.01, 130, False, False),
        (("muac_lt_115",), -2.5, 125, True, False),
        (("muac_lt_115",), -1.0, 124, False, False),
        (("whz_lt_-3", "muac_lt_115"), -1.0, 124, False, False),
        (("whz_lt_-3", "muac_lt_115"), -2.0, 125, True, True),
        (("oedema",), -1.0, None, True, True),
        (("oedema",), None, 125, True, True),
        (("oedema",), None, None, False, False),
        (("muac_lt_115",), None, 125, True, True),
        (("whz_lt_-3",), -2.0, None, True, True),
    ],
)
def test_cure_rules(
    criteria: tuple[str, ...], whz: float | None, muac: float | None, who2013: bool, who2023: bool
) -> None:
    visits = [Visit(day(n), whz=whz, muac_mm=muac) for n in (7, 14, 21)]
    for profile, expected in ((WHO2013, who2013), (WHO2023, who2023)):
        state = derive_status(sam(criteria), visits, profile, day(22)).state
        assert state == ("cured" if expected else "active"), profile.cure_rule


def test_flagged_values_do_not_cure() -> None:
    visits = [Visit(day(n), whz=-1.0, flags=frozenset({"whz"})) for n in (7, 14, 21)]
    assert derive_status(sam(), visits, WHO2013, day(22)).state == "active"
    visits = [Visit(day(n), whz=-1.0, muac_mm=300, flags=frozenset({"muac"})) for n in (7, 14, 21)]
    assert derive_status(sam(), visits, WHO2023, day(22)).state == "cured"


# Non-responder -------------------------------------------------------------------------------


def test_non_responder_at_max_stay_sam() -> None:
    visits = [ill(n) for n in range(7, 113, 7)]
    assert derive_status(sam(), visits, WHO, day(111)).state == "active"
    status = derive_status(sam(), visits, WHO, day(112))
    assert (status.state, status.exit_on) == ("non_responder", day(112))


def test_cure_on_the_last_day_beats_non_response() -> None:
    visits = [ill(n) for n in range(7, 98, 7)] + [well(98), well(105), well(112)]
    status = derive_status(sam(), visits, WHO2023, day(120))
    assert (status.state, status.exit_on) == ("cured", day(112))


def test_non_responder_mam_at_120_days() -> None:
    mam = Episode("mam_tsfp", ADMITTED, ("whz_lt_-2",))
    visits = [ill(n) for n in range(14, 121, 14)] + [ill(119)]
    assert derive_status(mam, visits, WHO, day(119)).state == "active"
    assert derive_status(mam, visits, WHO, day(120)).state == "non_responder"


# Recorded exits ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["died", "transferred", "referred_inpatient", "cured"])
def test_recorded_exits(kind: str) -> None:
    episode = sam(exit_=RecordedExit(kind, day(10)))  # type: ignore[arg-type]
    assert derive_status(episode, [ill(7)], WHO, day(9)).state == "active"
    status = derive_status(episode, [ill(7)], WHO, day(10))
    assert (status.state, status.exit_on) == (kind, day(10))


def test_earliest_exit_wins() -> None:
    episode = sam(exit_=RecordedExit("died", day(30)))
    status = derive_status(episode, [], WHO, day(40))
    assert (status.state, status.exit_on) == ("defaulted", day(18))


def test_inpatient_has_no_schedule_or_derived_exit() -> None:
    episode = Episode("sam_inpatient", ADMITTED, ("oedema",))
    status = derive_status(episode, [], WHO, day(200))
    assert (status.state, status.next_due_on) == ("active", None)


def test_every_state_is_translated() -> None:
    for state in ("active", "cured", "defaulted", "non_responder", "died", "transferred"):
        assert all(LABELS[f"episode.{state}"].get(lang) for lang in LANGS)
    for programme in (
        "sam_inpatient",
        "sam_otp",
        "mam_tsfp",
        "plw_supplementation",
        "acute_risk_followup",
    ):
        assert all(LABELS[f"programme.{programme}"].get(lang) for lang in LANGS)
    status = derive_status(sam(), [], WHO, day(1))
    assert status.reason_key in LABELS


# Outcome rates -------------------------------------------------------------------------------


def _exits(**counts: int) -> list[EpisodeStatus]:
    return [
        EpisodeStatus("sam_otp", state, day(50), day(40), 0, None)  # type: ignore[arg-type]
        for state, n in counts.items()
        for _ in range(n)
    ]


def test_outcome_rates_against_sphere() -> None:
    statuses = [
        *_exits(cured=8, died=1, defaulted=1),
        EpisodeStatus("sam_otp", "active", None, day(40), 0, day(47)),
        EpisodeStatus("sam_otp", "cured", day(500), day(490), 0, None),
    ]
    sam_report = outcome_rates(statuses, "sam", day(0), day(100))
    assert sam_report.total_exits == 10
    cured = sam_report.rate("cured")
    assert (cured.count, cured.rate, cured.met) == (8, Fraction(4, 5), True)
    assert (sam_report.rate("died").rate, sam_report.rate("died").met) == (Fraction(1, 10), False)
    assert sam_report.rate("defaulted").met is True
    assert sam_report.rate("transferred").met is None
    assert outcome_rates(statuses, "mam", day(0), day(100)).rate("died").met is False


def test_targets_are_strict() -> None:
    report = outcome_rates(_exits(cured=3, defaulted=1), "sam", day(0), day(100))
    assert report.rate("cured").met is False  # 75 % is not above 75 %
    report = outcome_rates(_exits(cured=97, died=3), "mam", day(0), day(100))
    assert report.rate("died").met is False  # 3 % is not below 3 %
    report = outcome_rates(_exits(cured=98, died=2), "mam", day(0), day(100))
    assert report.rate("died").met is True


def test_no_exits_gives_no_rates() -> None:
    report = outcome_rates([], "sam", day(0), day(100))
    assert report.total_exits == 0
    assert all(r.rate is None and r.met is None for r in report.rates)
