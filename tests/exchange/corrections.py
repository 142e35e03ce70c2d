"""Two concurrent corrections of one visit, as a scenario any harness can drive.

The scenario takes the apps of two laptops holding the same child with one visit, the central
app, and a ``sync(app)`` callable, so the in-process harness and the live one (gunicorn over
PostgreSQL) run the same steps and the same assertions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.review import services as review
from contigo.vault import get_vault
from sync.models import ReviewItem
from tests.factories import VISIT


def _sup(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


def correct(app: Flask, person_id: str, encounter_id: str, weight: float) -> str:
    """A correction of ``encounter_id`` typed on ``app`` with a new weight."""
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        data = {
            **VISIT,
            "occurred_on": date.today() - timedelta(days=1),
            "weight_kg": weight,
            "supersedes_id": encounter_id,
        }
        return encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data).id


def void(app: Flask, encounter_id: str) -> None:
    with app.test_request_context(), session_scope(app) as s:
        encounters.void(s, get_vault(app), _sup(s), encounter_id, "typed on the wrong child")


def standing(app: Flask, person_id: str) -> list[tuple[str, bool, bool]]:
    """``(encounter id, active, in review)`` of each visit of the person, as the history says."""
    with app.test_request_context(), session_scope(app) as s:
        if app.config["CONTIGO_MODE"] == "central":
            history = _central_history(app, s, person_id)
        else:
            history = encounters.history(s, get_vault(app), _sup(s), person_id)
        return sorted((e.id, e.active, e.in_review) for e in history)


def _central_history(app: Flask, s: Any, person_id: str) -> list[encounters.EncounterView]:
    """The history as a nutrition lead of the person's country reads it on central."""
    from contigo.auth.services import add_user
    from contigo.persons.models import Person
    from contigo.sites.models import Site

    person = s.get(Person, person_id)
    site = s.get(Site, person.owning_site_id)
    name = "lead-" + site.code.lower()
    lead = s.scalar(select(User).where(User.username == name))
    if lead is None:
        lead = add_user(
            s,
            get_vault(app),
            username=name,
            display_name="Lead",
            password="a lead's password",
            role="nutrition_lead",
            site_id=site.id,
            country=site.country,
        )
    return encounters.history(s, get_vault(app), lead, person_id)


def open_items(app: Flask, person_id: str) -> list[ReviewItem]:
    with session_scope(app) as s:
        found = list(
            s.scalars(
                select(ReviewItem).where(
                    ReviewItem.person_id == person_id, ReviewItem.entity_type == "encounter"
                )
            )
        )
        s.expunge_all()
        return found


def weight_of(app: Flask, person_id: str, encounter_id: str) -> float:
    with app.test_request_context(), session_scope(app) as s:
        found = encounters.history(s, get_vault(app), _sup(s), person_id)
        return float(next(e for e in found if e.id == encounter_id).data["weight_kg"])


def run_two_corrections(
    a: Flask,
    b: Flask,
    central: Flask,
    sync: Callable[[Flask], None],
    person_id: str,
    visit_id: str,
) -> None:
    """A corrects the visit to 9.4 kg and B to 8.6 kg, offline; both sync. Every side then holds
    one clinical review item with both values and shows exactly one current value, marked in
    review; B's supervisor keeps 8.6 kg; after the next syncs every side agrees and nothing is in
    review."""
    on_a = correct(a, person_id, visit_id, 9.4)
    on_b = correct(b, person_id, visit_id, 8.6)
    sync(a)
    sync(b)
    sync(a)

    sides = (a, b, central)
    for app in sides:
        (item,) = open_items(app, person_id)
        assert (item.kind, item.severity, item.status) == ("concurrent_edit", "clinical", "open")
        assert item.entity_id == visit_id
    states = [standing(app, person_id) for app in sides]
    assert states[0] == states[1] == states[2]
    current = [eid for eid, active, _ in states[0] if active]
    assert len(current) == 1 and current[0] in (on_a, on_b)
    in_review = {eid for eid, _, flagged in states[0] if flagged}
    assert in_review == {on_a, on_b}

    # Both values, who and where, reach the supervisor on B.
    with b.test_request_context(), session_scope(b) as s:
        reader = review.reader_for(get_vault(b), None)
        view = review.get(s, _sup(s), item.id, reader)
        weights = sorted(c.value["weight_kg"] for c in view.candidates)
        assert weights == [8.6, 9.4]
        assert all(c.site_code and c.device_id for c in view.candidates)
        assert view.chooses and not view.can_dismiss
        keep = next(c.op_id for c in view.candidates if c.value["weight_kg"] == 8.6)
        review.resolve(
            s, get_vault(b), _sup(s), item.id, reader, action="resolve", chosen_op_id=keep
        )
    sync(b)
    sync(a)

    final = [standing(app, person_id) for app in sides]
    assert final[0] == final[1] == final[2]
    assert [eid for eid, active, _ in final[0] if active] == [on_b]
    assert not any(flagged for _, _, flagged in final[0])
    assert weight_of(a, person_id, on_b) == 8.6
    for app in sides:
        (closed,) = open_items(app, person_id)
        assert closed.status == "resolved"
