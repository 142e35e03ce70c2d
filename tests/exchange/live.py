"""A live sync world: a real central server process and real field instances, all provisioned
through the ``contigo`` command line.

The central is gunicorn on 127.0.0.1 serving ``wsgi:app`` in central mode over a fresh database
of a throwaway PostgreSQL cluster (:mod:`tests.pgserver`), initialised with ``contigo central
init``. Laptops are SQLite instance folders made with ``contigo init`` and enrolled with a code
from ``contigo device enrol``. Building the central takes seconds, so a test module builds it
once; each test isolates itself by enrolling its laptops at a site of its own (the change feed
is scoped by site).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.cli import main
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.persons import services as persons
from contigo.vault import get_vault
from sync.client.transport import RequestsTransport
from sync.models import OutboxOp
from sync.outbox import device_id
from tests.factories import CHILD, VISIT
from tests.pgserver import new_database, postgres_cluster

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "field-secret-horse"
ADMIN_PASSWORD = "central-admin-secret"
FAST = {"CONTIGO_SCRYPT_N": "1024"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secret_file(folder: Path, name: str, value: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(value + "\n")
    return str(path)


def one_line(result: Result) -> str:
    """The single line a failed command printed (click writes errors to stderr)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@dataclass
class Central:
    """The running central server and an in-process app over its database, for inspection."""

    url: str
    instance: Path
    db_url: str
    app: Flask
    pid: int = 0
    """The gunicorn master's process id (its workers are its children)."""

    def cli(self, *args: str) -> Result:
        env = {"CONTIGO_DATABASE_URL": self.db_url, **FAST}
        return CliRunner().invoke(main, ["--instance", str(self.instance), *args], env=env)

    def code(self, site: str, country: str = "CO") -> str:
        """A one-time enrolment code for ``site`` (created on the central, in ``country``, when
        new)."""
        result = self.cli("device", "enrol", "--site", site, "--country", country)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    def count(self, model: Any, *where: Any) -> int:
        with session_scope(self.app) as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@contextmanager
def central_server(folder: Path, *, keep: bool = False) -> Iterator[Central]:
    """Start PostgreSQL, initialise a central with the CLI and serve it with gunicorn.

    With ``keep``, the cluster lives in ``folder/pg`` and is kept: when ``folder`` already holds
    a central made so, it is restarted as it was (migrated to head), not made anew."""
    with postgres_cluster(folder / "pg" if keep else None) as cluster:
        inst = folder / "central"
        if keep and (inst / "made").exists():
            db_url = cluster.rsplit("/", 1)[0] + "/central"
            _migrate(inst, db_url)  # before gunicorn's two workers start
        else:
            db_url = _new_central(folder, inst, cluster)
            (inst / "made").touch()
        with gunicorn_central(folder / "central.log", inst, db_url) as (url, pid):
            app = create_app(
                {
                    "INSTANCE_PATH": str(inst),
                    "CONTIGO_MODE": "central",
                    "DATABASE_URL": db_url,
                    "IDLE_WATCH": False,
                }
            )
            try:
                yield Central(url=url, instance=inst, db_url=db_url, app=app, pid=pid)
            finally:
                get_vault(app).lock()
                app.extensions["contigo.engine"].dispose()


@contextmanager
def gunicorn_central(
    log_path: Path, inst: Path, db_url: str, **env: str
) -> Iterator[tuple[str, int]]:
    """Serve the central of ``inst`` over ``db_url`` with gunicorn (two workers: requests of
    one sync run land on different processes), with ``env`` added to its environment; yields
    its URL and master pid once it answers. Its errors go to ``log_path``, for a failed run."""
    port = free_port()
    environ = {
        **os.environ,
        "CONTIGO_MODE": "central",
        "CONTIGO_INSTANCE": str(inst),
        "CONTIGO_DATABASE_URL": db_url,
        "CONTIGO_ALLOWED_HOSTS": '["127.0.0.1"]',
        **env,
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=log,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_serving(url, proc)
            yield url, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _new_central(folder: Path, inst: Path, cluster: str) -> str:
    db_url = new_database(cluster, "central")
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
            secret_file(folder, "admin-pw", ADMIN_PASSWORD),
        ],
        env={"CONTIGO_DATABASE_URL": db_url, **FAST},
    )
    assert result.exit_code == 0, result.output
    return db_url


