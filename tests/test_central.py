"""Central mode: unlocked from its key file at start, on PostgreSQL, served by gunicorn."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from contigo import create_app
from contigo.cli import main
from contigo.exchange.central.keys import key_path
from contigo.vault import get_vault
from tests.pgserver import new_database, postgres_cluster


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture
def pg_url(pg_cluster: str, request: pytest.FixtureRequest) -> str:
    return new_database(pg_cluster, f"t_{request.node.name[:40]}".lower())


def _init_central(inst: Path, url: str, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("central-admin-secret")
    result = CliRunner().invoke(
        main,
        [
            "--instance",
            str(inst),
            "central",
            "init",
            "--admin",
            "root",
            "--country",
            "CO",
            "--password-file",
            str(pw),
        ],
        env={"CONTIGO_DATABASE_URL": url, "CONTIGO_SCRYPT_N": "1024"},
    )
    assert result.exit_code == 0, result.output


def test_central_unlocks_itself_from_a_private_key_file(tmp_path: Path, pg_url: str) -> None:
    inst = tmp_path / "central"
    _init_central(inst, pg_url, tmp_path)
    app = create_app(
        {
            "INSTANCE_PATH": str(inst),
            "CONTIGO_MODE": "central",
            "DATABASE_URL": pg_url,
            "IDLE_WATCH": False,
        }
    )
    assert get_vault(app).is_unlocked
    mode = stat.S_IMODE(os.stat(key_path(app)).st_mode)
    assert mode == 0o600
    app.extensions["contigo.engine"].dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_wsgi_serves_central_under_gunicorn(tmp_path: Path, pg_url: str) -> None:
    inst = tmp_path / "central-g"
    _init_central(inst, pg_url, tmp_path)
    port = _free_port()
    env = {
        **os.environ,
        "CONTIGO_MODE": "central",
        "CONTIGO_INSTANCE": str(inst),
        "CONTIGO_DATABASE_URL": pg_url,
        "CONTIGO_ALLOWED_HOSTS": '["127.0.0.1"]',
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "wsgi:app",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                resp = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
                break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer")
        assert resp.status_code == 200
        assert "Content-Security-Policy" in resp.headers
    finally:
        proc.terminate()
        proc.wait(timeout=10)
