"""The values a dimension takes in a period (the page's columns and menus), read from the folded
reach table, are those the facts themselves take: in every scope (all, a country, some sites)
and period, for every dimension, on the demo's record (its reach kept by the session hook). The
facts are the episodes' rows of ``report_facts`` and the visits' facts recomputed from the
decrypted record (no table holds those one row each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.reports import services
from contigo.reports.models import ReportFact
from contigo.reports.services import Filters, Scope
from contigo.vault import get_vault
from tests.reports.conftest import DEMO_PASSWORD
from tests.reports.visit_facts import visit_facts

COLUMNS = ("kind", "month", *services.DIMENSIONS)


@pytest.fixture
def s(demo_app: Flask) -> Iterator[Session]:
    with session_scope(demo_app) as session:
        vault = get_vault(demo_app)
        auth.authenticate(session, vault, "necocli.sup", DEMO_PASSWORD, max_failed=5, lockout_s=60)
        yield session


def _facts(s: Session, demo_app: Flask) -> list[dict[str, Any]]:
    """Every fact of the demo: its episodes' rows, and its visits' facts from the record."""
    episodes = [{c: getattr(f, c) for c in COLUMNS} for f in s.scalars(select(ReportFact))]
    assert episodes and {f["kind"] for f in episodes} == {"episode"}
    visits = visit_facts(s, get_vault(demo_app))
    assert {f["kind"] for f in visits} == {"screen", "dispense", "counsel"}
    return episodes + [{c: f[c] for c in COLUMNS} for f in visits]


def _from_facts(
    facts: list[dict[str, Any]], scope: Scope, filters: Filters, dimension: str
) -> list[str]:
    """The values as the facts hold them (the former query, over every fact)."""
    return sorted(
        {
            str(f[dimension])
            for f in facts
            if (scope.countries is None or f["country"] in scope.countries)
            and (scope.site_ids is None or f["site_id"] in scope.site_ids)
            and filters.start <= f["month"] <= filters.end
            and f[dimension]
        }
    )


def test_dimension_values_are_the_facts_values(s: Session, demo_app: Flask) -> None:
    facts = _facts(s, demo_app)
    sites = sorted({f["site_id"] for f in facts})
    assert len(sites) >= 2
    scopes = [
        Scope(None, None),
        Scope(frozenset({"CO"}), None),
        Scope(frozenset({"EC"}), None),
        Scope(None, frozenset(sites[:1])),
        Scope(None, frozenset(sites[1:3])),
    ]
    months = sorted({f["month"] for f in facts})
    periods = [
        Filters(months[0], months[-1]),
        Filters(months[len(months) // 2], months[len(months) // 2]),
        Filters(months[-1], "2099-12"),
        Filters("1990-01", "1990-12"),
    ]
    seen = 0
    for scope in scopes:
        for period in periods:
            for dimension in services.DIMENSIONS:
                if dimension == "age_band":
                    continue  # every band, always (the columns of the page)
                expected = _from_facts(facts, scope, period, dimension)
                assert services.dimension_values(s, scope, period, dimension) == expected
                seen += len(expected)
    assert seen > 0
