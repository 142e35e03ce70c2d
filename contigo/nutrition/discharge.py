"""Discharge from treatment (CMAM): may this episode exit as cured, and the treatment card's
figures (weight gain, days in the programme, the target weight).

Pure functions over an :class:`~contigo.nutrition.episodes.Episode` and its visit log
(NUTRITION.md §4). "Cured" is accepted only when the profile's cure rule has held on the
recorded visits (:func:`~contigo.nutrition.episodes.cure_date`: the admitting indicator(s)
recovered with no oedema, sustained over 14 days, which is two visits at least) on or before
the exit date, *and* the minimum stay is met. Anything else typed as cured is a supervisor's
override with a reason, counted apart in outcome figures.

Definitions, each a programme decision written down so it can be checked:

- **Minimum stay** (:data:`MIN_STAY_DAYS`): days from admission before a cure may be recorded.
  The default equals the 14-day span the cure rule must hold for (WHO 2013 sets no longer
  stay); a profile code may set its own (**verify** against the national protocol).
- **Weight gain** (g/kg/day), the CMAM programme formula: ``(latest weight − minimum weight) ×
  1000 / (minimum weight × days between them)``. The minimum weight is the lowest weight
  recorded in the episode (the admission weight for a child without oedema; after oedema
  resolves, the lowest weight reached). ``None`` with fewer than two weights, or when the
  latest weight is the minimum (no interval to gain over).
- **Target weight**: the weight at which weight-for-length/height reaches −2 SD (the WHZ
  discharge threshold) for the child's latest adjusted length, by the WHO table the age calls
  for: ``M · (1 + L·S·(−2))^(1/L)``; a length between 0.1 cm rows interpolates L, M and S.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from types import MappingProxyType

from contigo.nutrition.episodes import (
    CURE_SPAN_DAYS,
    TREATMENT,
    Episode,
    Programme,
    Visit,
    cure_date,
    meets_cure,
)
from contigo.nutrition.profiles import Profile
from contigo.nutrition.tables import LENGTH_ROW_OFFSET, load_tables

CURE_CHECKED = frozenset({*TREATMENT, "sam_inpatient"})
"""Programmes whose exit as cured must meet the cure rule (anthropometric recovery)."""
MIN_STAY_DAYS: Mapping[str, int] = MappingProxyType({"sam_otp": CURE_SPAN_DAYS, "mam_tsfp": 14})
"""Default minimum stay per treatment programme (days from admission)."""
PROFILE_MIN_STAY_DAYS: Mapping[str, Mapping[str, int]] = MappingProxyType({})
"""Per profile code, its own minimum stays (**verify**: none encoded yet)."""
WHZ_TARGET = -2.0
LENGTH_TABLE_AGE_DAYS = 731
_RANGES = ((450, 1100), (650, 1200))  # tenths of cm: weight-for-length, weight-for-height

Reason = str
"""Why a cure is refused: ``no_visits``, ``criteria_not_met``, ``oedema``, ``not_sustained``,
``min_stay``, ``not_treatment``."""


def min_stay_days(programme: Programme, profile: Profile) -> int:
    """The minimum stay of a treatment programme under ``profile`` (0 outside treatment)."""
    own = PROFILE_MIN_STAY_DAYS.get(profile.code, {})
    return own.get(programme, MIN_STAY_DAYS.get(programme, 0))


@dataclass(frozen=True, slots=True)
class CureCheck:
    """Whether an exit as cured on ``exit_on`` follows the protocol.

    ``met`` is the verdict; ``reasons`` say why not (empty when met); ``cured_on`` is the first
    day the cure rule held (``None`` if it never did by ``exit_on``); ``earliest_on`` the first
    day the minimum stay allows a cure.
    """

    met: bool
    reasons: tuple[Reason, ...]
    cured_on: date | None
    earliest_on: date


def check_cure(
    episode: Episode, visits: Sequence[Visit], profile: Profile, exit_on: date
) -> CureCheck:
    """May ``episode`` exit as cured on ``exit_on``? (see module notes)

    Only visits from admission to ``exit_on`` count. A cure needs the rule to have held on the
    recorded visits by ``exit_on`` and ``exit_on`` to be on or after the minimum stay.
    """
    earliest = episode.admitted_on + timedelta(days=min_stay_days(episode.programme, profile))
    if episode.programme not in CURE_CHECKED:
        return CureCheck(False, ("not_treatment",), None, earliest)
    log = sorted((v for v in visits if episode.admitted_on <= v.on <= exit_on), key=lambda v: v.on)
    cured = cure_date(episode, log, profile)
    reasons: list[Reason] = []
    if not log:
        reasons.append("no_visits")
    elif cured is None:
        last = log[-1]
        if last.oedema_grade > 0:
            reasons.append("oedema")
        elif meets_cure(last, episode, profile):
            reasons.append("not_sustained")
        else:
            reasons.append("criteria_not_met")
    if exit_on < earliest:
        reasons.append("min_stay")
    return CureCheck(not reasons, tuple(reasons), cured, earliest)


@dataclass(frozen=True, slots=True)
class Weighing:
    """A weight on a day (kg)."""

    on: date
    weight_kg: float


@dataclass(frozen=True, slots=True)
class WeightGain:
    """Weight gain since the minimum weight: g/kg/day over ``days``."""

    g_kg_day: float
    minimum: Weighing
    latest: Weighing
    days: int


def weight_gain(weighings: Sequence[Weighing]) -> WeightGain | None:
    """Average weight gain from the minimum weight to the latest (see module notes)."""
    ordered = sorted((w for w in weighings if w.weight_kg > 0), key=lambda w: w.on)
    if len(ordered) < 2:
        return None
    lowest = min(ordered, key=lambda w: (w.weight_kg, w.on))
    latest = ordered[-1]
    days = (latest.on - lowest.on).days
    if days <= 0:
        return None
    gain = (latest.weight_kg - lowest.weight_kg) * 1000 / (lowest.weight_kg * days)
    return WeightGain(gain, lowest, latest, days)


def days_in_programme(episode: Episode, as_of: date) -> int:
    """Days from admission to ``as_of`` (the exit date of a closed episode)."""
    return max(0, (as_of - episode.admitted_on).days)


def target_weight_kg(sex: str, age_days: int | None, clenhei_cm: float | None) -> float | None:
    """The weight at WHZ −2 for an adjusted length (``sex`` ``'M'``/``'F'``), rounded to
    0.1 kg; ``None`` without a length or outside the table's range.

    The age picks the table (weight-for-length under 731 days, else weight-for-height); with the
    age unknown, lengths under 87 cm use weight-for-length (NUTRITION.md §1).
    """
    if clenhei_cm is None or clenhei_cm <= 0:
        return None
    if age_days is not None:
        table = 0 if age_days < LENGTH_TABLE_AGE_DAYS else 1
    else:
        table = 0 if clenhei_cm < 87 else 1
    tenths = round(clenhei_cm * 10, 6)
    first, last = _RANGES[table]
    if not first <= tenths <= last:
        return None
    row = int(tenths)
    frac = tenths - row
    rows = load_tables().by_length[table, 0 if sex == "M" else 1]
    low = rows[row - LENGTH_ROW_OFFSET]
    lms = low
    if frac > 0:
        lms = low + frac * (rows[row + 1 - LENGTH_ROW_OFFSET] - low)
    box_cox, median, spread = (float(x) for x in lms)
    weight = median * (1 + box_cox * spread * WHZ_TARGET) ** (1 / box_cox)
    return round(float(weight), 1)
