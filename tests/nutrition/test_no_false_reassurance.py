"""No false reassurance under any profile (NUTRITION.md §3, issue 11): a child who meets a WHO
SAM criterion never gets a "no acute malnutrition" label or a green badge, under any profile,
at any age from birth to 1856 days; the sign is named in red and a referral is suggested."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contigo.display import badge_level, child_badge_keys
from contigo.encounters.clinical import _child_summary
from contigo.nutrition.classify import ChildIndicators, classify_child
from contigo.nutrition.episodes import admission_for, suggested_referral
from contigo.nutrition.labels import LABELS, LANGS
from contigo.nutrition.profiles import CO, EC, PROFILES, WHO

SIXTEEN_MONTHS = 487
MUAC_FIRST_DAY, MUAC_LAST_DAY = 183, 1826  # 6 to 59 completed months


def holds(ind: ChildIndicators) -> bool:
    """A WHO SAM criterion on the raw values, flagged or not."""
    muac_age = ind.age_days is not None and MUAC_FIRST_DAY <= ind.age_days <= MUAC_LAST_DAY
    return (
        ind.oedema_grade > 0
        or (ind.whz is not None and ind.whz < -3)
        or (ind.muac_mm is not None and ind.muac_mm < 115 and muac_age)
    )


z = st.one_of(st.none(), st.floats(-7, 6, allow_nan=False).map(lambda v: round(v, 2)))


@settings(max_examples=1500, deadline=None)
@given(
    age=st.integers(0, 1856),
    whz=z,
    waz=z,
    haz=z,
    baz=z,
    muac=st.one_of(st.none(), st.integers(50, 400), st.floats(50, 400).map(lambda v: round(v, 1))),
    oedema=st.integers(0, 3),
    flags=st.sets(st.sampled_from(["whz", "muac", "waz", "haz", "baz"])),
    appetite=st.sampled_from([None, True, False]),
)
def test_a_who_sam_criterion_is_never_reassured(
    age: int,
    whz: float | None,
    waz: float | None,
    haz: float | None,
    baz: float | None,
    muac: float | None,
    oedema: int,
    flags: set[str],
    appetite: bool | None,
) -> None:
    ind = ChildIndicators(
        age_days=age, whz=whz, waz=waz, haz=haz, baz=baz, muac_mm=muac, oedema_grade=oedema,
        flags=frozenset(flags), appetite_test_failed=appetite,
    )  # fmt: skip
    for profile in PROFILES:
        c = classify_child(ind, profile)
        if not holds(ind):
            assert not c.who_sam_signs
            continue
        assert c.status_key != "acute.none", profile.code
        assert badge_level(c.status_key) != "ok"
        shown_on_page = child_badge_keys(_child_summary(c))
        assert "acute.none" not in shown_on_page
        assert all(badge_level(key) != "ok" for key in shown_on_page)
        for lang in LANGS:
            assert c.label(lang) != LABELS["acute.none"].get(lang)
        if c.who_sam_signs:  # usable values: named in red, referral suggested
            shown = (c.status_key, *c.sign_keys)
            assert any(badge_level(key) == "sam" for key in shown), (profile.code, shown)
            assert all(key in LABELS for key in c.sign_keys)
            assert suggested_referral(c, profile) is not None
            assert admission_for(c, profile).programme != "acute_risk_followup"


def test_colombia_names_muac_under_115_and_refers() -> None:
    """The case of issue 11: 16 months, MUAC 109 mm, weight-for-height in the risk band."""
    ind = ChildIndicators(age_days=SIXTEEN_MONTHS, whz=-1.4, muac_mm=109)
    co = classify_child(ind, CO)
    assert co.acute.status == "none"  # the national label stays weight-for-height based
    assert co.band("whz").band_key == "co.whz.riesgo_dnt_aguda"
    assert co.status_key == "acute.who_sam_sign" and badge_level(co.status_key) == "sam"
    assert co.sign_keys == ("sign.muac_lt_115",)
    assert LABELS["sign.muac_lt_115"].get("es") == "PB < 11,5 cm: remitir"
    assert suggested_referral(co, CO) == "health_facility"
    assert admission_for(co, CO).referral is True
    assert admission_for(co, CO).programme is None
    ec = classify_child(ind, EC)
    assert ec.status_key == "acute.sam" and suggested_referral(ec, EC) == "otp"


def test_referral_follows_the_finding() -> None:
    def referral(**values: object) -> str | None:
        ind = ChildIndicators(age_days=SIXTEEN_MONTHS, **values)  # type: ignore[arg-type]
        return suggested_referral(classify_child(ind, WHO), WHO)

    assert referral(whz=-3.2) == "otp"
    assert referral(whz=-3.2, oedema_grade=3) == "inpatient"
    assert referral(whz=-2.5) == "tsfp"
    assert referral(muac_mm=124) == "tsfp"
    assert referral(muac_mm=125, whz=0.0) is None


def test_a_flagged_value_in_the_sam_range_asks_for_a_remeasure_not_reassurance() -> None:
    ind = ChildIndicators(age_days=SIXTEEN_MONTHS, whz=-0.5, muac_mm=100, flags=frozenset({"muac"}))
    co = classify_child(ind, CO)
    assert co.acute.status == "none" and co.who_sam_doubtful
    assert co.status_key == "acute.unknown"
    assert co.needs_remeasure == ("muac",)


def test_every_age_and_profile_with_each_sign_alone() -> None:
    """Exhaustive over ages 0–1856 days: each WHO SAM criterion alone, beside values that are
    otherwise reassuring (WHZ 0, MUAC 140 mm), under every profile."""
    for age in range(0, 1857):
        muac_age = MUAC_FIRST_DAY <= age <= MUAC_LAST_DAY
        cases = [
            ChildIndicators(age_days=age, whz=0.0, muac_mm=140, oedema_grade=1),
            ChildIndicators(age_days=age, whz=-3.01, muac_mm=140),
            ChildIndicators(age_days=age, whz=0.0, muac_mm=114.9),
        ]
        for case in cases:
            for profile in PROFILES:
                c = classify_child(case, profile)
                if case.muac_mm == 114.9 and not muac_age:
                    assert c.who_sam_signs == () and c.status_key == "acute.none"
                    continue
                assert c.who_sam_signs, (age, profile.code)
                assert c.status_key != "acute.none"
                assert any(badge_level(k) == "sam" for k in (c.status_key, *c.sign_keys))
