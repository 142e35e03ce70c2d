"""Backups are atomic and private (issue 10.8).

A backup killed half-way must never leave a file under a backup's name that is not a complete
copy: the copy is written under a temporary name, fsynced, then renamed. The database, its WAL
and shared-memory files and every backup are readable by their owner only.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from contigo import create_app, migrate
from contigo.cli import main
from contigo.db import make_engine
from contigo.setup import initialise
from contigo.vault import get_vault
from tests.conftest import laptop_database_key, open_database_file

PASSWORD = "backup test password"
FILLER_ROWS = 1600  # x 64 KiB: a database big enough that copying it takes a while
POSIX = os.name == "posix"


def _contigo() -> list[str]:
    script = Path(sys.executable).with_name("contigo")
    return [str(script)] if script.exists() else [sys.executable, "-m", "contigo.cli"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _make_app(instance: Path) -> Flask:
    app = create_app(
        {"INSTANCE_PATH": str(instance), "SCRYPT_N": 2**10, "IDLE_WATCH": False, "TESTING": True}
    )
    initialise(
        app,
        site_code="CO-NEC",
        site_name="Necoclí",
        country="CO",
        elevation_m=5,
        username="sup",
        display_name="Supervisora",
        language="en",
        password=PASSWORD,
    )
    get_vault(app).lock()
    return app


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "instance"
    app = _make_app(folder)
    app.extensions["contigo.engine"].dispose()
    yield folder


def _key(instance: Path) -> bytes | None:
    """The laptop database's SQLCipher key, through the keystore as an unlock gets it."""
    return laptop_database_key(instance, password=PASSWORD)


def _fill(db_path: Path, key: bytes | None) -> None:
    """Add a table of incompressible filler so the copy is slow enough to be struck mid-way."""
    db = open_database_file(db_path, key)
    try:
        db.execute("CREATE TABLE test_filler (blob BLOB)")
        db.executemany("INSERT INTO test_filler VALUES (randomblob(65536))", [()] * FILLER_ROWS)
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def _complete(path: Path, key: bytes | None) -> bool:
    """Does ``path`` open (under the laptop's key) as a database holding every filler row and
    the instance's tables?"""
    db = open_database_file(path, key)  # as a restore would: read-write, a hot journal rolls back
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"test_filler", "users", "alembic_version"} <= tables:
            return False
        return bool(db.execute("SELECT count(*) FROM test_filler").fetchone()[0] == FILLER_ROWS)
    finally:
        db.close()


def _grown(folder: Path, threshold: int) -> Path | None:
    if not folder.is_dir():
        return None
    for entry in folder.iterdir():
        try:
            if entry.stat().st_size >= threshold:
                return entry
        except FileNotFoundError:
            continue
    return None


def test_a_backup_killed_half_way_leaves_no_file_under_a_backup_name(
    instance: Path, tmp_path: Path
) -> None:
    key = _key(instance)
    _fill(instance / "contigo.sqlite3", key)
    backups = instance / "backups"
    env = {**os.environ}
    env.pop("CONTIGO_INSTANCE", None)
    args = [*_contigo(), "--instance", str(instance), "backup"]
    with (tmp_path / "backup.log").open("wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
    try:
        # The event: the copy exists on disk and has grown (a quarter of the database).
        threshold = FILLER_ROWS * 65536 // 4
        deadline = time.monotonic() + 120
        struck: Path | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            struck = _grown(backups, threshold)
            if struck is not None:
                break
            time.sleep(0.002)
        assert struck is not None, "the copy never showed on disk before the command ended"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL, "the command ended before the strike"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    named = sorted(backups.glob("contigo-*-manual.sqlite3"))
    for path in named:
        assert _complete(path, key), f"{path.name} has a backup's name but is not a complete copy"
    # The next backup runs to completion and is complete.
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    named = sorted(backups.glob("contigo-*-manual.sqlite3"))
    assert named and all(_complete(p, key) for p in named)
    if POSIX:
        assert all(_mode(p) == 0o600 for p in named)


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
def test_the_database_its_wal_and_backups_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: files would be world-readable by default
    try:
        app = _make_app(tmp_path / "instance")
        engine = app.extensions["contigo.engine"]
        db_path = Path(engine.url.database)
        with engine.connect() as conn:  # an open connection keeps -wal and -shm on disk
            conn.exec_driver_sql("SELECT 1").fetchall()
            for suffix in ("", "-wal", "-shm"):
                path = Path(f"{db_path}{suffix}")
                assert path.exists(), path
                assert _mode(path) == 0o600, f"{path.name}: {oct(_mode(path))}"
        engine.dispose()
        result = CliRunner().invoke(main, ["--instance", str(tmp_path / "instance"), "backup"])
        assert result.exit_code == 0, result.output
        (copy,) = (tmp_path / "instance" / "backups").glob("contigo-*-manual.sqlite3")
        assert _mode(copy) == 0o600
        assert _mode(copy.parent) == 0o700
    finally:
        os.umask(old)


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
def test_an_existing_world_readable_database_is_made_private_on_start(tmp_path: Path) -> None:
    db_path = tmp_path / "old.sqlite3"
    sqlite3.connect(db_path).close()
    db_path.chmod(0o644)
    engine = make_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    assert _mode(db_path) == 0o600


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
def test_the_backup_before_a_migration_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE keepme (x INTEGER)")
        path = migrate.upgrade(engine, tmp_path / "backups")
        engine.dispose()
        assert path is not None and path.exists()
        assert _mode(path) == 0o600
        assert not [p for p in path.parent.iterdir() if p != path]  # no temporary left behind
    finally:
        os.umask(old)
