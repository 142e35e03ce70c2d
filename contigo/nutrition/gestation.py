"""Pregnancy dating, BMI and gestational weight gain (NUTRITION.md §5).

- **Dating.** Gestational age comes from the weeks the health worker typed, else from the last
  menstrual period (LMP, :func:`contigo.nutrition.women.gestational_age_from_lmp`), else from
  the expected date of delivery (EDD). Naegele's rule: EDD = LMP + 280 days.
- **BMI** = weight / height², height in metres, rounded to 1 decimal (half up); adult
  categories (WHO): < 18.5 underweight, < 25 normal, < 30 overweight, otherwise obese.
- **Gestational weight gain** against the profile's reference. Only IOM 2009 is encoded
  (**verify**): by pre-pregnancy BMI category, 0.5–2 kg in the first trimester (to the end of
  week 13, taken as linear from conception), then the weekly range of the 2nd and 3rd
  trimesters (underweight 0.44–0.58, normal 0.35–0.50, overweight 0.23–0.33, obese
  0.17–0.27 kg/week; totals 12.5–18, 11.5–16, 7–11.5, 5–9 kg). Profiles whose national chart
  is not yet encoded (Colombia's Atalah chart, Brazil's 2022 charts) show IOM 2009 with a
  *verify* note. Without a pre-pregnancy weight the gain is unknown, and said so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.profiles import GwgReference, Profile
from contigo.nutrition.women import MAX_GESTATION_WEEKS, GestationalAge

NAEGELE_DAYS = 280
FIRST_TRIMESTER_END_WEEKS = 13
FIRST_TRIMESTER_GAIN_KG = (0.5, 2.0)
BmiCategory = Literal["underweight", "normal", "overweight", "obese"]
GainStatus = Literal["below", "within", "above", "unknown"]


@dataclass(frozen=True, slots=True)
class GainRange:
    """IOM 2009 recommendation for one pre-pregnancy BMI category (kg, kg/week)."""

    total_low: float
    total_high: float
    weekly_low: float
    weekly_high: float


IOM_2009: dict[BmiCategory, GainRange] = {
    "underweight": GainRange(12.5, 18.0, 0.44, 0.58),
    "normal": GainRange(11.5, 16.0, 0.35, 0.50),
    "overweight": GainRange(7.0, 11.5, 0.23, 0.33),
    "obese": GainRange(5.0, 9.0, 0.17, 0.27),
}


def edd_from_lmp(lmp_on: date) -> date:
    """Expected date of delivery by Naegele's rule (LMP + 280 days)."""
    return lmp_on + timedelta(days=NAEGELE_DAYS)


def gestational_age_from_edd(edd_on: date, on: date) -> GestationalAge:
    """Gestational age on ``on`` from the expected date of delivery.

    :raises MeasurementError: ``out_of_range`` (field ``edd_on``) when the EDD puts the
        pregnancy before conception or beyond 45 weeks.
    """
    elapsed = NAEGELE_DAYS - (edd_on - on).days
    if not 0 <= elapsed <= MAX_GESTATION_WEEKS * 7:
        raise MeasurementError("edd_on", "out_of_range", "EDD gives an impossible pregnancy")
    return GestationalAge(weeks=elapsed // 7, days=elapsed % 7)


def bmi(weight_kg: float, height_cm: float) -> float:
    """Body mass index, 1 decimal.

    :raises MeasurementError: ``not_positive`` for a weight or height of zero or less.
    """
    if weight_kg <= 0:
        raise MeasurementError("weight_kg", "not_positive", "weight must be positive")
    if height_cm <= 0:
        raise MeasurementError("height_cm", "not_positive", "height must be positive")
    value = Decimal(repr(weight_kg)) / (Decimal(repr(height_cm)) / 100) ** 2
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def bmi_category(value: float) -> BmiCategory:
    """WHO adult BMI category (the basis of the IOM 2009 ranges)."""
    if value < 18.5:
        return "underweight"
    if value < 25:
        return "normal"
    return "overweight" if value < 30 else "obese"


def _kg(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def expected_gain(category: BmiCategory, weeks: float) -> tuple[float, float]:
    """The IOM 2009 range of total gain (kg) at ``weeks`` of gestation, rounded to 0.1 kg half
    up (computed in decimal, so 2.95 kg shows as 3.0)."""
    low0, high0 = (Decimal(repr(v)) for v in FIRST_TRIMESTER_GAIN_KG)
    w = Decimal(repr(max(weeks, 0)))
    end = Decimal(FIRST_TRIMESTER_END_WEEKS)
    if w <= end:
        return _kg(low0 * w / end), _kg(high0 * w / end)
    r = IOM_2009[category]
    extra = w - end
    return (
        _kg(low0 + extra * Decimal(repr(r.weekly_low))),
        _kg(high0 + extra * Decimal(repr(r.weekly_high))),
    )


@dataclass(frozen=True, slots=True)
class GainAssessment:
    """A woman's gain at one visit against her range. ``status`` is ``unknown`` without a
    pre-pregnancy weight (then the other values but ``weeks`` are ``None``)."""

    reference: GwgReference
    weeks: float
    prepregnancy_bmi: float | None
    category: BmiCategory | None
    gain_kg: float | None
    low_kg: float | None
    high_kg: float | None
    status: GainStatus


def assess_gain(
    weight_kg: float | None,
    prepregnancy_weight_kg: float | None,
    height_cm: float | None,
    gestation: GestationalAge,
    profile: Profile,
) -> GainAssessment:
    """Gestational weight gain at ``gestation`` under ``profile``'s reference (see module)."""
    weeks = round(gestation.total_days / 7, 1)
    if weight_kg is None or prepregnancy_weight_kg is None or height_cm is None:
        return GainAssessment(profile.gwg_reference, weeks, None, None, None, None, None, "unknown")
    pre_bmi = bmi(prepregnancy_weight_kg, height_cm)
    category = bmi_category(pre_bmi)
    low, high = expected_gain(category, weeks)
    gain = round(weight_kg - prepregnancy_weight_kg, 1)
    status: GainStatus = "below" if gain < low else "above" if gain > high else "within"
    return GainAssessment(profile.gwg_reference, weeks, pre_bmi, category, gain, low, high, status)


def gain_band(category: BmiCategory, last_week: int = 42) -> list[tuple[int, float, float]]:
    """The IOM 2009 range week by week, for a chart: ``(week, low_kg, high_kg)``."""
    return [(w, *expected_gain(category, w)) for w in range(0, last_week + 1)]
