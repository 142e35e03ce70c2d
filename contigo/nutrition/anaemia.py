"""Anaemia from haemoglobin: WHO 2024 cut-offs with elevation adjustment (NUTRITION.md §6).

Order of work, so the same reading always gives the same answer:

1. validate the inputs (Hb 20–250 g/L; elevation −500 to 6000 m);
2. subtract the elevation adjustment chosen by the profile and, where the profile enables it,
   the smoking adjustment;
   the elevation adjustment is first rounded to 1 decimal (half up), so that measured minus
   adjustment equals the adjusted value on screen;
3. round the adjusted Hb to 1 decimal (half up), the value shown to the clinician;
4. compare that **adjusted, rounded** value with the group's sea-level cut-offs.

Elevation methods:

- ``who2024``: ``Hb − (0.0056384·E + 0.0000003·E²)`` g/L for E > 0 m (WHO 2024; **verify**).
  At or below sea level nothing is subtracted: the equation was fitted on elevations above sea
  level, and a negative adjustment would raise Hb.
- ``steps``: the older national step table (used by Peru's NTS 137), lower bound inclusive:
  1000–1499 m 2 g/L, 1500–1999 m 5, 2000–2499 m 8, 2500–2999 m 13, 3000–3499 m 19,
  3500–3999 m 27, 4000–4499 m 35, from 4500 m 45; below 1000 m nothing.

Smoking (per profile, off by default, **verify**): the WHO 2011 VMNIS table, subtracting 3 g/L
for a smoker of unknown amount or 10–19 cigarettes a day, 5 g/L for 20–39 and 7 g/L from 40;
nothing below 10 a day. Children are never adjusted for smoking.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.labels import Lang, label
from contigo.nutrition.profiles import HbMethod, Profile, completed_months
from contigo.nutrition.women import Trimester

HbGroup = Literal[
    "child_6_23", "child_24_59", "woman_non_pregnant", "pregnant_t1", "pregnant_t2", "pregnant_t3"
]
Severity = Literal["none", "mild", "moderate", "severe", "not_applicable"]
HB_MIN_G_L = 20
HB_MAX_G_L = 250
ELEVATION_MIN_M = -500
ELEVATION_MAX_M = 6000


@dataclass(frozen=True, slots=True)
class HbCutoffs:
    """Sea-level cut-offs of one group (g/L): anaemia is ``< anaemia_below``; severity bands
    are ``< severe_below`` severe, ``< moderate_below`` moderate, otherwise mild."""

    anaemia_below: int
    moderate_below: int
    severe_below: int


#: WHO 2024 cut-offs and severity bands (NUTRITION.md §6; bands **verify**).
CUTOFFS: dict[HbGroup, HbCutoffs] = {
    "child_6_23": HbCutoffs(105, 95, 70),
    "child_24_59": HbCutoffs(110, 100, 70),
    "woman_non_pregnant": HbCutoffs(120, 110, 80),
    "pregnant_t1": HbCutoffs(110, 100, 70),
    "pregnant_t2": HbCutoffs(105, 95, 70),
    "pregnant_t3": HbCutoffs(110, 100, 70),
}

#: Older national step table: (from elevation in m, g/L subtracted), highest first.
ELEVATION_STEPS: tuple[tuple[int, int], ...] = (
    (4500, 45),
    (4000, 35),
    (3500, 27),
    (3000, 19),
    (2500, 13),
    (2000, 8),
    (1500, 5),
    (1000, 2),
)


_PREGNANT: dict[int, HbGroup] = {1: "pregnant_t1", 2: "pregnant_t2", 3: "pregnant_t3"}


def child_group(age_days: int) -> HbGroup | None:
    """The group of a child by completed months; ``None`` under 6 or from 60 months, where
    the WHO table in NUTRITION.md §6 has no cut-off."""
    months = completed_months(age_days)
    if months < 6 or months >= 60:
        return None
    return "child_6_23" if months < 24 else "child_24_59"


def woman_group(age_years: int, pregnant: bool, trimester: Trimester | None) -> HbGroup | None:
    """The group of a woman: pregnant by trimester (any age), otherwise non-pregnant from 15
    years (lactating women included); ``None`` for a non-pregnant girl under 15.

    :raises MeasurementError: ``missing`` for a pregnancy without a trimester.
    """
    if pregnant:
        if trimester is None:
            raise MeasurementError("trimester", "missing", "pregnant without a gestational age")
        return _PREGNANT[trimester]
    return "woman_non_pregnant" if age_years >= 15 else None


def protective_pregnancy_group() -> HbGroup:
    """The pregnancy group with the highest cut-offs (NUTRITION.md §5): a pregnant woman whose
    gestational age is unknown is classified so that her anaemia is never under-called."""
    return max(
        _PREGNANT.values(),
        key=lambda g: (
            CUTOFFS[g].anaemia_below,
            CUTOFFS[g].moderate_below,
            CUTOFFS[g].severe_below,
        ),
    )


def elevation_adjustment(elevation_m: float, method: HbMethod) -> float:
    """g/L to subtract from Hb measured at ``elevation_m`` by ``method`` (see module notes).

    :raises MeasurementError: ``out_of_range`` outside −500 to 6000 m.
    """
    if not ELEVATION_MIN_M <= elevation_m <= ELEVATION_MAX_M:
        raise MeasurementError("elevation_m", "out_of_range", "elevation outside −500–6000 m")
    if method == "who2024":
        if elevation_m <= 0:
            return 0.0
        return 0.0056384 * elevation_m + 0.0000003 * elevation_m**2
    for lower, grams in ELEVATION_STEPS:
        if elevation_m >= lower:
            return float(grams)
    return 0.0


def smoking_adjustment(smoker: bool, cigarettes_per_day: int | None) -> float:
    """g/L to subtract for smoking (WHO 2011 VMNIS table; applied only where the profile says)."""
    if not smoker:
        return 0.0
    if cigarettes_per_day is None:
        return 3.0
    if cigarettes_per_day >= 40:
        return 7.0
    if cigarettes_per_day >= 20:
        return 5.0
    return 3.0 if cigarettes_per_day >= 10 else 0.0


def _round1(value: float | Decimal) -> Decimal:
    exact = value if isinstance(value, Decimal) else Decimal(repr(value))
    return exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def severity(hb_adjusted: float, group: HbGroup) -> Severity:
    """Severity of an adjusted Hb in ``group`` (WHO 2024 bands, NUTRITION.md §6)."""
    cut = CUTOFFS[group]
    if hb_adjusted < cut.severe_below:
        return "severe"
    if hb_adjusted < cut.moderate_below:
        return "moderate"
    return "mild" if hb_adjusted < cut.anaemia_below else "none"


@dataclass(frozen=True, slots=True)
class AnaemiaResult:
    """One haemoglobin reading, adjusted and classified.

    ``anaemic`` is ``None`` and ``severity`` ``not_applicable`` when the group has no cut-off.
    """

    group: HbGroup | None
    hb_measured_g_l: float
    elevation_m: float
    method: HbMethod
    elevation_adjustment_g_l: float
    smoking_adjustment_g_l: float
    hb_adjusted_g_l: float
    threshold_g_l: int | None
    anaemic: bool | None
    severity: Severity

    @property
    def status_key(self) -> str:
        """Catalogue key of the severity (``anaemia.moderate`` …)."""
        return f"anaemia.{self.severity}"

    def label(self, lang: Lang) -> str:
        """The severity in ``lang``."""
        return label(self.status_key, lang)


def assess_hb(
    hb_g_l: float,
    group: HbGroup | None,
    elevation_m: float,
    profile: Profile,
    *,
    smoker: bool = False,
    cigarettes_per_day: int | None = None,
) -> AnaemiaResult:
    """Adjust and classify one Hb reading under ``profile`` (WHO 2024; see module notes).

    :param group: from :func:`child_group` or :func:`woman_group`; ``None`` means no cut-off.
    :raises MeasurementError: ``unit`` for Hb under 20 g/L (g/dL typed), ``out_of_range`` over
        250 g/L or for an impossible elevation.
    """
    if hb_g_l < HB_MIN_G_L:
        raise MeasurementError("hb_g_l", "unit", f"{hb_g_l} g/L is under 20: g/dL typed?")
    if hb_g_l > HB_MAX_G_L:
        raise MeasurementError("hb_g_l", "out_of_range", f"{hb_g_l} g/L is over 250")
    method = profile.hb_elevation_method
    elev = elevation_adjustment(elevation_m, method)
    is_child = group in ("child_6_23", "child_24_59")
    smoke = 0.0
    if profile.hb_smoking_adjustment and not is_child:
        smoke = smoking_adjustment(smoker, cigarettes_per_day)
    elev_shown = _round1(elev)
    adjusted = float(_round1(Decimal(repr(hb_g_l)) - elev_shown - Decimal(repr(smoke))))
    sev: Severity = "not_applicable" if group is None else severity(adjusted, group)
    return AnaemiaResult(
        group=group,
        hb_measured_g_l=hb_g_l,
        elevation_m=elevation_m,
        method=method,
        elevation_adjustment_g_l=float(elev_shown),
        smoking_adjustment_g_l=smoke,
        hb_adjusted_g_l=adjusted,
        threshold_g_l=None if group is None else CUTOFFS[group].anaemia_below,
        anaemic=None if group is None else sev != "none",
        severity=sev,
    )
