"""The feed's one statement on PostgreSQL folds the facts it is handed into the reach rows,
however they are sent.

A push's facts go to :func:`contigo.reports.feed._add_in_one_statement` column by column, each
column one text that PostgreSQL splits (psycopg's dumping of arrays, value by value in Python,
cost more than the rest of the feed). Here, on a real PostgreSQL: the values that splitting could
get wrong (one empty value, a ``NULL`` caregiver, a column of one value) land as they were
handed (the reach rows are those :func:`~contigo.reports.feed.reach_rows` folds from them), and
a value holding the separator sends the batch as arrays instead, with the same result; a fact
counted already changes nothing; no fact is stored one row each.
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


def _row(pseudonym: str, kind: str, **values: Any) -> tuple[Any, ...]:
    """A fact as a row of the feed's visit columns."""
    row = {"pseudonym": pseudonym, "kind": kind, "site_id": "s" * 32, "country": "CO",
           "month": "2026-11", "sex": "F", "age_band": "6_23", "population_type": "migrant",
           "nationality": "VE", "caregiver": None} | values  # fmt: skip
    return tuple(row[c] for c in feed._VISIT_COLUMNS)


COLUMNS = [c.key for c in ReportReach.__table__.columns]


def _stored(s: Session, pseudonyms: set[str]) -> set[tuple[Any, ...]]:
    """The reach rows of ``pseudonyms``; and no fact row of them (asserted)."""
    assert not s.scalars(select(ReportFact).where(ReportFact.pseudonym.in_(pseudonyms))).all()
    people = [feed.surrogate(p) for p in pseudonyms]
    reach = s.scalars(select(ReportReach).where(ReportReach.person.in_(people)))
    return {tuple(getattr(r, c) for c in COLUMNS) for r in reach}


def _folded(handed: set[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    """The reach rows of facts handed, as a rebuild folds them."""
    dicts = [dict(zip(feed._VISIT_COLUMNS, row, strict=True)) for row in handed]
    return {tuple(r[c] for c in COLUMNS) for r in feed.reach_rows(dicts)}


def _sent(s: Session, facts: dict[str, list[tuple[Any, ...]]], way: str) -> int:
    """Run the statement (its columns sent ``way``: as texts, ``split``, or as ``arrays``);
    how many reach rows it inserted or changed."""
    statement, _params = feed._statement(sorted(facts), facts)
    assert statement == (feed._ONE_STATEMENT if way == "split" else feed._ARRAYS_STATEMENT)
    folded, treated = feed._add_in_one_statement(s, sorted(facts), facts)
    assert treated == set()
    return folded


#: One fact alone: its empty nationality and classification stay empty, not absent.
ALONE = {"p1": [_row("1" * 32, "screen", nationality="")]}
#: A counselling names a caregiver; the screening of the same visit does not (``NULL``).
COUNSELLED = {
    "p2": [
        _row("2" * 32, "screen"),
        _row("2" * 32, "counsel", caregiver="9" * 32),
        _row("2" * 32, "screen", month="2026-09"),  # the same row: one more month's bit
    ],
    "p3": [_row("3" * 32, "screen", month="2026-10", age_band="24_59")],
}


@pytest.mark.parametrize("facts", [ALONE, COUNSELLED], ids=["alone", "counselled"])
def test_the_columns_split_by_postgresql_land_as_handed(
    engine: Engine, facts: dict[str, list[tuple[Any, ...]]]
) -> None:
    handed = {row for rows in facts.values() for row in rows}
    pseudonyms = {row[0] for row in handed}
    with Session(engine) as s, s.begin():
        assert _sent(s, facts, "split") == len(_folded(handed))
        assert _stored(s, pseudonyms) == _folded(handed)
        s.rollback()


def test_a_value_holding_the_separator_sends_the_batch_as_arrays(engine: Engine) -> None:
    odd = "x" + feed.SEPARATOR + "y"  # no code holds one; were it to, it must not shift a column
    facts = {
        "p4": [_row("4" * 32, "screen", population_type=odd)],
        "p5": [_row("5" * 32, "screen")],
    }
    with Session(engine) as s, s.begin():
        assert _sent(s, facts, "arrays") == 2
        handed = {r for rows in facts.values() for r in rows}
        assert _stored(s, {"4" * 32, "5" * 32}) == _folded(handed)
        s.rollback()


def test_a_fact_counted_already_changes_nothing(engine: Engine) -> None:
    facts = {"p6": [_row("6" * 32, "screen")]}
    with Session(engine) as s, s.begin():
        assert _sent(s, facts, "split") == 1
        assert _sent(s, facts, "split") == 0
        assert _stored(s, {"6" * 32}) == _folded(set(facts["p6"]))
        s.rollback()
