"""A throwaway PostgreSQL 15 cluster for tests of the central side.

PostgreSQL refuses to run as root, so the cluster is created and started as the ``postgres`` user
(``runuser``) in a temporary folder, listening on a free loopback port only, with trust auth for
local test connections. It is stopped and deleted at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*cmd: str) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return list(cmd)


@contextmanager
def postgres_cluster(keep: Path | None = None) -> Iterator[str]:
    """Start a cluster and yield a SQLAlchemy URL for a fresh database on it.

    With ``keep`` (a folder), the cluster lives there and is kept when stopped: a later call
    with the same folder restarts it with its databases (for benchmarks that reuse a load)."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    root = keep if keep is not None else Path(tempfile.mkdtemp(prefix="contigo-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    existing = (data / "PG_VERSION").exists()
    shutil.chown(root, "postgres") if os.geteuid() == 0 else None
    port = _free_port()
    if not existing:
        subprocess.run(
            _as_postgres(
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ),
            check=True,
            capture_output=True,
        )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        for _ in range(50):
            ready = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            time.sleep(0.1)
        if not existing:
            subprocess.run(
                [
                    str(PG_BIN.parent / "bin" / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "contigo",
                ],
                check=True,
                capture_output=True,
            )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/contigo"
    finally:
        mode = "immediate" if keep is None else "fast"  # a kept cluster stops cleanly
        subprocess.run(
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", mode, "stop"),
            capture_output=True,
        )
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)


def new_database(url: str, name: str) -> str:
    """Create an empty database ``name`` on the cluster of ``url``; returns its URL."""
    import psycopg

    admin = url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"
