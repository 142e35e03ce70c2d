"""Children's classification (NUTRITION.md §2–§3): boundaries, precedence, flags, profiles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contigo.nutrition.classify import (
    ChildClassification,
    ChildIndicators,
    classify_child,
    classify_under_profiles,
    reclassify,
)
from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.labels import LABELS, LANGS
from contigo.nutrition.profiles import BR, CO, PROFILES, WHO

TWO_YEARS = 800  # 26 completed months: MUAC criteria apply.

Classify = Callable[..., ChildClassification]


@pytest.fixture
def classify() -> Classify:
    def make(
        profile: Any = WHO, age_days: int | None = TWO_YEARS, **kw: Any
    ) -> ChildClassification:
        return classify_child(ChildIndicators(age_days=age_days, **kw), profile)

    return make


@pytest.mark.parametrize(
    ("whz", "status", "criteria"),
    [
        (-4.5, "sam", ("whz_lt_-3",)),
        (-3.01, "sam", ("whz_lt_-3",)),
        (-3.00, "mam", ("whz_lt_-2",)),
        (-2.01, "mam", ("whz_lt_-2",)),
        (-2.00, "none", ()),
        (0.5, "none", ()),
    ],
)
def test_whz_boundaries(
    classify: Classify, whz: float, status: str, criteria: tuple[str, ...]
) -> None:
    for profile in PROFILES:
        result = classify(profile, whz=whz)
        assert result.acute.status == status, profile.code
        assert result.acute.criteria == criteria


@pytest.mark.parametrize(
    ("muac", "status", "criteria"),
    [
        (90, "sam", ("muac_lt_115",)),
        (114, "sam", ("muac_lt_115",)),
        (114.9, "sam", ("muac_lt_115",)),
        (115, "mam", ("muac_lt_125",)),
        (124, "mam", ("muac_lt_125",)),
        (124.9, "mam", ("muac_lt_125",)),
        (125, "none", ()),
        (140, "none", ()),
    ],
)
def test_muac_boundaries(
    classify: Classify, muac: float, status: str, criteria: tuple[str, ...]
) -> None:
    result = classify(muac_mm=muac)
    assert result.acute.status == status
    assert result.acute.criteria == criteria


@pytest.mark.parametrize(
    ("age_days", "months", "used"),
    [
        (152, 4, False),
        (182, 5, False),
        (183, 6, True),
        (1795, 58, True),
        (1826, 59, True),
        (1827, 60, False),
    ],
)
def test_muac_only_from_6_to_59_months(
    classify: Classify, age_days: int, months: int, used: bool
) -> None:
    result = classify(age_days=age_days, muac_mm=110, whz=-1.0)
    assert result.acute.status == ("sam" if used else "none")
    assert ("note.muac_outside_age" in result.acute.notes) is not used


def test_muac_outside_age_alone_is_unknown(classify: Classify) -> None:
    result = classify(age_days=100, muac_mm=110)
    assert result.acute.status == "unknown"


def test_unknown_age_with_low_muac_is_never_none(classify: Classify) -> None:
    result = classify(age_days=None, muac_mm=110, whz=-1.0)
    assert result.acute.status == "unknown"
    assert "note.muac_age_unknown" in result.acute.notes
    assert classify(age_days=None, muac_mm=130, whz=-1.0).acute.status == "none"
    assert classify(age_days=None, muac_mm=110, whz=-3.5).acute.status == "sam"


def test_nothing_measured_is_unknown(classify: Classify) -> None:
    assert classify().acute.status == "unknown"


@pytest.mark.parametrize("grade", [1, 2, 3])
def test_oedema_is_sam_and_takes_precedence(classify: Classify, grade: int) -> None:
    result = classify(oedema_grade=grade, muac_mm=120, whz=-2.5)
    assert result.acute.status == "sam"
    assert result.acute.criteria == ("oedema", "whz_lt_-2", "muac_lt_125")
    assert classify(oedema_grade=grade).acute.status == "sam"


def test_sam_takes_precedence_over_mam(classify: Classify) -> None:
    result = classify(whz=-2.5, muac_mm=110)
    assert result.acute.status == "sam"
    assert result.acute.criteria == ("whz_lt_-2", "muac_lt_115")
    assert classify(whz=-3.5, muac_mm=120).acute.status == "sam"


@pytest.mark.parametrize(
    ("kw", "reasons"),
    [
        ({"oedema_grade": 3}, ("complication.oedema_severe",)),
        ({"oedema_grade": 2, "appetite_test_failed": False}, ()),
        ({"muac_mm": 110, "appetite_test_failed": True}, ("complication.appetite_test_failed",)),
        ({"muac_mm": 110, "medical_complications": True}, ("complication.medical",)),
    ],
)
def test_complicated_sam(classify: Classify, kw: dict[str, Any], reasons: tuple[str, ...]) -> None:
    result = classify(**kw)
    assert result.acute.status == "sam"
    assert result.acute.complication_reasons == reasons
    assert result.acute.complicated is bool(reasons)
    assert result.status_key == ("acute.sam_complicated" if reasons else "acute.sam")


def test_mam_is_never_complicated(classify: Classify) -> None:
    result = classify(muac_mm=120, medical_complications=True, appetite_test_failed=True)
    assert result.acute.status == "mam" and not result.acute.complicated


def test_missing_appetite_test_is_noted_for_sam(classify: Classify) -> None:
    assert "note.appetite_test_pending" in classify(muac_mm=110).acute.notes
    assert (
        "note.appetite_test_pending"
        not in classify(muac_mm=110, appetite_test_failed=False).acute.notes
    )


def test_flagged_whz_never_classifies(classify: Classify) -> None:
    result = classify(whz=-5.5, flags=frozenset({"whz"}))
    assert result.acute.status == "unknown"
    assert result.acute.criteria == ()
    assert "note.whz_flagged_not_used" in result.acute.notes
    assert result.needs_remeasure == ("whz",)
    band = result.band("whz")
    assert band.flagged and band.band_key is None and band.z == -5.5
    assert result.growth.weight_for_height is None


def test_flagged_whz_with_muac(classify: Classify) -> None:
    flags = frozenset({"whz"})
    assert classify(whz=-5.5, muac_mm=120, flags=flags).acute.status == "mam"
    assert classify(whz=-5.5, muac_mm=110, flags=flags).acute.status == "sam"
    assert classify(whz=-5.5, muac_mm=130, flags=flags).acute.status == "unknown"


def test_flagged_muac(classify: Classify) -> None:
    flags = frozenset({"muac"})
    result = classify(whz=-1.0, muac_mm=100, flags=flags)
    assert result.acute.status == "unknown"
    assert result.needs_remeasure == ("muac",)
    assert "note.muac_flagged_not_used" in result.acute.notes
    assert classify(CO, whz=-0.5, muac_mm=100, flags=flags).acute.status == "none"


def test_flagged_growth_indicators(classify: Classify) -> None:
    result = classify(haz=-6.5, waz=-6.5, hcz=5.5, flags=frozenset({"haz", "waz", "hcz"}))
    assert result.growth.stunting is None
    assert result.growth.underweight is None
    assert result.growth.head is None
    assert result.needs_remeasure == ("waz", "haz", "hcz")


@pytest.mark.parametrize(
    ("z", "expected"),
    [(-3.01, "severe"), (-3.0, "moderate"), (-2.01, "moderate"), (-2.0, "none"), (1.0, "none")],
)
def test_stunting_and_underweight(classify: Classify, z: float, expected: str) -> None:
    result = classify(haz=z, waz=z)
    assert result.growth.stunting == expected
    assert result.growth.underweight == expected


@pytest.mark.parametrize(
    ("whz", "expected"),
    [
        (1.0, "none"),
        (1.01, "possible_risk_of_overweight"),
        (2.0, "possible_risk_of_overweight"),
        (2.01, "overweight"),
        (3.0, "overweight"),
        (3.01, "obesity"),
    ],
)
def test_weight_for_height_growth(classify: Classify, whz: float, expected: str) -> None:
    assert classify(whz=whz).growth.weight_for_height == expected


@pytest.mark.parametrize(
    ("hcz", "expected"), [(-2.01, "hcz_lt_-2"), (-2.0, "none"), (2.0, "none"), (2.01, "hcz_gt_2")]
)
def test_head_circumference_refer(classify: Classify, hcz: float, expected: str) -> None:
    assert classify(hcz=hcz).growth.head == expected


def test_growth_findings_are_translated(classify: Classify) -> None:
    result = classify(haz=-3.5, waz=-2.5, whz=3.5, hcz=2.5)
    assert result.growth.findings() == (
        "growth.severe_stunting",
        "growth.underweight",
        "growth.obesity",
        "growth.hcz_gt_2",
    )
    for key in result.growth.findings():
        assert key in LABELS


@pytest.mark.parametrize(
    ("age_days", "kw", "at_risk", "criteria"),
    [
        (100, {"waz": -2.01}, True, ("u6.waz_lt_-2",)),
        (100, {"waz": -2.0}, False, ()),
        (182, {"waz": -2.5}, True, ("u6.waz_lt_-2",)),
        (183, {"waz": -2.5}, None, ()),
        (100, {"growth_faltering": True}, True, ("u6.growth_faltering",)),
        (100, {"feeding_problem": True, "waz": -1}, True, ("u6.feeding_problem",)),
        (100, {"waz": -6.5, "flags": frozenset({"waz"})}, False, ()),
        (None, {"waz": -3}, None, ()),
    ],
)
def test_under_six_months_at_risk(
    classify: Classify,
    age_days: int | None,
    kw: dict[str, Any],
    at_risk: bool | None,
    criteria: tuple[str, ...],
) -> None:
    result = classify(age_days=age_days, **kw)
    assert result.u6_at_risk is at_risk
    assert result.u6_criteria == criteria


def test_national_bands_are_reported(classify: Classify) -> None:
    result = classify(BR, whz=1.01, haz=-2.0, waz=2.01, baz=1.0)
    assert result.profile_code == "BR"
    assert result.band("whz").band_key == "br.wfh.risco_sobrepeso"
    assert result.band("haz").band_key == "br.haz.adequada"
    assert result.band("waz").band_key == "br.waz.elevado"
    assert result.band("baz").band_key == "br.wfh.eutrofia"
    assert result.band("hcz").band_key is None and not result.band("hcz").flagged


def test_colombia_risk_band_and_muac_referral(classify: Classify) -> None:
    result = classify(CO, whz=-1.5, muac_mm=110)
    assert result.acute.status == "none"
    assert result.acute_risk
    assert result.acute.referral_criteria == ("muac_lt_115",)
    assert result.acute.criteria == ()
    assert classify(CO, whz=-1.0, muac_mm=114).acute_risk is False
    assert classify(CO, whz=-1.5, muac_mm=115).acute.referral_criteria == ()
    assert classify(CO, whz=-2.5).acute.status == "mam"


def test_same_measurement_under_other_profiles() -> None:
    ind = ChildIndicators(age_days=TWO_YEARS, whz=-1.5, muac_mm=110)
    readings = classify_under_profiles(ind, [WHO, CO, BR])
    assert set(readings) == {"WHO", "CO", "BR"}
    assert readings["WHO"].acute.status == "sam"
    assert readings["CO"].acute.status == "none"
    crossing = reclassify(ind, CO, WHO)
    assert crossing.original.profile_code == "CO" and crossing.current.profile_code == "WHO"
    assert crossing.differs


def test_same_conclusion_does_not_differ() -> None:
    ind = ChildIndicators(age_days=TWO_YEARS, whz=-2.5, muac_mm=130)
    assert not reclassify(ind, BR, WHO).differs


@pytest.mark.parametrize(
    ("kw", "field", "code"),
    [
        ({"muac_mm": 11.5}, "muac_mm", "unit"),
        ({"muac_mm": 49.9}, "muac_mm", "unit"),
        ({"muac_mm": 400.1}, "muac_mm", "unit"),
        ({"oedema_grade": 4}, "oedema_grade", "out_of_range"),
        ({"oedema_grade": -1}, "oedema_grade", "out_of_range"),
        ({"age_days": -1}, "age_days", "negative"),
        ({"flags": frozenset({"wfl"})}, "flags", "invalid"),
    ],
)
def test_impossible_inputs_raise(kw: dict[str, Any], field: str, code: str) -> None:
    args: dict[str, Any] = {"age_days": TWO_YEARS, **kw}
    with pytest.raises(MeasurementError) as err:
        ChildIndicators(**args)
    assert (err.value.field, err.value.code) == (field, code)


def test_muac_limits_are_accepted() -> None:
    ChildIndicators(age_days=TWO_YEARS, muac_mm=50)
    ChildIndicators(age_days=TWO_YEARS, muac_mm=400)


z_values = st.none() | st.floats(min_value=-7, max_value=7, allow_nan=False).map(
    lambda z: round(z, 2)
)


@given(
    age_days=st.none() | st.integers(min_value=0, max_value=1900),
    whz=z_values,
    waz=z_values,
    haz=z_values,
    hcz=z_values,
    muac=st.none() | st.integers(min_value=50, max_value=400),
    oedema=st.integers(min_value=0, max_value=3),
    flags=st.frozensets(st.sampled_from(["whz", "waz", "haz", "muac", "hcz"])),
    complications=st.booleans(),
    appetite=st.none() | st.booleans(),
)
def test_invariants(
    age_days: int | None,
    whz: float | None,
    waz: float | None,
    haz: float | None,
    hcz: float | None,
    muac: int | None,
    oedema: int,
    flags: frozenset[str],
    complications: bool,
    appetite: bool | None,
) -> None:
    ind = ChildIndicators(
        age_days=age_days,
        whz=whz,
        waz=waz,
        haz=haz,
        hcz=hcz,
        muac_mm=muac,
        oedema_grade=oedema,
        flags=flags,
        medical_complications=complications,
        appetite_test_failed=appetite,
    )
    for profile in PROFILES:
        result = classify_child(ind, profile)
        acute = result.acute
        if oedema:
            assert acute.status == "sam"
        if "whz" in flags:
            assert not any(c.startswith("whz") for c in acute.criteria)
            assert acute.status != "none"
        if acute.status in ("none", "unknown"):
            assert acute.criteria == ()
        assert acute.complicated == (acute.status == "sam" and bool(acute.complication_reasons))
        assert set(result.needs_remeasure) == flags
        keys = [result.status_key, *acute.complication_reasons, *acute.notes, *result.u6_criteria]
        keys += [f"criterion.{c}" for c in (*acute.criteria, *acute.referral_criteria)]
        keys += [b.label_key for b in result.bands if b.label_key]
        keys += list(result.growth.findings())
        for key in keys:
            assert key in LABELS, key
        for lang in LANGS:
            assert result.label(lang)
            assert len(acute.criteria_labels(lang)) == len(acute.criteria) + len(
                acute.referral_criteria
            )
