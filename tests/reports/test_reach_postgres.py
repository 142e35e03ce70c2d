"""On PostgreSQL (central), the indicators read from the folded reach table give the figures the
demo's facts give, the page's one-scan path included.

The demo's facts, as a laptop held them before migration ``b3d5f7a9c1e2`` (its episodes' rows
of ``report_facts``, kept by the session hook, and its visits' facts recomputed from the
decrypted record; checked against a recount from the raw record by ``test_recount``), are
copied into a PostgreSQL database migrated to the revision before the reach table; the
migrations fold them into ``report_reach``, and then drop the visits' rows. The reach table
must then be the one the laptop's feed kept, the facts its episodes' rows, and every figure of
the page (by month, in total and by each dimension, through ``GROUPING SETS``) and the
cross-border counts must equal the laptop's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contigo import migrate
from contigo.auth import services as auth
from contigo.db import make_engine, session_scope
from contigo.reports import services
from contigo.reports.models import ReportFact, ReportReach
from contigo.reports.services import Filters, Scope
from contigo.vault import get_vault
from tests.pgserver import postgres_cluster
from tests.reports.conftest import DEMO_PASSWORD
from tests.reports.visit_facts import visit_facts

BEFORE_REACH = "f3c5e7a9b1d2"
#: The last revision whose report_facts hold the visits' facts too.
WITH_VISITS = "a8c4e2f6b1d3"
START, END = "2025-01", "2027-12"


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[Engine]:
    with postgres_cluster() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def _rows(s: Session, model: Any) -> set[tuple[Any, ...]]:
    columns = [c.key for c in model.__table__.columns]
    return {tuple(getattr(r, c) for c in columns) for r in s.scalars(select(model))}


def test_the_page_counts_the_same_on_postgresql(demo_app: Flask, pg_engine: Engine) -> None:
    migrate.upgrade(pg_engine, revision=BEFORE_REACH)
    columns = [c.key for c in ReportFact.__table__.columns]
    with session_scope(demo_app) as s:
        auth.authenticate(s, get_vault(demo_app), "necocli.sup", DEMO_PASSWORD, max_failed=5,
                          lockout_s=60)  # fmt: skip
    with session_scope(demo_app) as s:
        episodes = [{c: getattr(f, c) for c in columns} for f in s.scalars(select(ReportFact))]
        visits = visit_facts(s, get_vault(demo_app))
        reach = _rows(s, ReportReach)
        kept = _rows(s, ReportFact)
    assert episodes and visits and reach
    assert {f["kind"] for f in episodes} == {"episode"}
    with pg_engine.begin() as conn:
        conn.execute(insert(ReportFact.__table__), [*episodes, *visits])
    migrate.upgrade(pg_engine, revision=WITH_VISITS)  # folds the facts into report_reach
    with Session(pg_engine) as pg:
        assert _rows(pg, ReportReach) == reach
        assert len(_rows(pg, ReportFact)) == len(episodes) + len(visits)
    migrate.upgrade(pg_engine)  # the visits' facts go, their reach stays
    scopes = [Scope(None, None), Scope(frozenset({"CO"}), None), Scope(frozenset({"EC"}), None)]
    with Session(pg_engine) as pg, session_scope(demo_app) as lite:
        assert _rows(pg, ReportReach) == reach
        assert _rows(pg, ReportFact) == kept
        assert pg.connection().dialect.name == "postgresql"
        services.roomy(pg)
        for scope in scopes:
            for period in (Filters(START, END), Filters("2026-01", "2026-06")):
                for by in services.DIMENSIONS:
                    got = services.page_counts(pg, scope, period, by)
                    assert got.totals == services.grouped_counts(lite, scope, period, [])
                    assert got.monthly == services.grouped_counts(lite, scope, period, ["month"])
                    assert got.breakdown == services.grouped_counts(lite, scope, period, [by])
                    assert got == services.page_counts(lite, scope, period, by)
                assert services.cross_border(pg, scope, period) == services.cross_border(
                    lite, scope, period
                )
