"""Killing the server mid-save loses nothing it acknowledged, and never corrupts the database.

The real ``contigo serve`` runs as a subprocess over a real instance (made by ``contigo init``).
Two threads save visits (and now and then register a child) through the JSON API as fast as
they can; once the round's first visit is acknowledged (the event the kill must interrupt, so a
slow start on a loaded machine cannot make a round prove nothing), the main thread SIGKILLs the
server at a random moment; then the server is started
again, unlocked with a new token, and the saving goes on. After several rounds every save that
got a 2xx answer must be there, and ``PRAGMA integrity_check`` must say ``ok``.

A 2xx answer is a promise: the request boundary commits before the response is sent, and SQLite
runs in WAL mode with ``synchronous=FULL``. SIGKILL stops the process at an arbitrary point (in
the middle of a write, a commit or a checkpoint); it cannot drop the operating system's page
cache, so the fsync half of the promise is SQLite's to keep, not something this test can show.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import laptop_database_key, open_database_file

PASSWORD = "power cut password"
ROUNDS = 6
FIRST_SAVE_TIMEOUT = 120  # seconds: a loaded machine is slow, but a save must come
WRITERS = 2  # concurrent savers, as on a laptop shared by two health workers
BORN = (date.today() - timedelta(days=500)).isoformat()

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _contigo() -> list[str]:
    script = Path(sys.executable).with_name("contigo")
    return [str(script)] if script.exists() else [sys.executable, "-m", "contigo.cli"]


@dataclass
class Server:
    """One instance folder and, at any time, at most one server process over it."""

    instance: Path
    port: int
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [*_contigo(), "--instance", str(self.instance), "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-2000:]
            try:
                if requests.get(f"{self.base}/login", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the server did not come up")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no cleanup, no checkpoint."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def token(self) -> dict[str, str]:
        """A bearer header; on the freshly started (locked) server this also unlocks it."""
        body = {"username": "sup", "password": PASSWORD}
        response = requests.post(f"{self.base}/api/v1/auth/token", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}


@dataclass
class Acknowledged:
    """What the server said it saved: person ids, and encounter ids with their person.

    ``saved`` is set at every acknowledged visit; a round clears it before its writers start, so
    it marks the round's first acknowledged visit: the event the kill must come after (a visit,
    not a registration: the first visit after a start is the slow one, loading the clinical
    engine, and a kill before it would test only registrations).
    """

    persons: list[str] = field(default_factory=list)
    encounters: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    saved: threading.Event = field(default_factory=threading.Event)


def new_server(folder: Path) -> Server:
    """A fresh instance in ``folder`` (made by ``contigo init``, as in the field), not started."""
    secret = folder / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    env = {**os.environ, "CONTIGO_SCRYPT_N": "1024"}  # cheap key derivation: a test
    env.pop("CONTIGO_INSTANCE", None)
    instance = folder / "instance"
    init = [*_contigo(), "--instance", str(instance), "init", "--site-code", "CO-NEC",
            "--site-name", "Necoclí", "--country", "CO", "--username", "sup",
            "--password-file", str(secret)]  # fmt: skip
    done = subprocess.run(init, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return Server(instance, _free_port(), folder / "server.log", env)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = new_server(tmp_path)
    yield srv
    if srv.process is not None:
        srv.kill()


def _register(srv: Server, headers: dict[str, str], n: int) -> requests.Response:
    body = {"kind": "child", "given_names": f"Prueba {n}", "family_names": "Corte De Luz",
            "birth_date": BORN, "sex": "F"}  # fmt: skip
    return requests.post(f"{srv.base}/api/v1/persons", json=body, headers=headers, timeout=10)


def _save_until_killed(srv: Server, headers: dict[str, str], acked: Acknowledged) -> None:
    """Save visits (every tenth save registers a child first) until the server goes away."""
    http = requests.Session()
    n = 0
    try:
        while True:
            n += 1
            if n % 10 == 1 or not acked.persons:
                made = _register(srv, headers, n)
                if made.status_code != 201:
                    acked.refused.append(f"{made.status_code} {made.text[:200]}")
                    return
                acked.persons.append(made.json()["id"])
            person = acked.persons[-1]
            visit: dict[str, Any] = {
                "occurred_on": date.today().isoformat(),
                "weight_kg": 9.5 + n % 10 / 10,
                "lenhei_cm": 78.0,
                "measure": "l",
                "muac_mm": 130,
                "notes": f"save {n}",
            }
            url = f"{srv.base}/api/v1/persons/{person}/encounters"
            saved = http.post(url, json=visit, headers=headers, timeout=10)
            if saved.status_code != 201:
                acked.refused.append(f"{saved.status_code} {saved.text[:200]}")
                return
            acked.encounters.append((person, saved.json()["id"]))
            acked.saved.set()
    except requests.Timeout:
        raise  # a live server that stops answering is a bug, not a power cut
    except requests.RequestException:
        return  # the server was killed mid-request: this save was never acknowledged


def _check_file(instance: Path) -> None:
    """Open the database file directly (as the next start would) and check its structure."""
    key = laptop_database_key(instance, password=PASSWORD)
    db = open_database_file(instance / "contigo.sqlite3", key)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()


def kill_round(server: Server, acked: Acknowledged, rng: random.Random) -> int:
    """One round: start the server, save from :data:`WRITERS` threads, wait for the round's
    first acknowledged visit, SIGKILL the server a random moment later, then check the file.

    Returns how many saves this round acknowledged. Waiting for an acknowledgement first makes
    every round prove something, however slow the machine is to start the server and unlock.
    """
    before = len(acked.encounters) + len(acked.persons)
    server.start()
    headers = server.token()
    acked.saved.clear()
    writers = [
        threading.Thread(target=_save_until_killed, args=(server, headers, acked))
        for _ in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    first = acked.saved.wait(timeout=FIRST_SAVE_TIMEOUT)
    if first:
        time.sleep(rng.uniform(0.0, 1.0))
    server.kill()
    for writer in writers:
        writer.join(timeout=60)
        assert not writer.is_alive()
    assert first, f"no visit acknowledged within {FIRST_SAVE_TIMEOUT} s: {acked.refused}"
    assert acked.refused == [], f"saves refused: {acked.refused}"
    _check_file(server.instance)
    return len(acked.encounters) + len(acked.persons) - before


def lost_saves(server: Server, acked: Acknowledged) -> tuple[list[str], list[str]]:
    """Start the server again and list the acknowledged persons and encounters it lacks."""
    server.start()
    headers = server.token()
    http = requests.Session()
    persons = [
        person
        for person in acked.persons
        if http.get(
            f"{server.base}/api/v1/persons/{person}", headers=headers, timeout=30
        ).status_code
        != 200
    ]
    encounters: list[str] = []
    for person in sorted({p for p, _ in acked.encounters}):
        url = f"{server.base}/api/v1/persons/{person}/encounters"
        listed = http.get(url, headers=headers, timeout=30)
        assert listed.status_code == 200, listed.text[:200]
        present = {e["id"] for e in listed.json()["encounters"]}
        encounters += sorted({e for p, e in acked.encounters if p == person} - present)
    return persons, encounters


def test_acknowledged_saves_survive_sigkill(server: Server) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acked = Acknowledged()
    for round_no in range(ROUNDS):
        saves = kill_round(server, acked, rng)
        assert saves > 0, f"round {round_no}: nothing acknowledged before the kill (seed {seed})"

    assert len(acked.encounters) >= ROUNDS, f"too few saves to prove anything (seed {seed})"
    lost_persons, lost_encounters = lost_saves(server, acked)
    assert lost_persons == [], f"acknowledged persons lost (seed {seed})"
    assert lost_encounters == [], f"acknowledged saves lost (seed {seed})"
