"""Schema upgrades through Alembic, with a backup of a laptop's database taken first.

Databases are only ever built by the migrations (never ``create_all``); the same history serves
both modes and both database engines.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from contigo.safefile import atomic_file, private_dir, remove_stale_partials

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class MigrationFailed(RuntimeError):
    """The database could not be brought to the newest schema; it was restored from the backup
    taken just before (when there was one) and the application must not start on it."""


@contextmanager
def schema_change(engine: Engine) -> Iterator[Connection]:
    """One transaction for a schema change, committed when the block ends without error.

    On SQLite, a batch migration rebuilds a table (copy, DROP, rename); with foreign keys
    enforced, dropping a table that other rows reference fails, and deferring the keys does not
    help (the rename does not recount the violations). SQLite's own procedure is followed
    instead: keys off *outside* the transaction (the pragma is a no-op inside one), migrate,
    ``PRAGMA foreign_key_check`` before committing (a violation rolls everything back), keys on
    again. Keeps: the database never commits with a dangling reference.
    """
    with engine.connect() as conn:
        raw = conn.connection.driver_connection if conn.dialect.name == "sqlite" else None
        if raw is not None:
            raw.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                yield conn
                if raw is not None:
                    dangling = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if dangling:
                        tables = sorted({str(row[0]) for row in dangling})
                        raise MigrationFailed(f"dangling references in {', '.join(tables)}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys = ON")


def alembic_config(migrations: Path = MIGRATIONS) -> Config:
    """An Alembic config pointing at the project's one migration history."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    return cfg


def head_revision(migrations: Path = MIGRATIONS) -> str:
    """The newest revision of the history."""
    head = ScriptDirectory.from_config(alembic_config(migrations)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def backup_sqlite(engine: Engine, dest_dir: Path, label: str) -> Path | None:
    """Copy a SQLite database with SQLite's online backup API (consistent even while in use).

    The copy holds the same ciphertexts as the original: nothing is decrypted. It is written
    under a temporary name, fsynced and renamed (:func:`contigo.safefile.atomic_file`), so a
    file under a backup's name is always complete; it and its folder are private (0600/0700).
    """
    db_path = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not db_path or not Path(db_path).exists():
        return None
    private_dir(dest_dir)
    remove_stale_partials(dest_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = dest_dir / f"contigo-{stamp}-{label}.sqlite3"
    with atomic_file(dest) as tmp:
        src = sqlite3.connect(db_path)
        try:
            out = sqlite3.connect(tmp)
            try:
                src.backup(out)
            finally:
                out.close()
        finally:
            src.close()
    return dest


def restore_sqlite(engine: Engine, backup: Path) -> None:
    """Put a backup taken by :func:`backup_sqlite` back in place of the engine's database, with
    SQLite's backup API (the WAL is handled by SQLite, not by copying files)."""
    engine.dispose()
    db_path = engine.url.database
    assert db_path
    src = sqlite3.connect(backup)
    try:
        out = sqlite3.connect(db_path)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    engine.dispose()


def upgrade(
    engine: Engine,
    backup_dir: Path | None = None,
    revision: str = "head",
    *,
    migrations: Path = MIGRATIONS,
) -> Path | None:
    """Bring the database to ``revision``; back it up first when it has data to lose.

    Migrates in one transaction, then checks that the database is at the target revision
    (SYNC.md §2.12 item 7). On any failure the backup is restored and :class:`MigrationFailed`
    raised, so the application refuses to start on a half-migrated database. Returns the
    backup's path, if one was taken (it is kept).
    """
    current = current_revision(engine)
    target = head_revision(migrations) if revision == "head" else revision
    if current == target:
        return None
    backup = None
    if backup_dir is not None and inspect(engine).get_table_names():
        backup = backup_sqlite(engine, backup_dir, f"before-{target[:12]}")
        log.info("backup taken before migration: %s", backup)
    cfg = alembic_config(migrations)
    try:
        with schema_change(engine) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        reached = current_revision(engine)
        if reached != target:
            raise MigrationFailed(f"database at {reached} after migrating, not {target}")
    except Exception as exc:
        log.error("migration to %s failed (%s)", target[:12], type(exc).__name__)
        if backup is not None:
            restore_sqlite(engine, backup)
            log.error("database restored from %s", backup)
        if isinstance(exc, MigrationFailed):
            raise
        raise MigrationFailed(f"migration to {target[:12]} failed: {type(exc).__name__}") from exc
    return backup


def downgrade(engine: Engine, revision: str) -> None:
    """Step the schema back (every migration has a real downgrade)."""
    cfg = alembic_config()
    with schema_change(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
