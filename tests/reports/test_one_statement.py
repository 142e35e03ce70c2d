"""The feed's one statement on PostgreSQL writes the facts it is handed, however they are sent.

A push's facts go to :func:`contigo.reports.feed._add_in_one_statement` column by column, each
column one text that PostgreSQL splits (psycopg's dumping of arrays, value by value in Python,
cost more than the rest of the feed). Here, on a real PostgreSQL: the values that splitting could
get wrong (one empty value, a ``NULL`` caregiver, a column of one value) land as they were
handed, and a value holding the separator sends the batch as arrays instead, with the same
result; a fact stored already is not added again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contigo import migrate
from contigo.db import make_engine
from contigo.reports import feed
from contigo.reports.models import ReportFact, ReportReach
from tests.pgserver import new_database, postgres_cluster


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with postgres_cluster() as url:
        made = make_engine(new_database(url, "one_statement"))
        migrate.upgrade(made)
        yield made
        made.dispose()


def _row(fid: str, pseudonym: str, kind: str, **values: Any) -> tuple[Any, ...]:
    """A fact as a row of the feed's visit columns."""
    row = {"id": fid, "pseudonym": pseudonym, "kind": kind, "site_id": "s" * 32,
           "country": "CO", "month": "2026-11", "person_kind": "child", "sex": "F",
           "age_band": "6_23", "population_type": "migrant", "nationality": "VE",
           "classification": "normal", "caregiver": None} | values  # fmt: skip
    return tuple(row[c] for c in feed._VISIT_COLUMNS)


def _stored(s: Session, pseudonyms: set[str]) -> set[tuple[Any, ...]]:
    facts = s.scalars(select(ReportFact).where(ReportFact.pseudonym.in_(pseudonyms)))
    return {tuple(getattr(f, c) for c in feed._VISIT_COLUMNS) for f in facts}


def _sent(s: Session, facts: dict[str, list[tuple[Any, ...]]], way: str) -> int:
    """Run the statement (its columns sent ``way``: as texts, ``split``, or as ``arrays``);
    how many facts it added."""
    statement, _params = feed._statement(sorted(facts), facts)
    assert statement == (feed._ONE_STATEMENT if way == "split" else feed._ARRAYS_STATEMENT)
    added, treated = feed._add_in_one_statement(s, sorted(facts), facts)
    assert treated == set()
    return added


#: One fact alone: its empty nationality and classification stay empty, not absent.
ALONE = {"p1": [_row("a" * 48, "1" * 32, "screen", nationality="", classification="")]}
#: A counselling names a caregiver; the screening of the same visit does not (``NULL``).
COUNSELLED = {
    "p2": [
        _row("b" * 48, "2" * 32, "screen"),
        _row("c" * 48, "2" * 32, "counsel", classification="", caregiver="9" * 32),
    ],
    "p3": [_row("d" * 48, "3" * 32, "screen", month="2026-10", age_band="24_59")],
}


@pytest.mark.parametrize("facts", [ALONE, COUNSELLED], ids=["alone", "counselled"])
def test_the_columns_split_by_postgresql_land_as_handed(
    engine: Engine, facts: dict[str, list[tuple[Any, ...]]]
) -> None:
    handed = {row for rows in facts.values() for row in rows}
    pseudonyms = {row[1] for row in handed}
    with Session(engine) as s, s.begin():
        assert _sent(s, facts, "split") == len(handed)
        assert _stored(s, pseudonyms) == handed
        # the reach rows are the facts folded, as a rebuild folds them
        reach = s.scalars(select(ReportReach).where(ReportReach.person.in_(
            [feed.surrogate(p) for p in pseudonyms])))  # fmt: skip
        columns = [c.key for c in ReportReach.__table__.columns]
        dicts = [dict(zip(feed._VISIT_COLUMNS, row, strict=True)) for row in handed]
        assert {tuple(getattr(r, c) for c in columns) for r in reach} == {
            tuple(r[c] for c in columns) for r in feed.reach_rows(dicts)
        }
        s.rollback()


def test_a_value_holding_the_separator_sends_the_batch_as_arrays(engine: Engine) -> None:
    odd = "x" + feed.SEPARATOR + "y"  # no code holds one; were it to, it must not shift a column
    facts = {
        "p4": [_row("e" * 48, "4" * 32, "screen", population_type=odd)],
        "p5": [_row("f" * 48, "5" * 32, "screen")],
    }
    with Session(engine) as s, s.begin():
        assert _sent(s, facts, "arrays") == 2
        assert _stored(s, {"4" * 32, "5" * 32}) == {r for rows in facts.values() for r in rows}
        s.rollback()


def test_a_fact_stored_already_is_not_added_twice(engine: Engine) -> None:
    facts = {"p6": [_row("1" * 48, "6" * 32, "screen")]}
    with Session(engine) as s, s.begin():
        assert _sent(s, facts, "split") == 1
        assert _sent(s, facts, "split") == 0
        assert _stored(s, {"6" * 32}) == set(facts["p6"])
        s.rollback()
