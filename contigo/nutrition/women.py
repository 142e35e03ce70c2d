"""Pregnant and lactating women: MUAC classification and gestational age (NUTRITION.md §5).

There is no international MUAC standard for women; the profile holds the cut-off (default
< 230 mm, optionally a severe cut-off such as < 185 mm).

Trimesters are counted in completed weeks of gestation: 1st below 14 weeks, 2nd from 14 to
below 28 weeks (14+0 to 27+6), 3rd from 28 weeks. Gestational age from the last menstrual
period (LMP) is the number of days since the LMP, as completed weeks and days (Naegele).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

from contigo.nutrition.errors import MeasurementError
from contigo.nutrition.labels import Lang, label
from contigo.nutrition.profiles import Profile

PlwStatus = Literal["severe", "acute", "none", "unknown"]
Trimester = Literal[1, 2, 3]
PLW_MUAC_MIN_MM = 100
PLW_MUAC_MAX_MM = 600
MAX_GESTATION_WEEKS = 45


@dataclass(frozen=True, slots=True)
class PlwClassification:
    """MUAC read of a pregnant or lactating woman under a profile's cut-offs.

    ``status``: ``severe`` (below the profile's severe cut-off, if it has one), ``acute``
    (below the acute cut-off), ``none``, or ``unknown`` without a MUAC.
    """

    profile_code: str
    muac_mm: float | None
    status: PlwStatus
    cutoff_mm: int
    severe_cutoff_mm: int | None

    @property
    def malnourished(self) -> bool:
        """Whether the MUAC is below the acute cut-off (severe included)."""
        return self.status in ("severe", "acute")

    @property
    def status_key(self) -> str:
        """Catalogue key of the status (``plw.acute`` …)."""
        return f"plw.{self.status}"

    def label(self, lang: Lang) -> str:
        """The status in ``lang``."""
        return label(self.status_key, lang)


def classify_plw(muac_mm: float | None, profile: Profile) -> PlwClassification:
    """Classify a woman's MUAC with ``profile.plw_muac`` (NUTRITION.md §5).

    Acute malnutrition is strictly below the cut-off: with the default 230 mm, 229 mm is acute
    and 230 mm is not.

    :raises MeasurementError: ``unit`` for a MUAC outside 100–600 mm (centimetres typed in a
        millimetre field).
    """
    cut = profile.plw_muac
    if muac_mm is not None and not PLW_MUAC_MIN_MM <= muac_mm <= PLW_MUAC_MAX_MM:
        raise MeasurementError("muac_mm", "unit", f"{muac_mm} mm is outside 100–600 mm")
    status: PlwStatus
    if muac_mm is None:
        status = "unknown"
    elif cut.severe_below_mm is not None and muac_mm < cut.severe_below_mm:
        status = "severe"
    elif muac_mm < cut.acute_below_mm:
        status = "acute"
    else:
        status = "none"
    return PlwClassification(profile.code, muac_mm, status, cut.acute_below_mm, cut.severe_below_mm)


@dataclass(frozen=True, slots=True)
class GestationalAge:
    """Gestational age as completed weeks and extra days (``weeks + days/7``)."""

    weeks: int
    days: int

    @property
    def total_days(self) -> int:
        """The gestational age in days."""
        return self.weeks * 7 + self.days

    @property
    def trimester(self) -> Trimester:
        """The trimester of this gestational age (see :func:`trimester`)."""
        return trimester(self.weeks)


def trimester(weeks: float) -> Trimester:
    """Trimester from gestational age in weeks: 1st < 14, 2nd 14 to < 28, 3rd ≥ 28.

    Fractional weeks count by completed weeks, so 13.9 is 1st and 27.9 is 2nd.

    :raises MeasurementError: for a negative or non-finite age, or one over 45 weeks.
    """
    if not math.isfinite(weeks):
        raise MeasurementError("gestational_weeks", "not_finite", "not a number")
    if weeks < 0:
        raise MeasurementError("gestational_weeks", "negative", "cannot be negative")
    if weeks > MAX_GESTATION_WEEKS:
        raise MeasurementError("gestational_weeks", "out_of_range", "over 45 weeks")
    if weeks < 14:
        return 1
    return 2 if weeks < 28 else 3


def gestational_age_from_lmp(lmp_on: date, on: date) -> GestationalAge:
    """Gestational age on ``on`` from the first day of the last menstrual period.

    :raises MeasurementError: ``future`` when the LMP is after ``on``; ``out_of_range`` when
        more than 45 weeks have passed (the woman cannot still be pregnant).
    """
    elapsed = (on - lmp_on).days
    if elapsed < 0:
        raise MeasurementError("lmp_on", "future", "the LMP is after the visit date")
    if elapsed > MAX_GESTATION_WEEKS * 7:
        raise MeasurementError("lmp_on", "out_of_range", "more than 45 weeks ago")
    return GestationalAge(weeks=elapsed // 7, days=elapsed % 7)
