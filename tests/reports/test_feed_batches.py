"""A push batch whose optimistic pass fails feeds the table as a rebuild would.

The feed counts a push's visits as they were noted at their insert, without reading them back
(:meth:`contigo.reports.feed.Feeder.add_visits`); a batch's optimistic pass that fails is
rolled back to its savepoint and applied again op by op (:mod:`sync.server.apply`), so its
notes must be undone with it. Here, on a central with the feed: one op refused (the optimistic
pass fails before the visits' rows are written), and a visit stored already under another op
(the pass fails at the insert, on SQLite and on PostgreSQL's COPY). After each, the facts on
central are exactly those a rebuild of the person makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.episodes import services as episodes
from contigo.exchange.extensions import server_config
from contigo.exchange.laptop.client import engine_for, run_sync
from contigo.persons import services as persons
from contigo.reports.feed import Feeder, Pseudonymiser, surrogate
from contigo.reports.models import ReportFact, ReportReach
from contigo.vault import get_vault
from sync.models import Device
from sync.protocol import parse_push
from sync.server import apply as push_apply
from sync.server import wall_ms
from tests.exchange.conftest import central, enrol_in_process, laptop  # noqa: F401
from tests.exchange.test_server_apply import _sup, record_visit, register_child
from tests.exchange.world import close_app, make_central
from tests.factories import CHILD, VISIT
from tests.pgserver import new_database, postgres_cluster


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_central(request: pytest.FixtureRequest, tmp_path: Path, central: Flask) -> Iterator[Flask]:  # noqa: F811
    if request.param == "sqlite":
        yield central
        return
    url = new_database(request.getfixturevalue("pg_cluster"), f"feed_{tmp_path.name[-12:]}")
    app = make_central(tmp_path / "pg-central", url)
    yield app
    close_app(app)


def _apply(app: Flask, body: dict[str, Any]) -> list[str]:
    with session_scope(app) as s:
        device = s.get(Device, body["device_id"])
        assert device is not None
        out = push_apply.apply_batch(s, server_config(app), device, parse_push(body), wall_ms())
    return [r["status"] for r in out["results"]]


def _tables(app: Flask, person_id: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """The person's facts and reach rows on central."""
    pseudonym = Pseudonymiser.of(get_vault(app))(person_id)
    with session_scope(app) as s:
        facts = s.scalars(select(ReportFact).where(ReportFact.pseudonym == pseudonym))
        fact_rows = {tuple(getattr(f, c.key) for c in ReportFact.__table__.columns) for f in facts}
        reach = s.scalars(
            select(ReportReach).where(ReportReach.person == int(pseudonym[:16], 16) >> 1)
        )
        reach_rows = {
            tuple(getattr(r, c.key) for c in ReportReach.__table__.columns) for r in reach
        }
    return fact_rows, reach_rows


def _rebuilt(app: Flask, person_id: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with session_scope(app) as s:
        Feeder(get_vault(app)).rebuild(s, [person_id])
    return _tables(app, person_id)


def _months(app: Flask, person_id: str, kind: str) -> list[tuple[int, int]]:
    """The (year, month) of each month a fact of ``kind`` reached the person in, as the reach
    rows count them (once per row: a month in two rows is listed twice)."""
    _facts, reach = _tables(app, person_id)
    names = [c.key for c in ReportReach.__table__.columns]
    at = {name: names.index(name) for name in ("kind", "year", "months")}
    return sorted(
        (row[at["year"]], m)
        for row in reach
        if row[at["kind"]] == kind
        for m in range(1, 13)
        if row[at["months"]] >> (m - 1) & 1
    )


def _month(days_ago: int) -> tuple[int, int]:
    on = date.today() - timedelta(days=days_ago)
    return on.year, on.month


def _visits_on_central(app: Flask, person_id: str) -> int:
    with session_scope(app) as s:
        return s.scalar(select(func.count()).where(Encounter.person_id == person_id)) or 0


def test_a_refused_op_and_a_visit_stored_already_leave_the_facts_of_a_rebuild(
    any_central: Flask,
    laptop: Any,  # noqa: F811
) -> None:
    server = any_central
    a = laptop("a")
    transport = enrol_in_process(a, server)
    pid = register_child(a)
    run_sync(a, transport)
    days = (110, 75, 40)  # more than a month apart: a month each
    for ago in days:
        record_visit(a, pid, ago)
    with a.app_context():
        batch = engine_for(a, transport)._next_batch(0)
    assert batch is not None
    first = json.loads(json.dumps(batch.body))
    del first["ops"][1]["data"]["assessment"]  # refused: the optimistic pass fails
    assert _apply(server, first) == ["applied", "rejected", "applied"]
    assert _months(server, pid, "screen") == sorted(_month(days[i]) for i in (0, 2))
    kept = _tables(server, pid)
    assert not kept[0]  # a visit's facts are folded into the reach rows only
    assert _rebuilt(server, pid) == kept
    # The first visit again under a new op id, and a new visit: the optimistic pass's insert
    # fails, the careful pass finds the first stored already (identical) and adds the second.
    again = json.loads(json.dumps(batch.body))
    again["batch_id"] = "b" * 32
    again["ops"] = [again["ops"][0], again["ops"][1]]
    for i, op in enumerate(again["ops"]):
        op["op_id"] = f"{i}" * 32
    again["ops"][1]["entity_id"] = "e" * 32
    assert _apply(server, again) == ["identical", "applied"]
    assert _months(server, pid, "screen") == sorted(_month(d) for d in days)
    kept = _tables(server, pid)
    assert _rebuilt(server, pid) == kept


def _visit(app: Flask, person_id: str, days_ago: int) -> str:
    """A visit with counselling (a fact whose reach row counts the caregiver)."""
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        data = {**VISIT, "occurred_on": date.today() - timedelta(days=days_ago),
                "counselling": ["iycf"]}  # fmt: skip
        return encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data).id


