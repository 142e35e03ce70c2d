"""Country classification profiles as data (NUTRITION.md §3).

One z-score engine, many profiles. A profile holds the national bands of each indicator with
their exact ``<``/``≤`` convention, MUAC cut-offs for pregnant and lactating women, the
haemoglobin adjustment method, follow-up frequencies and the CMAM episode rules. An encounter is
classified by the profile of the country where it happened (DESIGN.md §6).

Texts are not stored here: every band, profile name and note carries a key into
:data:`contigo.nutrition.labels.LABELS` (es/pt/en). Where NUTRITION.md marks a rule **verify**,
the profile lists a note key in :attr:`Profile.verify_notes`, so the user interface can show it.
Parameters a national norm has not been encoded for are inherited from the WHO profile, and a
note (``verify.inherited``) says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from contigo.nutrition.labels import Lang, label

Indicator = Literal["waz", "haz", "whz", "baz", "hcz", "muacz"]
INDICATORS: tuple[Indicator, ...] = ("waz", "haz", "whz", "baz", "hcz", "muacz")
HbMethod = Literal["who2024", "steps"]
CureRule = Literal["who2013", "who2023"]
#: Gestational weight gain reference (NUTRITION.md §5): only IOM 2009 is encoded; a profile whose
#: national chart is not yet encoded keeps IOM 2009 and lists ``verify.gwg_*``.
GwgReference = Literal["iom2009"]
DAYS_PER_MONTH = 30.4375


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of a band: ``value`` and whether the value itself belongs to the band."""

    value: float
    inclusive: bool


@dataclass(frozen=True, slots=True)
class Band:
    """A z-score interval. ``None`` bounds are open-ended (±∞).

    ``key`` is stable and unique per profile and indicator (``co.whz.riesgo_dnt_aguda``);
    ``label_key`` names its text in the catalogue. ``risk`` marks a national "riesgo" band that
    calls for follow-up (Res. 2465/2016).
    """

    key: str
    label_key: str
    lower: Bound | None
    upper: Bound | None
    risk: bool = False

    def contains(self, z: float) -> bool:
        """Whether ``z`` falls in this band, honouring each bound's inclusiveness."""
        lo, hi = self.lower, self.upper
        if lo is not None and (z < lo.value or (z == lo.value and not lo.inclusive)):
            return False
        return not (hi is not None and (z > hi.value or (z == hi.value and not hi.inclusive)))

    def label(self, lang: Lang) -> str:
        """The band's text in ``lang``."""
        return label(self.label_key, lang)


@dataclass(frozen=True, slots=True)
class IndicatorBands:
    """The bands of one indicator, ordered from low to high, covering the whole real line."""

    indicator: Indicator
    source: str
    bands: tuple[Band, ...]

    def band_for(self, z: float) -> Band:
        """The single band holding ``z`` (bands are contiguous and do not overlap)."""
        for band in self.bands:
            if band.contains(z):
                return band
        raise ValueError(f"no {self.indicator} band holds {z}")


@dataclass(frozen=True, slots=True)
class PlwMuacCutoffs:
    """MUAC cut-offs for pregnant and lactating women; acute malnutrition is ``< acute_below_mm``.

    No international standard exists (NUTRITION.md §5): default < 230 mm; profiles may choose 220
    or 210; some use < 185 mm as severe.
    """

    acute_below_mm: int = 230
    severe_below_mm: int | None = None


@dataclass(frozen=True, slots=True)
class FollowUp:
    """Days between scheduled visits per programme (NUTRITION.md §4; Res. 2465/2016 for risk).

    ``acute_risk_days`` is ``None`` where the norm sets no follow-up for a "riesgo" band.
    ``grace_days``: a scheduled visit counts as attended if a visit happens no later than this
    many days after its due date.
    """

    sam_days: int = 7
    mam_days: int = 14
    acute_risk_days: int | None = None
    plw_days: int = 30
    grace_days: int = 3


ReferralCode = Literal["otp", "tsfp", "inpatient", "health_facility"]


@dataclass(frozen=True, slots=True)
class Referrals:
    """The referral or treatment a finding calls for under a profile: what the visit form
    pre-selects (a health worker may still choose otherwise).

    ``who_sam_sign`` is for a WHO SAM criterion the national label does not count as SAM
    (Colombia: MUAC < 115 mm at 6–59 months, "PB < 11,5 cm: remitir").
    """

    sam: ReferralCode = "otp"
    sam_complicated: ReferralCode = "inpatient"
    mam: ReferralCode = "tsfp"
    who_sam_sign: ReferralCode = "otp"


