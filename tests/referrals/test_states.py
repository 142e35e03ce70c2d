"""A referral's state derived from its events: exhaustive over small event sets, every order.

Convergence needs only that the state is a function of the *set* of events; the rules need
that arrival (a fact) beats not-arrived, declined and cancelled typed elsewhere, that progress
never goes back, and that contradictions are marked, never hidden.
"""

from __future__ import annotations

import itertools

from contigo.referrals.models import EVENT_STATES
from contigo.referrals.states import PROGRESS, STOPPED, EventFact, current


def _facts(states: tuple[str, ...]) -> list[EventFact]:
    return [EventFact(st, f"{i:013d}-00000-n{i}", f"e{i}") for i, st in enumerate(states)]


def test_no_events_is_sent() -> None:
    assert current([]).state == "sent"
    assert not current([]).arrived


def test_the_state_depends_only_on_the_set_of_events_in_every_order() -> None:
    for size in range(1, 4):
        for states in itertools.product(EVENT_STATES, repeat=size):
            facts = _facts(states)
            results = {current(list(order)) for order in itertools.permutations(facts)}
            assert len(results) == 1, states
            # a replica that received an event twice (a replayed page) agrees too
            assert current(facts + facts[:1]) in results


def test_arrival_beats_every_stopped_event_and_marks_the_contradiction() -> None:
    for progress in PROGRESS:
        for stopped in STOPPED:
            derived = current(_facts((stopped, progress)))
            assert derived.state == progress and derived.arrived and derived.contested


def test_progress_never_goes_back() -> None:
    assert current(_facts(("attended", "received"))).state == "attended"
    assert current(_facts(("closed", "received", "attended"))).state == "closed"


def test_among_stopped_events_the_latest_clock_wins() -> None:
    derived = current(_facts(("cancelled", "not_arrived")))
    assert (derived.state, derived.arrived, derived.contested) == ("not_arrived", False, True)
    assert current(_facts(("declined",))).state == "declined"
