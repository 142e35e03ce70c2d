"""Schema upgrades through Alembic, with a backup of a laptop's database taken first.

Databases are only ever built by the migrations (never ``create_all``); the same history serves
both modes and both database engines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from contigo.db import cipher_key_of, is_plain_sqlite
from contigo.errors import Locked
from contigo.safefile import atomic_file, private_dir, remove_stale_partials
from sync.client import deferral

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


def _open(path: Path | str, key: bytes | None) -> Any:
    """A raw connection to a SQLite file: SQLCipher keyed with ``key``, or plain.

    Always through ``sqlcipher3``, plain files too: the app's engine opens the laptop's file
    with it, and two SQLite libraries in one process do not see each other's POSIX locks (one
    closing its descriptor drops the other's), which loses writes or fails with a disk I/O
    error."""
    import sqlcipher3

    conn = sqlcipher3.connect(str(path))
    if key is not None:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    return conn


def _file_key(engine: Engine, path: Path) -> bytes | None:
    """The SQLCipher key of the engine's file (``None`` for a plain file)."""
    key = cipher_key_of(engine)
    return None if key is None or is_plain_sqlite(path) else key()


def backup_sqlite(engine: Engine, dest_dir: Path, label: str) -> Path | None:
    """Copy a SQLite database with SQLite's online backup API (consistent even while in use).

    The copy holds the same ciphertexts as the original: nothing is decrypted (a laptop's
    SQLCipher database is copied page by page under its own key, so the copy is as encrypted).
    It is written under a temporary name, fsynced and renamed
    (:func:`contigo.safefile.atomic_file`), so a file under a backup's name is always complete;
    it and its folder are private (0600/0700).
    """
    db_path = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not db_path or not Path(db_path).exists():
        return None
    private_dir(dest_dir)
    remove_stale_partials(dest_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = dest_dir / f"contigo-{stamp}-{label}.sqlite3"
    try:
        key = _file_key(engine, Path(db_path))
    except Locked:  # a locked laptop: its encrypted file and WAL, copied as they are
        _copy_files(Path(db_path), dest)
        return dest
    with atomic_file(dest) as tmp:
        _copy(Path(db_path), tmp, key)
    return dest


def restore_sqlite(engine: Engine, backup: Path) -> None:
    """Put a backup taken by :func:`backup_sqlite` back in place of the engine's database, with
    SQLite's backup API (the WAL is handled by SQLite, not by copying files)."""
    engine.dispose()
    db_path = engine.url.database
    assert db_path
    key = _file_key(engine, backup)
    src = _open(backup, key)
    try:
        out = _open(db_path, key)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    engine.dispose()


def encrypt_database(path: Path, key: bytes, backup_dir: Path | None) -> None:
    """Convert a laptop's plain SQLite database to SQLCipher under ``key`` (a raw 256-bit key).

    The plain file is backed up first (when ``backup_dir`` is given); the whole database is
    exported (``sqlcipher_export``) into a new encrypted file beside it, which is checked
    (``PRAGMA integrity_check`` and the same row count in every table) before it replaces the
    plain one by an atomic rename. On any failure the plain file is left as it was (and the
    backup restored over it), and :class:`MigrationFailed` is raised. After success the plain
    backup is deleted: it would be the very plaintext this step removes. Nobody else may have
    the file open (the caller disposes its engine first).
    """
    tmp = path.with_name(path.name + ".encrypting")
    for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        stale.unlink(missing_ok=True)
    backup: Path | None = None
    if backup_dir is not None:
        backup_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = backup_dir / f"contigo-{stamp}-before-encryption.sqlite3"
        _copy(path, backup, None)
    try:
        import sqlcipher3

        plain = sqlcipher3.connect(str(path), isolation_level=None)
        try:
            plain.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            counts = _row_counts(plain)
        finally:
            plain.close()
        src = sqlcipher3.connect(str(path), isolation_level=None)
        try:
            src.execute(f"ATTACH DATABASE '{_quoted(tmp)}' AS enc KEY \"x'{key.hex()}'\"")
            src.execute("SELECT sqlcipher_export('enc')")
            version = src.execute("PRAGMA user_version").fetchone()[0]
            src.execute(f"PRAGMA enc.user_version = {int(version)}")
            src.execute("DETACH DATABASE enc")
        finally:
            src.close()
        enc = _open(tmp, key)
        try:
            if enc.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise MigrationFailed("the encrypted copy failed its integrity check")
            if _row_counts(enc) != counts:
                raise MigrationFailed("the encrypted copy does not hold every row")
            enc.execute("PRAGMA journal_mode=WAL")
        finally:
            enc.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            side.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        log.error("encrypting the database failed (%s)", type(exc).__name__)
        if backup is not None and is_plain_sqlite(backup) and not is_plain_sqlite(path):
            _copy(backup, path, None)
        if isinstance(exc, MigrationFailed):
            raise
        raise MigrationFailed(f"encrypting the database failed: {type(exc).__name__}") from exc
    if backup is not None:
        backup.unlink(missing_ok=True)
    log.info("database encrypted with SQLCipher")


def _copy_files(src: Path, dest: Path) -> None:
    """Copy an encrypted database and its WAL byte for byte (no key: nothing is decrypted).
    A locked laptop has no key to write with, so the pair is at rest; a copy taken while
    another (unlocked) process wrote is retried until the pair stayed the same throughout."""
    import shutil

    sides = (Path(f"{src}-wal"), Path(f"{dest}-wal"))

    def stamp() -> tuple[tuple[int, int], ...]:
        return tuple(
            (p.stat().st_size, p.stat().st_mtime_ns) if p.exists() else (0, 0)
            for p in (src, sides[0])
        )

    for _attempt in range(20):
        before = stamp()
        if sides[0].exists():
            with atomic_file(sides[1]) as tmp:
                shutil.copyfile(sides[0], tmp)
        with atomic_file(dest) as tmp:  # the database last: its name means the pair is whole
            shutil.copyfile(src, tmp)
        if stamp() == before:
            return
    raise MigrationFailed("the database kept changing while it was copied")


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _copy(src_path: Path, dest_path: Path, key: bytes | None) -> None:
    src = _open(src_path, key)
    try:
        out = _open(dest_path, key)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()


def _row_counts(conn: Any) -> dict[str, int]:
    tables = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}  # noqa: S608 (names from sqlite_master)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_database(app: Flask) -> None:
    """What a laptop does when its master key arrives (``Vault`` unlock callback): a plain
    database left by an older version is converted to SQLCipher (backed up first, restored on
    failure), the schema is migrated (when ``AUTO_MIGRATE``), and the keystore is marked as
    belonging to an encrypted database and filled from it (users' copies, recovery copy)."""
    from contigo.db import session_scope
    from contigo.errors import DatabaseDamaged
    from contigo.keystore import Keystore, mark_dirty
    from contigo.vault import get_vault

    engine: Engine = app.extensions["contigo.engine"]
    path = Path(engine.url.database or "")
    instance = Path(app.instance_path)
    backups = instance / "backups" if app.config["BACKUP_BEFORE_MIGRATE"] else None
    keystore = Keystore.load(instance)
    if is_plain_sqlite(path):
        if keystore.encrypted_db:
            raise DatabaseDamaged()
        engine.dispose()
        encrypt_database(path, get_vault(app).database_key(), backups)
        engine.dispose()
    if app.config.get("AUTO_MIGRATE", True):
        upgrade(engine, backups)  # (which builds any index a cut first pull left out, first)
    else:
        restore_indexes(engine)
    if not keystore.encrypted_db:
        keystore.encrypted_db = True
        keystore.save()
        with session_scope(app) as s:
            mark_dirty(s)


def restore_indexes(engine: Engine) -> tuple[str, ...]:
    """Build again the indexes a first pull left out and did not finish (a laptop cut or killed
    mid-pull): whatever opens or migrates the database gets every index of its schema, and
    only a pull runs without them (:mod:`sync.client.deferral`). Returns their names."""
    with engine.begin() as conn:
        made = deferral.restore(conn)
    if made:
        log.info("indexes a cut first pull left out built again: %s", ", ".join(made))
    return made


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
    restore_indexes(engine)  # a migration may touch them: it finds the schema it expects
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
    restore_indexes(engine)
    cfg = alembic_config()
    with schema_change(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
