"""The feed's one statement on PostgreSQL folds the reach rows it is handed in, however they
are sent.

A push's visits are folded into reach rows in the worker (:func:`contigo.reports.feed._fold_visit`)
and go to :func:`contigo.reports.feed._add_in_one_statement` column by column, each column one
text that PostgreSQL splits (psycopg's dumping of arrays, value by value in Python, cost more than
the rest of the feed). Here, on a real PostgreSQL: the values that splitting could get wrong (one
empty value, integers, a column of one value) land as they were handed, and a value holding the
separator sends the batch as arrays instead, with the same result; a row counted already changes
nothing, one with a new month's bit adds it; a person with an episode is left out (rebuilt
whole); no fact is stored one row each. And two persons whose pseudonyms share a surrogate are
folded into one row, not sent twice (which would fail the statement, and the push with it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contigo import migrate
from contigo.db import make_engine
from contigo.episodes.models import CareEpisode
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


def _row(person_id: str, person: int, kind: str, **values: Any) -> tuple[Any, ...]:
    """A reach row as the feed sends it (its person's id first)."""
    row = {"person_id": person_id, "person": person, "kind": kind, "site_id": "s" * 32,
           "country": "CO", "sex": "F", "age_band": "6_23", "population_type": "migrant",
           "nationality": "VE", "year": 2026, "subject": person, "months": 1 << 10}  # fmt: skip
    row |= values
    return tuple(row[c] for c in feed._SENT_COLUMNS)


COLUMNS = [c.key for c in ReportReach.__table__.columns]
assert tuple(COLUMNS) == feed._SENT_COLUMNS[1:]


def _stored(s: Session, people: set[int]) -> set[tuple[Any, ...]]:
    """The reach rows of ``people``; and no fact row at all (asserted)."""
    assert not s.scalars(select(ReportFact)).all()
    reach = s.scalars(select(ReportReach).where(ReportReach.person.in_(people)))
    return {tuple(getattr(r, c) for c in COLUMNS) for r in reach}


def _sent(s: Session, rows: list[tuple[Any, ...]], way: str) -> tuple[int, set[str]]:
    """Run the statement (its columns sent ``way``: as texts, ``split``, or as ``arrays``):
    how many reach rows it inserted or changed, and the persons with an episode."""
    candidates = sorted({r[0] for r in rows})
    statement, _params = feed._statement(candidates, rows)
    assert statement == (feed._ONE_STATEMENT if way == "split" else feed._ARRAYS_STATEMENT)
    return feed._add_in_one_statement(s, candidates, rows)


#: One row alone: its empty nationality stays empty, not absent.
ALONE = [_row("p1", 1, "screen", nationality="")]
#: A counselling counts the caregiver (its subject); two years of one person; a large surrogate.
COUNSELLED = [
    _row("p2", 2, "screen", months=0b101),
    _row("p2", 2, "counsel", subject=9 * 10**17),
    _row("p2", 2, "screen", year=2025, months=1 << 11),
    _row("p3", 2**63 - 1, "screen", age_band="24_59"),
]


@pytest.mark.parametrize("rows", [ALONE, COUNSELLED], ids=["alone", "counselled"])
def test_the_columns_split_by_postgresql_land_as_handed(
    engine: Engine, rows: list[tuple[Any, ...]]
) -> None:
    with Session(engine) as s, s.begin():
        assert _sent(s, rows, "split") == (len(rows), set())
        assert _stored(s, {r[1] for r in rows}) == {r[1:] for r in rows}
        s.rollback()


def test_a_value_holding_the_separator_sends_the_batch_as_arrays(engine: Engine) -> None:
    odd = "x" + feed.SEPARATOR + "y"  # no code holds one; were it to, it must not shift a column
    rows = [_row("p4", 4, "screen", population_type=odd), _row("p5", 5, "screen")]
    with Session(engine) as s, s.begin():
        assert _sent(s, rows, "arrays") == (2, set())
        assert _stored(s, {4, 5}) == {r[1:] for r in rows}
        s.rollback()


def test_a_row_counted_already_changes_nothing_and_a_new_month_is_added(engine: Engine) -> None:
    rows = [_row("p6", 6, "screen", months=0b11)]
    with Session(engine) as s, s.begin():
        assert _sent(s, rows, "split") == (1, set())
        assert _sent(s, [_row("p6", 6, "screen", months=0b1)], "split") == (0, set())
        assert _sent(s, [_row("p6", 6, "screen", months=0b100)], "split") == (1, set())
        assert _stored(s, {6}) == {_row("p6", 6, "screen", months=0b111)[1:]}
        s.rollback()


def test_the_rows_of_a_person_with_an_episode_are_left_out(engine: Engine) -> None:
    rows = [_row("p7", 7, "screen"), _row("p8", 8, "screen")]
    with Session(engine) as s, s.begin():
        # the episode alone (no person, site or user rows: their keys not checked, rolled back)
        s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(
            insert(CareEpisode).values(
                id="e7", person_id="p7", site_id="s" * 32, programme="sam_otp",
                admitted_on=date(2026, 11, 2), created_hlc="0", created_by_user_id="u",
            )
        )  # fmt: skip
        assert _sent(s, rows, "split") == (1, {"p7"})
        assert _stored(s, {7, 8}) == {rows[1][1:]}
        s.rollback()


def _who(pseudonym: str) -> Any:
    return feed._Who(pseudonym, None, "child", "F", date(2025, 1, 1), "migrant", "VE", "c" * 32)


def test_two_persons_sharing_a_surrogate_are_folded_into_one_row() -> None:
    """Their pseudonyms differ after the first 16 hex digits: one surrogate. A visit of each in
    the same batch, same key but the month: one row, both months' bits."""
    folded: dict[tuple[Any, ...], list[Any]] = {}
    data = feed.reading({"muac_mm": 140, "assessment": {"age_days": 300}})
    place = ("s" * 32, "CO")
    feed._fold_visit(folded, "pa", _who("a" * 16 + "1" * 16), (*place, date(2026, 3, 5)), data)
    feed._fold_visit(folded, "pb", _who("a" * 16 + "2" * 16), (*place, date(2026, 4, 5)), data)
    person = feed.surrogate("a" * 32)
    assert feed._folded_rows(folded) == [
        ("pa", person, "screen", *place, "F", "6_23", "migrant", "VE", 2026, person, 0b1100)
    ]


def test_a_missing_value_is_sent_as_null_not_as_a_word() -> None:
    """Split text has no ``NULL``: a ``None`` sends the batch as arrays, where it stays
    ``NULL`` (and the table's ``NOT NULL`` refuses it) instead of landing as "None"."""
    rows = [_row("p9", 9, "screen", nationality=None)]
    statement, params = feed._statement(["p9"], rows)
    assert statement == feed._ARRAYS_STATEMENT
    assert [None] in params
