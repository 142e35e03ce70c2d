"""Country profiles: lookup, verify notes, translations and band boundaries (NUTRITION.md §3).

Expected bands are written out from the norms' text, not computed by the code under test.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contigo.nutrition.labels import LABELS, LANGS, label
from contigo.nutrition.profiles import (
    BR,
    CO,
    INDICATORS,
    PE,
    PROFILES,
    WHO,
    Profile,
    get_profile,
    muac_applies,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("WHO", "WHO"), ("CO", "CO"), ("co", "CO"), (" br ", "BR"), ("PE", "PE"), ("EC", "EC")],
)
def test_get_profile_by_code(code: str, expected: str) -> None:
    assert get_profile(code).code == expected


@pytest.mark.parametrize("code", ["VE", "XX", "", None])
def test_unknown_country_gets_who(code: str | None) -> None:
    assert get_profile(code) is WHO


def test_placeholder_profiles_are_unverified_with_who_bands() -> None:
    for code in ("EC", "PA"):
        profile = get_profile(code)
        assert profile.unverified
        assert profile.bands == WHO.bands
        assert "verify.placeholder" in profile.verify_notes
    for profile in (WHO, CO, BR, PE):
        assert not profile.unverified


def test_verify_notes_are_visible_in_profiles() -> None:
    assert {"verify.co_tables", "verify.co_muac"} <= set(CO.verify_notes)
    assert "verify.pe" in PE.verify_notes
    for profile in PROFILES:
        assert {
            "verify.u6",
            "verify.hb_severity",
            "verify.hb_equation",
            "verify.hb_smoking",
        } <= set(profile.verify_notes)


def test_profile_parameters() -> None:
    assert WHO.plw_muac.acute_below_mm == 230 and WHO.plw_muac.severe_below_mm is None
    assert WHO.follow_up.sam_days == 7 and WHO.follow_up.mam_days == 14
    assert WHO.follow_up.acute_risk_days is None and CO.follow_up.acute_risk_days == 14
    assert WHO.defaulter_missed_visits == 2
    assert WHO.sam_max_stay_days == 112 and WHO.mam_max_stay_days == 120
    assert WHO.hb_elevation_method == "who2024" and PE.hb_elevation_method == "steps"
    assert not any(p.hb_smoking_adjustment for p in PROFILES)
    assert WHO.cure_rule in ("who2013", "who2023")
    assert CO.muac_referral_below_mm == 115 and not CO.muac_defines_acute
    assert WHO.muac_defines_acute and WHO.muac_referral_below_mm is None


def _label_keys() -> set[str]:
    keys = set()
    for profile in PROFILES:
        keys.add(profile.name_key)
        keys.update(profile.verify_notes)
        for indicator_bands in profile.bands:
            keys.update(band.label_key for band in indicator_bands.bands)
    return keys


def test_every_label_has_three_non_empty_languages() -> None:
    assert LANGS == ("es", "pt", "en")
    for key, text in LABELS.items():
        for lang in LANGS:
            assert text.get(lang).strip(), (key, lang)


def test_every_profile_key_is_translated() -> None:
    missing = _label_keys() - set(LABELS)
    assert not missing
    for profile in PROFILES:
        for lang in LANGS:
            assert profile.name(lang)


def test_unknown_label_key_or_language_raises() -> None:
    with pytest.raises(KeyError):
        label("no.such.key", "es")
    with pytest.raises(KeyError):
        LABELS["acute.sam"].get("fr")  # type: ignore[arg-type]


def test_brazil_labels_are_portuguese() -> None:
    assert BR.band_for("whz", 0).label("pt") == "Eutrofia"
    assert BR.band_for("whz", -3.5).label("pt") == "Magreza acentuada"
    assert BR.band_for("haz", -2.5).label("pt") == "Baixa estatura para a idade"


def test_every_profile_has_every_indicator() -> None:
    for profile in PROFILES:
        assert {b.indicator for b in profile.bands} == set(INDICATORS)


@given(z=st.floats(min_value=-8, max_value=8, allow_nan=False))
def test_bands_partition_the_line(z: float) -> None:
    for profile in PROFILES:
        for indicator_bands in profile.bands:
            holding = [b for b in indicator_bands.bands if b.contains(z)]
            assert len(holding) == 1, (profile.code, indicator_bands.indicator, z)


@pytest.mark.parametrize("z", [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
def test_cut_points_belong_to_exactly_one_band(z: float) -> None:
    for profile in PROFILES:
        for indicator_bands in profile.bands:
            assert sum(b.contains(z) for b in indicator_bands.bands) == 1


def _check(profile: Profile, indicator: str, rows: list[tuple[float, str]]) -> None:
    for z, expected in rows:
        assert profile.band_for(indicator, z).key == expected, (profile.code, indicator, z)  # type: ignore[arg-type]


def test_brazil_weight_for_height_and_bmi_bands() -> None:
    rows = [
        (-3.01, "br.wfh.magreza_acentuada"),
        (-3.00, "br.wfh.magreza"),
        (-2.01, "br.wfh.magreza"),
        (-2.00, "br.wfh.eutrofia"),
        (0.0, "br.wfh.eutrofia"),
        (1.00, "br.wfh.eutrofia"),
        (1.01, "br.wfh.risco_sobrepeso"),
        (2.00, "br.wfh.risco_sobrepeso"),
        (2.01, "br.wfh.sobrepeso"),
        (3.00, "br.wfh.sobrepeso"),
        (3.01, "br.wfh.obesidade"),
    ]
    _check(BR, "whz", rows)
    _check(BR, "baz", rows)


def test_brazil_height_and_weight_for_age_bands() -> None:
    _check(
        BR,
        "haz",
        [
            (-3.01, "br.haz.muito_baixa"),
            (-3.0, "br.haz.baixa"),
            (-2.01, "br.haz.baixa"),
            (-2.0, "br.haz.adequada"),
            (4.0, "br.haz.adequada"),
        ],
    )
    _check(
        BR,
        "waz",
        [
            (-3.01, "br.waz.muito_baixo"),
            (-3.0, "br.waz.baixo"),
            (-2.01, "br.waz.baixo"),
            (-2.0, "br.waz.adequado"),
            (2.0, "br.waz.adequado"),
            (2.01, "br.waz.elevado"),
        ],
    )


def test_colombia_bands() -> None:
    _check(
        CO,
        "whz",
        [
            (-3.01, "co.whz.dnt_aguda_severa"),
            (-3.00, "co.whz.dnt_aguda_moderada"),
            (-2.01, "co.whz.dnt_aguda_moderada"),
            (-2.00, "co.whz.riesgo_dnt_aguda"),
            (-1.01, "co.whz.riesgo_dnt_aguda"),
            (-1.00, "co.whz.adecuado"),
            (1.00, "co.whz.adecuado"),
            (1.01, "co.whz.riesgo_sobrepeso"),
            (2.00, "co.whz.riesgo_sobrepeso"),
            (2.01, "co.whz.sobrepeso"),
            (3.00, "co.whz.sobrepeso"),
            (3.01, "co.whz.obesidad"),
        ],
    )
    _check(
        CO,
        "haz",
        [
            (-2.01, "co.haz.talla_baja"),
            (-2.0, "co.haz.riesgo"),
            (-1.01, "co.haz.riesgo"),
            (-1.0, "co.haz.adecuada"),
        ],
    )
    _check(
        CO,
        "waz",
        [
            (-2.01, "co.waz.dnt_global"),
            (-2.0, "co.waz.riesgo"),
            (-1.01, "co.waz.riesgo"),
            (-1.0, "co.waz.adecuado"),
            (1.0, "co.waz.adecuado"),
            (1.01, "co.waz.no_aplica"),
        ],
    )
    _check(
        CO,
        "baz",
        [
            (1.0, "co.baz.no_aplica"),
            (1.01, "co.baz.riesgo_sobrepeso"),
            (2.0, "co.baz.riesgo_sobrepeso"),
            (2.01, "co.baz.sobrepeso"),
            (3.0, "co.baz.sobrepeso"),
            (3.01, "co.baz.obesidad"),
        ],
    )
    _check(
        CO,
        "hcz",
        [
            (-2.01, "co.hcz.riesgo_bajo"),
            (-2.0, "co.hcz.normal"),
            (2.0, "co.hcz.normal"),
            (2.01, "co.hcz.riesgo_alto"),
        ],
    )


def test_colombia_risk_band_is_marked() -> None:
    risky = [b.key for b in CO.bands_for("whz").bands if b.risk]
    assert risky == ["co.whz.riesgo_dnt_aguda"]
    assert not any(b.risk for p in (WHO, BR, PE) for ib in p.bands for b in ib.bands)


def test_peru_bands() -> None:
    _check(
        PE,
        "whz",
        [
            (-3.01, "pe.whz.desnutricion_severa"),
            (-3.00, "pe.whz.desnutricion_aguda"),
            (-2.01, "pe.whz.desnutricion_aguda"),
            (-2.00, "pe.whz.normal"),
            (2.00, "pe.whz.normal"),
            (2.01, "pe.whz.sobrepeso"),
            (3.00, "pe.whz.sobrepeso"),
            (3.01, "pe.whz.obesidad"),
        ],
    )
    _check(
        PE,
        "haz",
        [
            (-3.01, "pe.haz.talla_baja_severa"),
            (-3.0, "pe.haz.talla_baja"),
            (-2.01, "pe.haz.talla_baja"),
            (-2.0, "pe.haz.normal"),
            (2.0, "pe.haz.normal"),
            (2.01, "pe.haz.alto"),
        ],
    )


def test_who_bands() -> None:
    _check(
        WHO,
        "whz",
        [
            (-3.01, "who.wfh.severe_wasting"),
            (-3.00, "who.wfh.wasted"),
            (-2.01, "who.wfh.wasted"),
            (-2.00, "who.wfh.normal"),
            (1.00, "who.wfh.normal"),
            (1.01, "who.wfh.possible_risk_overweight"),
            (2.00, "who.wfh.possible_risk_overweight"),
            (2.01, "who.wfh.overweight"),
            (3.00, "who.wfh.overweight"),
            (3.01, "who.wfh.obese"),
        ],
    )
    _check(
        WHO,
        "hcz",
        [(-2.01, "who.hcz.low_refer"), (-2.0, "who.hcz.normal"), (2.0, "who.hcz.normal")],
    )
    _check(WHO, "hcz", [(2.01, "who.hcz.high_refer")])
    _check(
        WHO,
        "haz",
        [(-3.01, "who.haz.severely_stunted"), (-3.0, "who.haz.stunted"), (-2.0, "who.haz.normal")],
    )


@pytest.mark.parametrize(
    ("age_days", "applies"),
    [(0, False), (182, False), (183, True), (730, True), (1826, True), (1827, False)],
)
def test_muac_age_window_in_completed_months(age_days: int, applies: bool) -> None:
    assert muac_applies(age_days, WHO) is applies