def test_pushed_visits_of_treated_and_untreated_children_leave_the_facts_of_a_rebuild(
    any_central: Flask,
    laptop: Any,  # noqa: F811
) -> None:
    """Pushed visits (screening and counselling) of a child in treatment (rebuilt whole) and
    of one not (added, then more months added to their reach rows): facts and reach rows on
    central are those a rebuild makes."""
    server = any_central
    a = laptop("a")
    transport = enrol_in_process(a, server)
    treated, other = register_child(a), register_child(a)
    with a.test_request_context(), session_scope(a) as s:
        episodes.admit(s, get_vault(a), _sup(s), treated, _sup(s).home_site_id,
                       programme="sam_otp", admitted_on=date.today() - timedelta(days=70),
                       criteria=["muac_lt_115"])  # fmt: skip
    run_sync(a, transport)
    for days in (80, 45):
        for pid in (treated, other):
            _visit(a, pid, days)
    run_sync(a, transport)
    for pid in (treated, other):
        kept = _tables(server, pid)
        assert _rebuilt(server, pid) == kept
    facts, first = _tables(server, other)
    assert not facts  # no episode, and a visit's facts are folded into the reach rows only
    for kind in ("screen", "counsel"):
        assert _months(server, other, kind) == sorted(_month(d) for d in (80, 45))
    assert _tables(server, treated)[0]  # the episode
    for pid in (treated, other):
        _visit(a, pid, 1)
    run_sync(a, transport)
    for pid in (treated, other):
        kept = _tables(server, pid)
        assert _rebuilt(server, pid) == kept
    assert _tables(server, other)[1] != first  # a month's bit more
    assert _month(1) in _months(server, other, "counsel")
    assert _month(1) in _months(server, treated, "counsel")


