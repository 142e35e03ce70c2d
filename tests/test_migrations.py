"""The schema comes from Alembic alone: models and migrations agree, and every step reverses."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from contigo import migrate
from contigo.db import make_engine
from contigo.exchange.laptop.client import DEFERRED_INDEXES
from contigo.models import METADATA
from sync.client import deferral
from sync.client.engine import CURSOR_KEY
from sync.models import SyncState


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), METADATA)
    assert diff == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_a_database_with_data_is_backed_up_before_migrating(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE keepme (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO keepme VALUES (42)")
    backups = tmp_path / "backups"
    path = migrate.upgrade(engine, backups)
    assert path is not None and path.exists()
    copy = make_engine(f"sqlite:///{path}")
    with copy.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM keepme").scalar() == 42


def test_sqlite_runs_with_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_schema_change_leaving_a_dangling_reference_rolls_back_and_keys_stay_on(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}", poolclass=StaticPool)
    migrate.upgrade(engine)
    with pytest.raises(migrate.MigrationFailed, match="user_sites"):  # noqa: SIM117
        with migrate.schema_change(engine) as conn:
            conn.exec_driver_sql("INSERT INTO user_sites (user_id, site_id) VALUES ('no', 'ne')")
    with engine.connect() as conn:  # the same DBAPI connection (StaticPool)
        assert conn.exec_driver_sql("SELECT count(*) FROM user_sites").scalar() == 0
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _index_sql(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        return {str(name): str(sql) for name, sql in rows}


def _deferred(engine: Engine) -> tuple[str, ...]:
    """What a laptop's first pull leaves out, left out on ``engine``'s database."""
    left_out = deferral.defer_for_first_pull(sessionmaker(engine), DEFERRED_INDEXES, CURSOR_KEY)
    assert set(left_out) == set(DEFERRED_INDEXES)
    assert not set(DEFERRED_INDEXES) & set(_index_sql(engine))
    return left_out


def test_a_database_left_without_a_first_pulls_indexes_migrates_and_gets_them_back(
    tmp_path: Path,
) -> None:
    """A laptop cut in its first pull, then updated: the migrations find the indexes they
    expect (restored first), both ways, and the schema ends exactly as a never-deferred one."""
    reference = make_engine(f"sqlite:///{tmp_path / 'ref.sqlite3'}")
    migrate.upgrade(reference)
    head = migrate.head_revision()
    before = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head).down_revision
    assert isinstance(before, str)

    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    migrate.upgrade(engine, revision=before)
    _deferred(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == head
    assert _index_sql(engine) == _index_sql(reference)

    _deferred(engine)
    migrate.downgrade(engine, "base")  # every migration's downgrade, the dropped indexes' too
    migrate.upgrade(engine)
    assert _index_sql(engine) == _index_sql(reference)
    recorded = select(SyncState.value).where(SyncState.key == deferral.DEFERRED_KEY)
    with engine.connect() as conn:
        assert conn.execute(recorded).all() == []
