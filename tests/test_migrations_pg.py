"""The same Alembic history builds the same schema on PostgreSQL (the central server's engine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError

from contigo import migrate
from contigo.db import make_engine
from contigo.models import METADATA
from tests.pgserver import postgres_cluster


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[Engine]:
    with postgres_cluster() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def test_models_and_migrations_agree_on_postgresql(pg_engine: Engine) -> None:
    migrate.upgrade(pg_engine)
    with pg_engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), METADATA) == []


def test_encounters_are_append_only_on_postgresql(pg_engine: Engine) -> None:
    migrate.upgrade(pg_engine)
    with pg_engine.begin() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("UPDATE encounters SET country = 'PE'"))
    with pg_engine.begin() as conn, pytest.raises(DatabaseError, match="append-only"):
        conn.execute(text("DELETE FROM encounter_voids"))


def test_downgrade_and_upgrade_on_postgresql(pg_engine: Engine) -> None:
    migrate.upgrade(pg_engine)
    migrate.downgrade(pg_engine, "base")
    assert set(inspect(pg_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(pg_engine)
    assert migrate.current_revision(pg_engine) == migrate.head_revision()
