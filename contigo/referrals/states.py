"""A referral's current state, derived from the set of its events (a pure function).

The events are a grow-only set (append-only rows, synced as events), so every side that holds
the same events derives the same state whatever order they arrived in. The rule reads them as
facts, not as commands:

* progress is monotone: ``closed`` beats ``attended`` beats ``received`` beats ``sent``, so a
  referral marked attended on one laptop and received on another is attended everywhere;
* that the person arrived is a fact that a ``not_arrived``, ``declined`` or ``cancelled`` typed
  elsewhere cannot undo; such an event is kept in the trail and the state is marked
  ``contested`` so that the pages show both;
* among only those three, the latest by the events' clocks (HLC, then id) wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROGRESS = ("received", "attended", "closed")
STOPPED = ("not_arrived", "declined", "cancelled")
OPEN_STATES = ("sent", "received", "attended")
"""States after which something is still expected (arrival, attendance, feedback)."""
NEXT: dict[str, tuple[str, ...]] = {
    "sent": ("received", "attended", "not_arrived", "declined", "cancelled", "closed"),
    "received": ("attended", "closed", "declined"),
    "attended": ("closed",),
    "not_arrived": ("received", "attended", "closed"),
    "declined": (),
    "cancelled": (),
    "closed": (),
}
"""What a user may record next from each state (the pages offer these; sync accepts any)."""


@dataclass(frozen=True, slots=True)
class EventFact:
    """The part of an event the state depends on."""

    state: str
    recorded_hlc: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Derived:
    """A referral's state, whether the person arrived, and whether events disagree."""

    state: str
    arrived: bool
    contested: bool


def current(events: Iterable[EventFact]) -> Derived:
    """The state the events give (see the module docstring); ``sent`` when there are none.

    Keeps: depends only on the set of events (commutative, idempotent), so replicas that hold
    the same events agree."""
    facts = list(events)
    states = {e.state for e in facts}
    for state in reversed(PROGRESS):
        if state in states:
            return Derived(state, True, bool(states & set(STOPPED)))
    stopped = [e for e in facts if e.state in STOPPED]
    if stopped:
        last = max(stopped, key=lambda e: (e.recorded_hlc, e.event_id))
        return Derived(last.state, False, len({e.state for e in stopped}) > 1)
    return Derived("sent", False, False)