@dataclass(frozen=True, slots=True)
class Profile:
    """A country's classification profile. Look it up with :func:`get_profile`.

    ``muac_defines_acute``: whether MUAC < 115 / < 125 mm defines SAM / MAM (WHO 2013/2023);
    where it does not (Colombia), ``muac_referral_below_mm`` makes MUAC a referral criterion.
    MUAC criteria apply from ``muac_min_age_months`` up to, not including,
    ``muac_max_age_months`` completed months.
    """

    code: str
    name_key: str
    sources: tuple[str, ...]
    bands: tuple[IndicatorBands, ...]
    unverified: bool = False
    verify_notes: tuple[str, ...] = ()
    muac_defines_acute: bool = True
    muac_referral_below_mm: int | None = None
    muac_min_age_months: int = 6
    muac_max_age_months: int = 60
    plw_muac: PlwMuacCutoffs = field(default_factory=PlwMuacCutoffs)
    hb_elevation_method: HbMethod = "who2024"
    hb_smoking_adjustment: bool = False
    follow_up: FollowUp = field(default_factory=FollowUp)
    referrals: Referrals = field(default_factory=Referrals)
    gwg_reference: GwgReference = "iom2009"
    cure_rule: CureRule = "who2023"
    defaulter_missed_visits: int = 2
    sam_max_stay_days: int = 16 * 7
    mam_max_stay_days: int = 120

    def name(self, lang: Lang) -> str:
        """The profile's display name in ``lang``."""
        return label(self.name_key, lang)

    def bands_for(self, indicator: Indicator) -> IndicatorBands:
        """The national bands of ``indicator``."""
        for item in self.bands:
            if item.indicator == indicator:
                return item
        raise KeyError(indicator)

    def band_for(self, indicator: Indicator, z: float) -> Band:
        """The national band holding ``z`` for ``indicator``."""
        return self.bands_for(indicator).band_for(z)


Cut = tuple[float, Literal["<", "<="]]


def _scale(
    indicator: Indicator,
    prefix: str,
    source: str,
    cuts: Sequence[Cut],
    names: Sequence[str],
    risk: frozenset[str] = frozenset(),
) -> IndicatorBands:
    """Build contiguous bands from cut points, read as the norm writes them.

    ``(−2, "<")`` means the band below ends with ``z < −2`` (−2 belongs to the band above);
    ``(1, "<=")`` means the band below ends with ``z ≤ +1``. A name ``normal`` uses the shared
    label ``band.normal``; any other name ``n`` gives key and label ``{prefix}.{n}``.
    """
    if len(names) != len(cuts) + 1:
        raise ValueError("need one band name more than cut points")
    edges: list[Bound | None] = [None, *(Bound(v, inclusive=op == "<=") for v, op in cuts), None]
    bands = []
    for i, name in enumerate(names):
        prev = edges[i]
        lower = None if prev is None else Bound(prev.value, inclusive=not prev.inclusive)
        key = f"{prefix}.{name}"
        label_key = "band.normal" if name == "normal" else key
        bands.append(Band(key, label_key, lower, edges[i + 1], risk=name in risk))
    return IndicatorBands(indicator, source, tuple(bands))


_WHO_SRC = "WHO Child Growth Standards 2006; WHO/UNICEF 2019 (interpretation of z-scores)"
_WFH_CUTS: tuple[Cut, ...] = ((-3, "<"), (-2, "<"), (1, "<="), (2, "<="), (3, "<="))
_LOW2: tuple[Cut, ...] = ((-3, "<"), (-2, "<"))
_WHO_WFH = ("severe_wasting", "wasted", "normal", "possible_risk_overweight", "overweight", "obese")
WHO_BANDS = (
    _scale("whz", "who.wfh", _WHO_SRC, _WFH_CUTS, _WHO_WFH),
    _scale("baz", "who.wfh", _WHO_SRC, _WFH_CUTS, _WHO_WFH),
    _scale("haz", "who.haz", _WHO_SRC, _LOW2, ("severely_stunted", "stunted", "normal")),
    _scale(
        "waz",
        "who.waz",
        _WHO_SRC,
        ((-3, "<"), (-2, "<"), (1, "<=")),
        ("severely_underweight", "underweight", "normal", "check_wfh"),
    ),
    _scale(
        "hcz", "who.hcz", _WHO_SRC, ((-2, "<"), (2, "<=")), ("low_refer", "normal", "high_refer")
    ),
    _scale("muacz", "who.muacz", _WHO_SRC, _LOW2, ("severely_low", "low", "normal")),
)


def _who(*indicators: Indicator) -> tuple[IndicatorBands, ...]:
    return tuple(b for b in WHO_BANDS if b.indicator in indicators)


_SISVAN = "SISVAN 2011 (Norma técnica do Sistema de Vigilância Alimentar e Nutricional)"
_BR_WFH = ("magreza_acentuada", "magreza", "eutrofia", "risco_sobrepeso", "sobrepeso", "obesidade")
BR_BANDS = (
    _scale("whz", "br.wfh", _SISVAN, _WFH_CUTS, _BR_WFH),
    _scale("baz", "br.wfh", _SISVAN, _WFH_CUTS, _BR_WFH),
    _scale("haz", "br.haz", _SISVAN, _LOW2, ("muito_baixa", "baixa", "adequada")),
    _scale(
        "waz",
        "br.waz",
        _SISVAN,
        ((-3, "<"), (-2, "<"), (2, "<=")),
        ("muito_baixo", "baixo", "adequado", "elevado"),
    ),
    *_who("hcz", "muacz"),
)

