"""The schema comes from Alembic alone: models and migrations agree, and every step reverses."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.pool import StaticPool

from contigo import migrate
from contigo.db import make_engine
from contigo.models import METADATA


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
