"""A referral's current state is stored beside it (kept by every event written, backfilled by
its migration) so that the caseload's "referred and not arrived" and the corridors count and
page in SQL: true totals over more rows than a page, each row once, in the promised order, the
same figures as derived from the events themselves."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import date, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo import migrate
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.referrals import reporting
from contigo.referrals import services as referrals
from contigo.referrals.directory import apply_facility
from contigo.referrals.models import URGENCIES, Facility, Referral
from contigo.referrals.reading import derive, events_of
from contigo.referrals.states import PROGRESS
from contigo.vault import get_vault
from tests.factories import CHILD

N = 60
#: What happens to referral i (by i % 6): the events recorded, in order, and the day offset.
STORIES: list[tuple[str, ...]] = [
    (),  # sent
    ("received",),
    ("received", "attended"),
    ("cancelled",),
    ("not_arrived",),
    ("not_arrived", "received"),  # arrived after all: no longer "not arrived"
]


def _referrals(app: Flask) -> dict[str, tuple[str, int]]:
    """``N`` referrals of three children to an outside facility, urgencies in turn, each with
    the events of its story (arrivals dated 0 to 4 days after sending). Returns id → (urgency,
    story index)."""
    out: dict[str, tuple[str, int]] = {}
    today = date.today()
    with app.test_request_context(), session_scope(app) as s:
        apply_facility(
            s, 1, "f1",
            {"country": "CO", "kind": "hospital", "inpatient": True, "code": "CO-H",
             "name": "Hospital", "serves": ["CO-NEC"]},
        )  # fmt: skip
        facility = s.scalars(select(Facility.id)).one()
        actor = s.scalars(select(User).where(User.username == "sup")).one()
        v = get_vault(app)
        children = [
            persons.register(s, v, actor, actor.home_site_id, dict(CHILD)).id for _ in range(3)
        ]
        for i in range(N):
            urgency = URGENCIES[i % len(URGENCIES)]
            form = {"to": f"facility:{facility}", "reason": "sam", "urgency": urgency}
            row = referrals.create(s, v, actor, children[i % 3], actor.home_site_id, form)
            for state in STORIES[i % len(STORIES)]:
                on = today + timedelta(days=i % 5) if state in PROGRESS else today
                referrals.record_event(
                    s, v, actor, row.id, state, site_id=actor.home_site_id, occurred_on=on
                )
            out[row.id] = (urgency, i % len(STORIES))
    return out


def _derived(app: Flask) -> dict[str, tuple[str, date | None]]:
    """Each referral's state and first arrival as its events give them (no stored column)."""
    with session_scope(app) as s:
        ids = list(s.scalars(select(Referral.id)))
        out = {}
        for rid, events in events_of(s, ids).items():
            arrivals = [e.occurred_on for e in events if e.state in PROGRESS]
            out[rid] = (derive(events).state, min(arrivals) if arrivals else None)
        return out


def _stored(app: Flask) -> dict[str, tuple[str, date | None]]:
    with session_scope(app) as s:
        rows = s.execute(select(Referral.id, Referral.state, Referral.arrived_on))
        return {rid: (state, arrived) for rid, state, arrived in rows}


def test_the_stored_state_is_the_derived_one_after_every_event(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    login()
    made = _referrals(app)
    derived = _derived(app)
    assert _stored(app) == derived
    states = {made[rid][1]: state for rid, (state, _on) in derived.items()}
    assert states == {
        0: "sent", 1: "received", 2: "attended", 3: "cancelled", 4: "not_arrived", 5: "received"
    }  # fmt: skip


def test_not_arrived_counts_and_pages_in_sql_beyond_one_page(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    login()
    made = _referrals(app)
    waiting = {rid for rid, (_u, story) in made.items() if story in (0, 4)}
    assert len(waiting) == 20
    with session_scope(app) as s:
        pages = [reporting.referred_not_arrived(s, None, 0, limit=8, offset=k) for k in (0, 8, 16)]
        assert [p.total for p in pages] == [20, 20, 20]
        assert [len(p.rows) for p in pages] == [8, 8, 4]
        rows = [r for p in pages for r in p.rows]
        assert {r.referral_id for r in rows} == waiting and len(rows) == 20
        rank = {u: i for i, u in enumerate(URGENCIES)}
        keys = [(rank[r.urgency], r.sent_on, r.referral_id) for r in rows]
        assert keys == sorted(keys)  # most urgent, then longest waiting, across the pages
        assert {r.state for r in rows} == {"sent", "not_arrived"}
        beyond = reporting.referred_not_arrived(s, None, 0, limit=8, offset=24)
        assert beyond.total == 20 and beyond.rows == []
        routine = reporting.referred_not_arrived(s, None, 0, urgency="routine", limit=100)
        assert (
            routine.total
            == len(routine.rows)
            == sum(1 for rid in waiting if made[rid][0] == "routine")
        )
        assert reporting.referred_not_arrived(s, None, 1, limit=100).total == 0  # sent today
        later = date.today() + timedelta(days=2)
        assert reporting.referred_not_arrived(s, None, 1, today=later, limit=100).total == 20


def test_corridors_count_in_sql_as_the_events_say(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    login()
    _referrals(app)
    derived = _derived(app)
    with session_scope(app) as s:
        sent_on = {rid: on for rid, on in s.execute(select(Referral.id, Referral.sent_on))}
        rows = reporting.corridors(s)
    assert len(rows) == 1
    row = rows[0]
    days = [(on - sent_on[rid]).days for rid, (st, on) in derived.items() if on is not None]
    assert (row.from_country, row.to_country, row.sent) == ("CO", "CO", N)
    assert row.received == sum(1 for st, _on in derived.values() if st in PROGRESS)
    assert row.attended == sum(1 for st, _on in derived.values() if st in ("attended", "closed"))
    assert row.median_days_to_arrival == float(statistics.median(days))
    assert row.month == date.today().strftime("%Y-%m")


def test_median_of_a_histogram() -> None:
    for values in ([3], [1, 2], [0, 0, 5, 9], [4, 1, 1, 7, 2], [2, 2, 2, 8, 9, 9]):
        counts: dict[int, int] = {}
        for x in values:
            counts[x] = counts.get(x, 0) + 1
        assert reporting._median(sorted(counts.items())) == float(statistics.median(values))
    assert reporting._median([]) is None


def test_the_migration_backfills_the_state_from_the_events(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    login()
    _referrals(app)
    derived = _derived(app)
    engine = app.extensions["contigo.engine"]
    migrate.downgrade(engine, "f1e1d0a7c001")  # the columns are gone with their values
    migrate.upgrade(engine)
    assert _stored(app) == derived
