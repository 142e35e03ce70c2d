"""Central restored from a backup (issue 17.1, SYNC.md S28), with real processes: gunicorn over
PostgreSQL, laptops synced through the ``contigo`` command line, ``pg_dump``/``pg_restore``.

Two laptops sync; central is dumped; both record and sync more, and one receives a transfer;
central is restored from the dump, the runbook's ``contigo central restored`` is run, and central
restarted; both laptops sync twice. Then central, both laptops and a third laptop enrolled fresh
hold the same state, every visit exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.persons.models import Person
from sync.client.incarnation import INCARNATION_KEY
from sync.models import AckedOp, Incarnation, SyncOp
from sync.outbox import get_state
from tests.exchange.live import (
    ROOT,
    Central,
    Laptop,
    _wait_until_serving,
    central_server,
    enrolled_laptops,
    record_visit,
    register_child,
)
from tests.exchange.test_transfers_live import (
    decide,
    encounter_rows,
    owner_code,
    request_transfer,
    state,
)
from tests.pgserver import PG_BIN

pytestmark = pytest.mark.slow
SA, SB = "RA-1", "RB-1"


def _pg(central: Central, tool: str, *args: str) -> None:
    url = central.db_url.replace("postgresql+psycopg://", "postgresql://")
    host_port, db = url.split("@", 1)[1].rsplit("/", 1)
    host, port = host_port.split(":")
    cmd = [str(PG_BIN / tool), "-h", host, "-p", port, "-U", "postgres", *args]
    cmd += ["-d", db] if tool == "pg_restore" else [db]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def _stop(pid: int) -> None:
    """Stop a gunicorn master this test started and wait until it is gone (or a zombie the
    fixture reaps)."""
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return
        if "State:\tZ" in status:
            return
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not stop")


@contextmanager
def _serve(central: Central, log: Path) -> Iterator[None]:
    """Serve ``central``'s database again on the same address, as a restart does."""
    env = {
        **os.environ,
        "CONTIGO_MODE": "central",
        "CONTIGO_INSTANCE": str(central.instance),
        "CONTIGO_DATABASE_URL": central.db_url,
        "CONTIGO_ALLOWED_HOSTS": '["127.0.0.1"]',
    }
    bind = central.url.removeprefix("http://")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", bind, "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
        try:
            _wait_until_serving(central.url, proc)
            yield
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def _synced(laptop: Laptop) -> None:
    result = laptop.sync()
    assert result.exit_code == 0, result.output


def _visits(app: object) -> list[str]:
    """Every encounter row, duplicates kept."""
    with session_scope(app) as s:  # type: ignore[arg-type]
        return sorted(s.scalars(select(Encounter.id)))


def _incarnation_of(laptop: Laptop) -> str | None:
    with session_scope(laptop.app) as s:
        return get_state(s, INCARNATION_KEY)


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    with central_server(tmp_path) as server:
        yield server


def test_s28_restore_from_dump_loses_no_visit_and_duplicates_none(
    central: Central, tmp_path: Path
) -> None:
    with enrolled_laptops(tmp_path / "laptops", central) as make:
        a, b = make("a", SA), make("b", SB)
        # Before the backup.
        p1 = register_child(a.app)
        p2 = register_child(b.app)
        before = [record_visit(a.app, p1, 5), record_visit(b.app, p2, 5)]
        for laptop in (a, b, a):
            _synced(laptop)
        dump = tmp_path / "central.dump"
        _pg(central, "pg_dump", "-Fc", "-f", str(dump))
        with session_scope(central.app) as s:
            first = s.scalar(select(Incarnation.incarnation_id))

        # After the backup: more visits, a new child, and P1 transferred from A to B.
        p3 = register_child(a.app)
        after = [record_visit(a.app, p1, 2), record_visit(a.app, p3, 2), record_visit(b.app, p2, 2)]
        tid = request_transfer(a.app, p1, SB, "family moved")
        _synced(a)
        _synced(b)  # B receives the request and P1's history
        decide(b.app, tid)
        after.append(record_visit(b.app, p1, 1))  # B's first visit of its new person
        _synced(b)
        _synced(a)
        assert owner_code(central.app, p1) == SB
        with session_scope(central.app) as s:
            lost = set(s.scalars(select(SyncOp.op_id)))

        # The restore, by the runbook: stop central, pg_restore, `central restored`, start.
        _stop(central.pid)
        central.app.extensions["contigo.engine"].dispose()
        _pg(central, "pg_restore", "--clean", "--if-exists", "--no-owner", str(dump))
        with session_scope(central.app) as s:
            assert owner_code(central.app, p1) == SA  # the transfer is gone with the backup
            assert len(lost - set(s.scalars(select(SyncOp.op_id)))) > 0
        restored = central.cli("central", "restored")
        assert restored.exit_code == 0, restored.output
        with _serve(central, tmp_path / "central.log"):
            for laptop in (a, b, a, b):
                _synced(laptop)
            c = make("c", SB)
            _synced(c)
            _synced(c)

            with session_scope(central.app) as s:
                now = s.scalar(select(Incarnation).order_by(Incarnation.number.desc()).limit(1))
                assert now is not None and now.number == 2 and now.incarnation_id != first
                assert now.reason == "restored"
                # Every op acknowledged before the restore is on central again, once.
                assert lost <= set(s.scalars(select(SyncOp.op_id)))
                counted = s.scalar(select(func.count()).select_from(Encounter))
            assert (
                _incarnation_of(a) == _incarnation_of(b) == _incarnation_of(c) == now.incarnation_id
            )

            visits = sorted(before + after)
            assert _visits(central.app) == visits and counted == len(visits)
            # Same state everywhere: owners, the transfer, each person's visits, once each.
            for app in (central.app, a.app, b.app, c.app):
                assert owner_code(app, p1) == SB
                assert state(app, tid) == "accepted"
                assert encounter_rows(app, p1) == encounter_rows(central.app, p1)
            for app in (central.app, b.app, c.app):
                assert encounter_rows(app, p2) == encounter_rows(central.app, p2)
            assert encounter_rows(a.app, p3) == encounter_rows(central.app, p3)
            assert len(encounter_rows(central.app, p1)) == 3
            with session_scope(c.app) as s:
                assert set(s.scalars(select(Person.id))) == {p1, p2}
            for laptop in (a, b):
                assert laptop.outbox() == []
                with session_scope(laptop.app) as s:  # acknowledged again, kept again
                    assert s.scalar(select(func.count()).select_from(AckedOp)) > 0