_RES2465 = "Resolución 2465 de 2016 (Colombia)"
CO_BANDS = (
    _scale(
        "whz",
        "co.whz",
        _RES2465,
        ((-3, "<"), (-2, "<"), (-1, "<"), (1, "<="), (2, "<="), (3, "<=")),
        (
            "dnt_aguda_severa",
            "dnt_aguda_moderada",
            "riesgo_dnt_aguda",
            "adecuado",
            "riesgo_sobrepeso",
            "sobrepeso",
            "obesidad",
        ),
        risk=frozenset({"riesgo_dnt_aguda"}),
    ),
    _scale("haz", "co.haz", _RES2465, ((-2, "<"), (-1, "<")), ("talla_baja", "riesgo", "adecuada")),
    _scale(
        "waz",
        "co.waz",
        _RES2465,
        ((-2, "<"), (-1, "<"), (1, "<=")),
        ("dnt_global", "riesgo", "adecuado", "no_aplica"),
    ),
    _scale(
        "baz",
        "co.baz",
        _RES2465,
        ((1, "<="), (2, "<="), (3, "<=")),
        ("no_aplica", "riesgo_sobrepeso", "sobrepeso", "obesidad"),
    ),
    _scale(
        "hcz", "co.hcz", _RES2465, ((-2, "<"), (2, "<=")), ("riesgo_bajo", "normal", "riesgo_alto")
    ),
    *_who("muacz"),
)

_NTS137 = "NTS N.° 137-MINSA/2017/DGIESP (Perú)"
PE_BANDS = (
    _scale(
        "whz",
        "pe.whz",
        _NTS137,
        ((-3, "<"), (-2, "<"), (2, "<="), (3, "<=")),
        ("desnutricion_severa", "desnutricion_aguda", "normal", "sobrepeso", "obesidad"),
    ),
    _scale(
        "haz",
        "pe.haz",
        _NTS137,
        ((-3, "<"), (-2, "<"), (2, "<=")),
        ("talla_baja_severa", "talla_baja", "normal", "alto"),
    ),
    *_who("waz", "baz", "hcz", "muacz"),
)

_COMMON_NOTES = (
    "verify.u6",
    "verify.hb_severity",
    "verify.hb_equation",
    "verify.hb_smoking",
    "verify.gwg_iom",
)

WHO = Profile(
    code="WHO",
    name_key="profile.WHO",
    sources=("WHO 2013 SAM guideline", "WHO 2023 wasting guideline", "WHO 2024 haemoglobin"),
    bands=WHO_BANDS,
    verify_notes=_COMMON_NOTES,
)
CO = replace(
    WHO,
    code="CO",
    name_key="profile.CO",
    sources=("Resolución 2465 de 2016", "Resolución 2350 de 2020 (mod. Resolución 115 de 2026)"),
    bands=CO_BANDS,
    muac_defines_acute=False,
    muac_referral_below_mm=115,
    follow_up=FollowUp(acute_risk_days=14),
    referrals=Referrals(who_sam_sign="health_facility"),
    verify_notes=(
        "verify.co_tables",
        "verify.co_muac",
        "verify.gwg_co",
        "verify.inherited",
        *_COMMON_NOTES,
    ),
)
BR = replace(
    WHO,
    code="BR",
    name_key="profile.BR",
    sources=(_SISVAN,),
    bands=BR_BANDS,
    verify_notes=("verify.gwg_br", "verify.inherited", *_COMMON_NOTES),
)
PE = replace(
    WHO,
    code="PE",
    name_key="profile.PE",
    sources=(_NTS137,),
    bands=PE_BANDS,
    hb_elevation_method="steps",
    verify_notes=("verify.pe", "verify.inherited", *_COMMON_NOTES),
)
EC = replace(
    WHO,
    code="EC",
    name_key="profile.EC",
    unverified=True,
    verify_notes=("verify.placeholder", *_COMMON_NOTES),
)
PA = replace(
    WHO,
    code="PA",
    name_key="profile.PA",
    unverified=True,
    verify_notes=("verify.placeholder", *_COMMON_NOTES),
)

PROFILES: tuple[Profile, ...] = (WHO, CO, BR, PE, EC, PA)
_BY_CODE = {p.code: p for p in PROFILES}


def get_profile(country_code: str | None) -> Profile:
    """The profile for an ISO 3166-1 alpha-2 country code (case-insensitive), or ``"WHO"``.

    Any code not encoded yet, and ``None``, gives the WHO profile (NUTRITION.md §3).
    """
    if country_code is None:
        return WHO
    return _BY_CODE.get(country_code.strip().upper(), WHO)


def completed_months(age_days: int) -> int:
    """Completed months of age, ``floor(days / 30.4375)`` (NUTRITION.md §1)."""
    return math.floor(age_days / DAYS_PER_MONTH)


def muac_applies(age_days: int, profile: Profile) -> bool:
    """Whether MUAC criteria apply at ``age_days`` (WHO 2013/2023: 6–59 months).

    Counted in completed months, so 6 months starts at day 183 (182.625 is not a whole day) and
    60 months at day 1827 (1826.25): MUAC applies from day 183 to day 1826 inclusive.
    """
    months = completed_months(age_days)
    return profile.muac_min_age_months <= months < profile.muac_max_age_months
