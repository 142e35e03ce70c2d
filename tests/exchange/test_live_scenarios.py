"""Scenarios that need real processes: a gunicorn central (two workers) over PostgreSQL and
laptops over real HTTP (SYNC.md §5: S6 with a connection cut mid-request, S22 on PostgreSQL)."""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from contigo.db import session_scope
from contigo.exchange.laptop.client import engine_for, run_sync
from sync.client.transport import RequestsTransport, Response, TransportError
from sync.models import SyncChange, SyncOp
from sync.protocol import sign_request
from tests.exchange.live import (
    Central,
    Laptop,
    encounter_ids,
    module_central,
    record_visit,
    register_child,
    site_laptops,
    transport,
)
from tests.exchange.world import PullLog, race

pytestmark = pytest.mark.slow


central = module_central("live-scenarios")


laptops = site_laptops("S")


class CutMidRequest:
    """Real HTTP, except that the first push is cut half-way through its body: the headers
    announce the whole body, half of it is written, then the connection closes."""

    def __init__(self, inner: RequestsTransport) -> None:
        self.inner = inner
        self.cut = False

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        if path != "/sync/v1/push" or self.cut:
            return self.inner.send(method, path, body)
        self.cut = True
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = sign_request(
            self.inner.private_key,
            method,
            path,
            raw,
            time.time_ns() // 1_000_000,
            secrets.token_urlsafe(18),
            device_id=self.inner.device_id,
        )
        url = urlsplit(self.inner.base_url)
        head = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head += ["Content-Type: application/json", f"Content-Length: {len(raw)}", "", ""]
        with socket.create_connection((url.hostname, url.port or 80), timeout=10) as sock:
            sock.sendall("\r\n".join(head).encode() + raw[: len(raw) // 2])
        raise TransportError("connection dropped mid-request")


def test_s6_a_connection_cut_mid_request_applies_nothing_and_the_retry_applies_once(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = laptops("a")
    pid = register_child(a.app)
    visits = [record_visit(a.app, pid, days) for days in (3, 2, 1)]
    op_ids = [op.op_id for op in a.outbox()]
    http = transport(a)
    cut = CutMidRequest(http)
    with pytest.raises(TransportError):
        run_sync(a.app, cut)
    time.sleep(0.5)  # the worker gives up on the half body
    assert central.count(SyncOp, SyncOp.op_id.in_(op_ids)) == 0
    assert central.count(SyncChange, SyncChange.person_id == pid) == 0
    assert [op.op_id for op in a.outbox()] == op_ids

    report = run_sync(a.app, cut)
    http.session.close()

    assert report.acknowledged == len(op_ids) and a.outbox() == []
    with session_scope(central.app) as s:
        rows = list(s.scalars(select(SyncOp).where(SyncOp.op_id.in_(op_ids))))
    assert sorted(r.op_id for r in rows) == sorted(op_ids)
    assert {r.status for r in rows} == {"applied"}
    assert central.count(SyncChange, SyncChange.person_id == pid) == len(op_ids)
    assert encounter_ids(central.app, pid) == sorted(visits)


def test_s22_concurrent_pushes_on_postgresql_are_pulled_in_full_with_no_seq_skipped(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a, b, c = laptops("a"), laptops("b"), laptops("c")
    pids = []
    for lap in (a, b):
        pid = register_child(lap.app)
        pids.append(pid)
        for days in range(1, 11):
            record_visit(lap.app, pid, days)
    https = [transport(lap) for lap in (a, b, c)]
    engines = []
    for lap, http in zip((a, b), https, strict=False):
        engine = engine_for(lap.app, http)
        engine.batch_size = 2
        engines.append((lap.app, engine))
    log = PullLog(https[2])

    race(engines, (c.app, engine_for(c.app, log)))
    for http in https:
        http.session.close()

    with session_scope(central.app) as s:
        committed = list(
            s.scalars(
                select(SyncChange.server_seq)
                .where(SyncChange.person_id.in_(pids))
                .order_by(SyncChange.server_seq)
            )
        )
    assert len(committed) == 22
    assert log.seqs() == committed  # in order, each once, none skipped
    assert a.outbox() == b.outbox() == []
    for pid in pids:
        assert encounter_ids(c.app, pid) == encounter_ids(central.app, pid)
