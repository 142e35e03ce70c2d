"""The reporting table follows the record in the transaction of each change."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import CareEpisode
from contigo.persons.models import Person
from contigo.reports.feed import Feeder, Pseudonymiser, age_band, person_key
from contigo.reports.models import ReportFact
from contigo.vault import get_vault
from tests.factories import VISIT
from tests.reports.conftest import DEMO_PASSWORD


def _unlock(app: Flask) -> None:
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "necocli.sup", DEMO_PASSWORD, max_failed=5,
                          lockout_s=60)  # fmt: skip


def _facts_of(app: Flask, person_id: str) -> int:
    pseudonym = Pseudonymiser.of(get_vault(app))(person_id)
    with session_scope(app) as s:
        return s.scalar(select(func.count()).where(ReportFact.pseudonym == pseudonym)) or 0


def test_age_bands() -> None:
    assert [age_band("child", d) for d in (0, 182, 183, 730, 731, 1826, 1827)] == [
        "0_5", "0_5", "6_23", "6_23", "24_59", "24_59", "other"]  # fmt: skip
    assert age_band("woman", 9000) == "plw"


def test_a_void_removes_its_facts_and_a_rollback_leaves_none(demo_app: Flask) -> None:
    _unlock(demo_app)
    vault = get_vault(demo_app)
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        voided = select(EncounterVoid.encounter_id)
        encounter = s.scalars(
            select(Encounter).where(Encounter.site_id == sup.home_site_id,
                                    Encounter.kind == "child", Encounter.id.not_in(voided))
        ).first()  # fmt: skip
        assert encounter is not None
        person_id, encounter_id = encounter.person_id, encounter.id
    before = _facts_of(demo_app, person_id)
    assert before > 0
    try:
        with session_scope(demo_app) as s:
            sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
            encounters.void(s, vault, sup, encounter_id, "typed on the wrong child")
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    assert _facts_of(demo_app, person_id) == before
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        encounters.void(s, vault, sup, encounter_id, "typed on the wrong child")
    assert _facts_of(demo_app, person_id) < before


def test_pseudonyms_are_keyed(demo_app: Flask) -> None:
    _unlock(demo_app)
    one = Pseudonymiser.of(get_vault(demo_app))
    other = Pseudonymiser(b"k" * 32)
    assert one("abc") == one("abc") != other("abc")
    assert one.fact_id("episode", "abc") != one("abc")


def _person_facts(app: Flask, person_id: str) -> set[tuple[Any, ...]]:
    pseudonym = Pseudonymiser.of(get_vault(app))(person_id)
    with session_scope(app) as s:
        rows = s.scalars(select(ReportFact).where(ReportFact.pseudonym == pseudonym))
        return {tuple(getattr(f, c.key) for c in ReportFact.__table__.columns) for f in rows}


def test_a_visit_in_a_rolled_back_savepoint_is_not_counted(demo_app: Flask) -> None:
    """The feed counts the visits noted as they were inserted, without reading them back: a
    visit inserted in a savepoint that rolled back (a push op refused after its insert) must
    leave no fact, and one in a savepoint released must; the person's facts are then those a
    rebuild makes."""
    _unlock(demo_app)
    vault = get_vault(demo_app)
    pseudo = Pseudonymiser.of(vault)
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        treated = select(CareEpisode.person_id)
        seen_here = select(Encounter.person_id).where(Encounter.site_id == sup.home_site_id)
        person_id = s.scalars(
            select(Person.id).where(Person.kind == "child", Person.lifecycle == "active",
                                    Person.id.in_(seen_here), Person.id.not_in(treated))
        ).first()  # fmt: skip
        assert person_id is not None
    before = _person_facts(demo_app, person_id)
    with demo_app.test_request_context(), session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        visit = {**VISIT, "occurred_on": date.today() - timedelta(days=3)}
        savepoint = s.begin_nested()
        dropped = encounters.record(s, vault, sup, person_id, sup.home_site_id, visit).id
        s.flush()
        savepoint.rollback()
        with s.begin_nested():
            visit = {**VISIT, "occurred_on": date.today() - timedelta(days=2)}
            kept = encounters.record(s, vault, sup, person_id, sup.home_site_id, visit).id
    after = _person_facts(demo_app, person_id)
    ids = {row[0] for row in after}
    assert pseudo.fact_id("screen", kept) in ids
    assert pseudo.fact_id("screen", dropped) not in ids
    assert len(after) == len(before) + 1
    with session_scope(demo_app) as s:
        Feeder(vault).rebuild(s, [person_id])
    assert _person_facts(demo_app, person_id) == after


def test_a_persons_identity_key_is_the_sessions() -> None:
    """The feed looks persons up in the session's identity map with a key it builds itself."""
    assert person_key("abc") == Session.identity_key(Person, "abc")
