"""On a central (gunicorn + PostgreSQL), pushes keep ``report_reach`` as a rebuild makes it.

A laptop's visits are pushed in two syncs through the real endpoint: the first adds new rows,
the second sets more month bits in rows that exist (``INSERT … ON CONFLICT DO UPDATE`` on
PostgreSQL). After each, the tables on central are those a rebuild of every person from the
record makes (computed in a transaction rolled back), no visit's fact stored one row each, and
``reports rebuild`` leaves both tables as the pushes left them.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.persons.models import Person
from contigo.reports.feed import Feeder
from contigo.reports.hooks import FEEDER
from contigo.reports.rebuild import rebuild_all
from contigo.vault import get_vault
from tests.exchange.live import central_server, enrol, make_laptop, record_visit, register_child
from tests.reports.visit_facts import Tables, report_rows

SITE = "RCH-1"


def _tables(app: Flask) -> Tables:
    """(facts, reach rows) on central, as sets of tuples; checked to be those a rebuild of
    every person makes, in a transaction then rolled back."""
    with session_scope(app) as s:
        held = report_rows(s)
    with session_scope(app) as s:
        s.info.pop(FEEDER, None)  # this session rebuilds by itself
        Feeder(get_vault(app)).rebuild(s, s.scalars(select(Person.id)).all())
        rebuilt = report_rows(s)
        s.rollback()
    assert held == rebuilt
    return held


def test_pushes_keep_the_reach_a_rebuild_makes(tmp_path: Path) -> None:
    with central_server(tmp_path / "central") as central:
        laptop = make_laptop(tmp_path / "laptop", SITE)
        assert enrol(laptop, central, SITE).exit_code == 0
        children = [register_child(laptop.app) for _ in range(3)]
        for child in children:
            record_visit(laptop.app, child, days_ago=70)
        result = laptop.sync()
        assert result.exit_code == 0, result.output
        facts, first = _tables(central.app)
        assert first and not facts  # no episode: the visits' facts are in the reach only
        for child in children:
            record_visit(laptop.app, child, days_ago=2)
            record_visit(laptop.app, child, days_ago=1)
        result = laptop.sync()
        assert result.exit_code == 0, result.output
        facts, reach = _tables(central.app)
        assert reach != first and not facts  # more months seen
        rebuild_all(central.app)
        assert _tables(central.app) == (facts, reach)
        laptop.close()