def _migrate(inst: Path, db_url: str) -> None:
    config = {"INSTANCE_PATH": str(inst), "CONTIGO_MODE": "central", "DATABASE_URL": db_url}
    create_app(config | {"IDLE_WATCH": False}).extensions["contigo.engine"].dispose()


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes]) -> None:
    with requests.Session() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited")
            try:
                if http.get(url + "/login", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not answer")


@dataclass
class Laptop:
    """A field instance made and enrolled through the CLI, plus an in-process, unlocked app
    over the same folder for driving services."""

    instance: Path
    password_file: str
    app: Flask

    def cli(self, *args: str) -> Result:
        env: dict[str, str | None] = {"CONTIGO_DATABASE_URL": None, "CONTIGO_MODE": None, **FAST}
        return CliRunner().invoke(main, ["--instance", str(self.instance), *args], env=env)

    def sync(self) -> Result:
        return self.cli("sync", "--as", "sup", "--as-password-file", self.password_file)

    @property
    def device_id(self) -> str:
        with session_scope(self.app) as s:
            return device_id(s)

    def outbox(self) -> list[OutboxOp]:
        with session_scope(self.app) as s:
            rows = list(s.scalars(select(OutboxOp).order_by(OutboxOp.local_seq)))
            s.expunge_all()
            return rows

    def close(self) -> None:
        get_vault(self.app).lock()
        self.app.extensions["contigo.engine"].dispose()


def make_laptop(folder: Path, site: str, country: str = "CO") -> Laptop:
    """``contigo init`` a field instance at ``site`` (in ``country``) and open it in-process,
    unlocked."""
    pw = secret_file(folder, "pw", PASSWORD)
    inst = folder / "instance"
    result = CliRunner().invoke(
        main,
        [
            *("--instance", str(inst), "init", "--site-code", site, "--site-name", site),
            *("--country", country, "--username", "sup", "--language", "en"),
            *("--password-file", pw),
        ],
        env={"CONTIGO_DATABASE_URL": None, "CONTIGO_MODE": None, **FAST},
    )
    assert result.exit_code == 0, result.output
    app = create_app({"INSTANCE_PATH": str(inst), "IDLE_WATCH": False, "TESTING": True})
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
        get_vault(app).load_index_key(s)
        get_vault(app).build_name_index(s)
    return Laptop(instance=inst, password_file=pw, app=app)


def enrol(laptop: Laptop, central: Central, site: str, country: str = "CO") -> Result:
    code = central.code(site, country)
    return laptop.cli(
        "enrol",
        "--central",
        central.url,
        "--code",
        code,
        "--as",
        "sup",
        "--as-password-file",
        laptop.password_file,
    )


def transport(laptop: Laptop) -> RequestsTransport:
    """A real HTTP transport signed with the laptop's key (close its session when done)."""
    from contigo.exchange.laptop.client import signing_key

    dev, url, key = signing_key(laptop.app)
    return RequestsTransport(url, dev, key)


def _sup(s: Session) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


def register_child(app: Flask) -> str:
    """A child with a name of its own: the central server is shared by a module's tests, and
    the same name and birth date at two sites rightly opens a possible-duplicate review."""
    given = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8)).capitalize()
    data = {**CHILD, "given_names": given}
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        return persons.register(s, get_vault(app), actor, actor.home_site_id, data).id


def record_visit(app: Flask, person_id: str, days_ago: int = 1) -> str:
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        data = {**VISIT, "occurred_on": date.today() - timedelta(days=days_ago)}
        return encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data).id


def encounter_ids(app: Flask, person_id: str) -> list[str]:
    """Encounter ids of a person, sorted, duplicates kept (so a duplicate would show)."""
    with session_scope(app) as s:
        return sorted(s.scalars(select(Encounter.id).where(Encounter.person_id == person_id)))


def site_for(request: Any, prefix: str = "T") -> str:
    """A site of the running test's own: the change feed is scoped by site, so the tests of a
    module sharing one central do not mix."""
    return f"{prefix}-" + hashlib.sha256(request.node.name.encode()).hexdigest()[:8].upper()


@contextmanager
def enrolled_laptops(folder: Path, central: Central) -> Iterator[Callable[..., Laptop]]:
    """A factory of laptops ``make(name, site)`` (or ``make(name, site, country)``, default
    Colombia), each made with ``contigo init`` and enrolled with ``central`` through the CLI;
    all closed when the block ends."""
    made: list[Laptop] = []

    def _make(name: str, site: str, country: str = "CO") -> Laptop:
        laptop = make_laptop(folder / name, site, country)
        made.append(laptop)
        result = enrol(laptop, central, site, country)
        assert result.exit_code == 0, result.output
        return laptop

    try:
        yield _make
    finally:
        for laptop in made:
            laptop.close()


def module_central(label: str) -> Any:
    """A module-scoped fixture ``central``: one gunicorn central on PostgreSQL shared by the
    module's tests (each test keeps to sites of its own, :func:`site_for`). Assign it to the
    module's ``central``."""

    @pytest.fixture(scope="module")
    def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
        with central_server(tmp_path_factory.mktemp(label)) as server:
            yield server

    return central


def site_laptops(prefix: str = "T") -> Any:
    """A fixture ``laptops``: ``laptops(name)`` makes and enrols a laptop at the test's own site
    (one site per test, named with ``prefix``). Assign it to the module's ``laptops``."""

    @pytest.fixture
    def laptops(
        tmp_path: Path, central: Central, request: pytest.FixtureRequest
    ) -> Iterator[Callable[[str], Laptop]]:
        site = site_for(request, prefix)
        with enrolled_laptops(tmp_path, central) as make:
            yield lambda name: make(name, site)

    return laptops
