"""The values a dimension takes in a period (the page's columns and menus), read from the folded
reach table, are those the facts themselves take: in every scope (all, a country, some sites)
and period, for every dimension, on the demo's record (its facts kept by the session hook)."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def s(demo_app: Flask) -> Iterator[Session]:
    with session_scope(demo_app) as session:
        vault = get_vault(demo_app)
        auth.authenticate(session, vault, "necocli.sup", DEMO_PASSWORD, max_failed=5, lockout_s=60)
        yield session


def _from_facts(s: Session, scope: Scope, filters: Filters, dimension: str) -> list[str]:
    """The values as the facts hold them (the former query, over every fact)."""
    column = getattr(ReportFact, dimension)
    query = (
        select(column)
        .where(scope.clause(), ReportFact.month.between(filters.start, filters.end))
        .group_by(column)
        .order_by(column)
    )
    return [str(v) for v in s.scalars(query) if v]


def test_dimension_values_are_the_facts_values(s: Session) -> None:
    sites = sorted(s.scalars(select(ReportFact.site_id).distinct()))
    assert len(sites) >= 2
    scopes = [
        Scope(None, None),
        Scope(frozenset({"CO"}), None),
        Scope(frozenset({"EC"}), None),
        Scope(None, frozenset(sites[:1])),
        Scope(None, frozenset(sites[1:3])),
    ]
    months = sorted(s.scalars(select(ReportFact.month).distinct()))
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
                expected = _from_facts(s, scope, period, dimension)
                assert services.dimension_values(s, scope, period, dimension) == expected
                seen += len(expected)
    assert seen > 0
