"""Safety signals that close their loop: when an alert stops asking for action, and when a
missed visit becomes a child to trace (NUTRITION.md §4 defaulter rule, applied to the work list).

- An **alert** (SAM, MAM, at risk under 6 months, PLW malnutrition, a measurement to retake,
  moderate or severe anaemia) is raised by a visit. The home page looks at the latest visit of
  each person only, so a later visit without the alert clears it. Admission to treatment
  closes the acute-malnutrition alerts (:data:`TREATED_BY_ADMISSION`): the child is in care and
  the programme's schedule follows them (a child in SAM treatment whose latest visit reads MAM
  is improving, not newly found). An alert to re-measure or of anaemia stays: admission does
  not answer it. Any alert closes when a user records an outcome for it (:data:`OUTCOMES`) with
  a reason.
- A **missed visit** stays on the overdue list until the defaulter threshold of its programme:
  ``defaulter_missed_visits × interval + grace`` days past its date (the day the Nth scheduled
  visit is missed, as :func:`~contigo.nutrition.episodes.default_date` counts it). Past that,
  it moves to the *to trace* list, where it stays until a user records an outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal, cast, get_args

from contigo.nutrition.episodes import Programme, interval_days
from contigo.nutrition.profiles import Profile

OUTCOMES = ("traced", "moved_on", "refused", "died", "lost")
"""What a user found when following up an alert or a missed visit."""
SubjectKind = Literal["alert", "trace"]
TREATED_BY_ADMISSION = frozenset(
    {"acute.sam", "acute.sam_complicated", "acute.mam", "u6_at_risk", "plw.acute", "plw.severe"}
)
"""Alert codes that admission to a programme answers."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A user's recorded outcome for an alert or a missed visit of one person: it closes the
    items of its ``kind`` dated on or before ``subject_on`` (the alert's visit date, or the
    missed visit's due date)."""

    kind: str
    subject_on: date
    outcome: str


def acknowledged(kind: SubjectKind, on: date, acks: Iterable[Acknowledgement]) -> bool:
    """Whether an item of ``kind`` dated ``on`` has been closed by an acknowledgement."""
    return any(a.kind == kind and a.subject_on >= on for a in acks)


def open_alerts(
    codes: Iterable[str], *, raised_on: date, in_programme: bool, acks: Iterable[Acknowledgement]
) -> tuple[str, ...]:
    """The alert codes of the latest visit still asking for action (see module notes)."""
    if acknowledged("alert", raised_on, acks):
        return ()
    return tuple(c for c in codes if not (in_programme and c in TREATED_BY_ADMISSION))


def trace_after_days(programme: str | None, profile: Profile) -> int:
    """Days past its date after which a missed visit is to be traced.

    A programme visit uses the programme's interval; a follow-up booked outside any programme
    (or inpatient care) the supplementary-feeding interval.
    """
    known = programme in get_args(Programme)
    step = interval_days(cast(Programme, programme), profile) if known else None
    if step is None:
        step = profile.follow_up.mam_days
    return profile.defaulter_missed_visits * step + profile.follow_up.grace_days


def to_trace(days_overdue: int, programme: str | None, profile: Profile) -> bool:
    """Whether a visit missed by ``days_overdue`` days has passed the defaulter threshold."""
    return days_overdue > trace_after_days(programme, profile)
