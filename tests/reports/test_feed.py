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
from contigo.persons.services import decrypt
from contigo.reports.feed import Feeder, Pseudonymiser, age_band, person_key, surrogate
from contigo.reports.models import ReportFact, ReportReach
from contigo.vault import get_vault
from tests.factories import VISIT
from tests.reports.conftest import DEMO_PASSWORD


def _unlock(app: Flask) -> None:
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "necocli.sup", DEMO_PASSWORD, max_failed=5,
                          lockout_s=60)  # fmt: skip


def _seen(app: Flask, person_id: str) -> set[tuple[Any, ...]]:
    """What the reporting tables count of a person: each month a kind of fact reached them in
    (with its columns, from :class:`ReportReach`), and their episode facts."""
    pseudonym = Pseudonymiser.of(get_vault(app))(person_id)
    with session_scope(app) as s:
        reach = s.scalars(select(ReportReach).where(ReportReach.person == surrogate(pseudonym)))
        months = {
            (r.kind, r.site_id, r.country, r.sex, r.age_band, r.population_type, r.nationality,
             r.year, m, r.subject)
            for r in reach
            for m in range(1, 13)
            if r.months >> (m - 1) & 1
        }  # fmt: skip
        episodes = s.scalars(select(ReportFact).where(ReportFact.pseudonym == pseudonym))
        return months | {
            tuple(getattr(f, c.key) for c in ReportFact.__table__.columns) for f in episodes
        }


def _month_alone(s: Session, encounter: Encounter) -> bool:
    """Whether ``encounter`` is its person's only visit (not voided) in its month."""
    first = encounter.occurred_on.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    voided = select(EncounterVoid.encounter_id)
    same = s.scalar(
        select(func.count()).where(
            Encounter.person_id == encounter.person_id, Encounter.id.not_in(voided),
            Encounter.occurred_on >= first, Encounter.occurred_on < following,
        )
    )  # fmt: skip
    return same == 1


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
        encounter = next(
            e
            for e in s.scalars(
                select(Encounter).where(Encounter.site_id == sup.home_site_id,
                                        Encounter.kind == "child", Encounter.id.not_in(voided))
            )
            if _month_alone(s, e)
        )  # fmt: skip
        person_id, encounter_id = encounter.person_id, encounter.id
        month = (encounter.occurred_on.year, encounter.occurred_on.month)
    before = _seen(demo_app, person_id)
    assert any(f[0] == "screen" and f[7:9] == month for f in before)
    try:
        with session_scope(demo_app) as s:
            sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
            encounters.void(s, vault, sup, encounter_id, "typed on the wrong child")
            raise RuntimeError("abandon")
    except RuntimeError:
        pass
    assert _seen(demo_app, person_id) == before
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        encounters.void(s, vault, sup, encounter_id, "typed on the wrong child")
    after = _seen(demo_app, person_id)
    assert after < before
    assert not any(f[0] == "screen" and f[7:9] == month for f in after)


def test_pseudonyms_are_keyed(demo_app: Flask) -> None:
    _unlock(demo_app)
    one = Pseudonymiser.of(get_vault(demo_app))
    other = Pseudonymiser(b"k" * 32)
    assert one("abc") == one("abc") != other("abc")
    assert one.fact_id("episode", "abc") != one("abc")


def _unvisited_months(s: Session, vault: Any, person_id: str) -> list[date]:
    """The 15th of each of the last 24 months in which ``person_id`` (born by then) has no
    visit, latest first."""
    person = s.get(Person, person_id)
    assert person is not None
    born = decrypt(vault, person).birth_date
    visited = {
        (on.year, on.month)
        for on in s.scalars(select(Encounter.occurred_on).where(Encounter.person_id == person_id))
    }
    out, day = [], date.today().replace(day=15)
    for _ in range(24):
        if day <= date.today() and day > born and (day.year, day.month) not in visited:
            out.append(day)
        day = (day.replace(day=1) - timedelta(days=1)).replace(day=15)
    return out


def test_a_visit_in_a_rolled_back_savepoint_is_not_counted(demo_app: Flask) -> None:
    """The feed counts the visits noted as they were inserted, without reading them back: a
    visit inserted in a savepoint that rolled back (a push op refused after its insert) must
    leave no fact, and one in a savepoint released must; the person's facts are then those a
    rebuild makes. Each visit falls in a month the child had no visit in, so that its month
    is counted only if the visit is."""
    _unlock(demo_app)
    vault = get_vault(demo_app)
    with session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        treated = select(CareEpisode.person_id)
        seen_here = select(Encounter.person_id).where(Encounter.site_id == sup.home_site_id)
        candidates = s.scalars(
            select(Person.id).where(Person.kind == "child", Person.lifecycle == "active",
                                    Person.id.in_(seen_here), Person.id.not_in(treated))
        ).all()  # fmt: skip
        person_id, (kept_on, dropped_on) = next(
            (pid, months[:2])
            for pid in candidates
            if len(months := _unvisited_months(s, vault, pid)) >= 2
        )
    before = _seen(demo_app, person_id)
    with demo_app.test_request_context(), session_scope(demo_app) as s:
        sup = s.scalars(select(User).where(User.username == "necocli.sup")).one()
        savepoint = s.begin_nested()
        encounters.record(s, vault, sup, person_id, sup.home_site_id,
                          {**VISIT, "occurred_on": dropped_on})  # fmt: skip
        s.flush()
        savepoint.rollback()
        with s.begin_nested():
            encounters.record(s, vault, sup, person_id, sup.home_site_id,
                              {**VISIT, "occurred_on": kept_on})  # fmt: skip
    after = _seen(demo_app, person_id)
    added = after - before
    assert added and {f[0] for f in added} >= {"screen"}
    assert {f[7:9] for f in added} == {(kept_on.year, kept_on.month)}
    assert before <= after
    with session_scope(demo_app) as s:
        Feeder(vault).rebuild(s, [person_id])
    assert _seen(demo_app, person_id) == after


def test_a_persons_identity_key_is_the_sessions() -> None:
    """The feed looks persons up in the session's identity map with a key it builds itself."""
    assert person_key("abc") == Session.identity_key(Person, "abc")
