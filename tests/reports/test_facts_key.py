"""The reporting table keyed by (pseudonym, id): the migration keeps the facts, on SQLite and
PostgreSQL, and leaves one index a push writes to (the primary key) where there were two. And
the next one (``b3d5f7a9c1e2``) deletes the visits' facts, keeps the episodes' and leaves
``report_reach`` (where the visits' facts are folded) as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from contigo import migrate
from contigo.db import make_engine
from tests.pgserver import new_database, postgres_cluster

BEFORE = "e5f1b3d7a9c2"
KEYED = "a8c4e2f6b1d3"
EPISODES_ONLY = "b3d5f7a9c1e2"
FACTS = [
    # a person with two facts and another with one; ids unique, as the keyed hashes are
    ("f" * 32, "p" * 32, "screen", "2026-11"),
    ("e" * 32, "p" * 32, "counsel", "2026-10"),
    ("d" * 32, "q" * 32, "screen", "2026-11"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'facts.sqlite3'}")
        yield made
        made.dispose()
        return
    with postgres_cluster() as url:
        made = make_engine(new_database(url, "facts_key"))
        yield made
        made.dispose()


def _facts(engine: Engine) -> list[tuple[str, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, pseudonym, kind, month FROM report_facts ORDER BY id"))
        return sorted(tuple(r) for r in rows)


def _insert_facts(engine: Engine, facts: list[tuple[str, ...]]) -> None:
    with engine.begin() as conn:
        for fid, pseudonym, kind, month in facts:
            conn.execute(
                text(
                    "INSERT INTO report_facts (id, pseudonym, kind, site_id, country, month, "
                    "person_kind, sex, age_band, population_type, nationality, classification, "
                    "programme) VALUES (:id, :p, :kind, 's', 'CO', :month, 'child', 'F', '6_23', "
                    "'host', 'CO', '', '')"
                ),
                {"id": fid, "p": pseudonym, "kind": kind, "month": month},
            )


def test_the_migration_keeps_the_facts_and_one_index_is_left(engine: Engine) -> None:
    migrate.upgrade(engine, revision=BEFORE)
    _insert_facts(engine, FACTS)
    migrate.upgrade(engine, revision=KEYED)

    assert _facts(engine) == sorted(FACTS)
    found = inspect(engine)
    assert found.get_pk_constraint("report_facts")["constrained_columns"] == ["pseudonym", "id"]
    # no index of its own on the pseudonym: the key leads with it (the episode facts' partial
    # indexes stay)
    assert {ix["name"] for ix in found.get_indexes("report_facts")} == {
        "ix_report_facts_episodes",
        "ix_report_facts_episode_country",
        "ix_report_facts_caseload",
    }

    migrate.downgrade(engine, BEFORE)
    assert _facts(engine) == sorted(FACTS)
    back = inspect(engine)
    assert back.get_pk_constraint("report_facts")["constrained_columns"] == ["id"]
    assert "ix_report_facts_pseudonym" in {ix["name"] for ix in back.get_indexes("report_facts")}


EPISODES = [
    ("c" * 32, "p" * 32, "episode", "2026-09"),
    ("b" * 32, "r" * 32, "episode", "2026-11"),
]
#: The folding of ``FACTS`` (and of the episodes) in report_reach: (person, kind, year, months).
REACH = [
    (1, "screen", 2026, 1 << 10),
    (1, "counsel", 2026, 1 << 9),
    (1, "episode", 2026, 1 << 8),
    (2, "screen", 2026, 1 << 10),
    (3, "episode", 2026, 1 << 10),
]


def _reach(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT person, kind, year, months, subject FROM report_reach"))
        return sorted(tuple(r) for r in rows)


def test_the_visits_facts_go_the_episodes_facts_and_the_reach_stay(engine: Engine) -> None:
    migrate.upgrade(engine, revision=KEYED)
    _insert_facts(engine, [*FACTS, *EPISODES])
    with engine.begin() as conn:
        for person, kind, year, months in REACH:
            conn.execute(
                text(
                    "INSERT INTO report_reach (person, kind, site_id, country, sex, age_band, "
                    "population_type, nationality, year, subject, months) VALUES (:person, "
                    ":kind, 's', 'CO', 'F', '6_23', 'host', 'CO', :year, :person, :months)"
                ),
                {"person": person, "kind": kind, "year": year, "months": months},
            )
    reach = _reach(engine)
    assert _facts(engine) == sorted([*FACTS, *EPISODES]) and len(reach) == len(REACH)

    migrate.upgrade(engine, revision=EPISODES_ONLY)
    assert _facts(engine) == sorted(EPISODES)
    assert _reach(engine) == reach

    # Down, the visits' facts do not come back (`contigo reports rebuild` makes them): nothing
    # else changes either way.
    migrate.downgrade(engine, KEYED)
    assert _facts(engine) == sorted(EPISODES)
    assert _reach(engine) == reach
    migrate.upgrade(engine, revision=EPISODES_ONLY)
    assert _facts(engine) == sorted(EPISODES)
    assert _reach(engine) == reach