def test_pushed_visits_of_a_mother_and_her_child_leave_the_facts_of_a_rebuild(
    any_central: Flask,
    laptop: Any,  # noqa: F811
) -> None:
    """Every kind of fact a pushed visit gives, added without a rebuild: a woman's dispensation
    of a micronutrient and her counselling, her child's screening and counselling (whose
    caregiver is the mother); facts and reach rows on central are those a rebuild makes."""
    server = any_central
    a = laptop("a")
    transport = enrol_in_process(a, server)
    with a.test_request_context(), session_scope(a) as s:
        actor = _sup(s)
        mother = persons.register(s, get_vault(a), actor, actor.home_site_id, {
            **CHILD, "kind": "woman", "given_names": "Rosa", "sex": "F",
            "birth_date": date.today() - timedelta(days=9000)})  # fmt: skip
        child = persons.register(s, get_vault(a), actor, actor.home_site_id,
                                 {**CHILD, "mother_id": mother.id})  # fmt: skip
        mother_id, child_id = mother.id, child.id
    run_sync(a, transport)
    for days in (45, 10):  # more than a month apart: a month each
        with a.test_request_context(), session_scope(a) as s:
            actor = _sup(s)
            on = date.today() - timedelta(days=days)
            encounters.record(s, get_vault(a), actor, mother_id, actor.home_site_id, {
                **VISIT, "occurred_on": on, "weight_kg": 58.0, "lenhei_cm": None,
                "measure": None, "muac_mm": 240, "pregnancy_status": "lactating",
                "supplements": ["ifa"], "counselling": ["iycf"]})  # fmt: skip
            encounters.record(s, get_vault(a), actor, child_id, actor.home_site_id, {
                **VISIT, "occurred_on": on, "counselling": ["iycf"]})  # fmt: skip
    run_sync(a, transport)
    names = [c.key for c in ReportReach.__table__.columns]
    kinds, subject = names.index("kind"), names.index("subject")
    pseudo = Pseudonymiser.of(get_vault(server))
    woman, baby = _tables(server, mother_id), _tables(server, child_id)
    assert not woman[0] and not baby[0]  # folded into the reach rows only
    months = sorted(_month(d) for d in (45, 10))
    for pid, kind in ((mother_id, "counsel"), (mother_id, "dispense"), (child_id, "counsel"),
                      (child_id, "screen")):  # fmt: skip
        assert _months(server, pid, kind) == months, kind
    assert {row[kinds] for row in woman[1]} == {"counsel", "dispense"}
    assert {row[kinds] for row in baby[1]} == {"counsel", "screen"}
    # a counselling counts its caregiver: the child's, its mother
    assert {row[subject] for row in baby[1] if row[kinds] == "counsel"} == {
        surrogate(pseudo(mother_id))
    }
    assert _rebuilt(server, mother_id) == woman
    assert _rebuilt(server, child_id) == baby


def _versions(app: Flask, person_id: str) -> dict[tuple[Any, ...], str] | None:
    """On PostgreSQL, the transaction that wrote each of the person's reach rows (``xmin``),
    by the row's key: it changes whenever an update writes a new version of the row."""
    with session_scope(app) as s:
        if s.connection().dialect.name != "postgresql":
            return None
        person = int(Pseudonymiser.of(get_vault(app))(person_id)[:16], 16) >> 1
        key = ", ".join(c.name for c in ReportReach.__table__.primary_key.columns)
        rows = s.execute(
            text(f"SELECT {key}, xmin::text FROM report_reach WHERE person = :p"),
            {"p": person},
        )
        return {tuple(row[:-1]): row[-1] for row in rows}


def _screen_on(app: Flask, person_id: str, on: date) -> str:
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        data = {**VISIT, "occurred_on": on}
        return encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data).id


def test_a_pushed_visit_in_a_month_counted_already_writes_no_reach_row(
    any_central: Flask,
    laptop: Any,  # noqa: F811
) -> None:
    """A pushed visit in a month the person's reach row counts already leaves the row as it
    is (on PostgreSQL, not even a new version of it); one in a month not counted yet sets the
    month's bit. Each time, facts and reach rows are those a rebuild makes."""
    server = any_central
    a = laptop("a")
    transport = enrol_in_process(a, server)
    pid = register_child(a)
    run_sync(a, transport)
    today = date.today()  # two past months of one year, the child (400 days old) born before
    year, month = (today.year, today.month - 2) if today.month >= 3 else (today.year - 1, 10)
    _screen_on(a, pid, date(year, month, 1))
    run_sync(a, transport)
    first = _tables(server, pid)
    assert len(first[1]) == 1
    assert _rebuilt(server, pid) == first
    versions = _versions(server, pid)  # the rebuild wrote the row anew
    _screen_on(a, pid, date(year, month, 2))  # the same month
    run_sync(a, transport)
    same = _tables(server, pid)
    assert _visits_on_central(server, pid) == 2  # applied, and counted already
    assert same == first
    assert _versions(server, pid) == versions
    _screen_on(a, pid, date(year, month + 1, 1))  # the next month, the same year
    run_sync(a, transport)
    more = _tables(server, pid)
    assert _visits_on_central(server, pid) == 3
    months = [c.key for c in ReportReach.__table__.columns].index("months")
    assert [row[months] for row in more[1]] == [0b11 << (month - 1)]
    if versions is not None:
        assert _versions(server, pid) != versions  # the row updated
    assert _rebuilt(server, pid) == more
