"""Checks of a child's measurement against the child's own previous one (NUTRITION.md §2:
implausible values ask for a re-measure at the point of care).

One pure rule, used by the visit form on a laptop (before saving, with a confirmation) and by
the central server's review finder across sites (an ``implausible_sequence`` item). It compares
two readings of one child, in date order:

- **length_shrank**: the adjusted length (after the lying/standing 0.7 cm correction, so a
  position switch at 24 months is not a loss) fell by more than :data:`LENGTH_TOLERANCE_CM`.
  1.5 cm is about the 95 % limit of the difference between two trained measurers (WHO MGRS
  technical error of measurement ≈ 0.5 cm for length: 2.77 × TEM ≈ 1.4 cm); a child does not
  get shorter.
- **weight_jump** / **weight_drop**: the weight changed by more than the interval allows. A
  change within :data:`SAME_DAY_SHARE` of the lower weight is measurement noise (clothes, a full
  stomach, a scale: the central same-day rule since the first release); beyond it a gain may
  add :data:`GAIN_PER_DAY` of the earlier weight per day (20 g/kg/day, the top of catch-up gain
  in therapeutic feeding) and a loss :data:`LOSS_PER_DAY` (10 g/kg/day, severe illness). A loss
  after a visit with oedema, or a gain up to a visit with oedema, is not checked: oedema fluid
  comes and goes by kilograms.
- **same_day**: a second visit on the same day (laptop only: a correction supersedes instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

LENGTH_TOLERANCE_CM = 1.5
SAME_DAY_SHARE = 0.10
GAIN_PER_DAY = 0.020
LOSS_PER_DAY = 0.010

CHECKS = ("length_shrank", "weight_jump", "weight_drop")


@dataclass(frozen=True, slots=True)
class Reading:
    """One visit's measurements as the rule needs them; ``None`` means not measured."""

    on: date
    weight_kg: float | None = None
    length_cm: float | None = None
    oedema: bool = False


def _weight(before: Reading, after: Reading) -> str | None:
    if before.weight_kg is None or after.weight_kg is None:
        return None
    if before.weight_kg <= 0 or after.weight_kg <= 0:
        return None
    days = abs((after.on - before.on).days)
    change = after.weight_kg - before.weight_kg
    base = before.weight_kg
    noise = SAME_DAY_SHARE * min(before.weight_kg, after.weight_kg)
    if change > 0 and not after.oedema and change > noise + GAIN_PER_DAY * days * base:
        return "weight_jump"
    if change < 0 and not before.oedema and -change > noise + LOSS_PER_DAY * days * base:
        return "weight_drop"
    return None


def implausible_changes(first: Reading, second: Reading) -> tuple[str, ...]:
    """The codes of :data:`CHECKS` that the change between two readings of one child raises
    (in either order: the earlier one is the baseline)."""
    before, after = (first, second) if first.on <= second.on else (second, first)
    found: list[str] = []
    if (
        before.length_cm is not None
        and after.length_cm is not None
        and before.length_cm - after.length_cm > LENGTH_TOLERANCE_CM
    ):
        found.append("length_shrank")
    weight = _weight(before, after)
    if weight is not None:
        found.append(weight)
    return tuple(found)


def point_of_care_warnings(previous: Reading | None, current: Reading) -> tuple[str, ...]:
    """What the visit form asks to re-measure before saving, against the latest earlier visit
    (``previous``, which may be on the same day): the changes above, plus ``same_day``."""
    if previous is None:
        return ()
    found = list(implausible_changes(previous, current))
    if previous.on == current.on:
        found.append("same_day")
    return tuple(found)
