"""A new laptop's first pull cut half-way over real HTTP resumes where it stopped (issue 16).

The central is gunicorn (two workers) over PostgreSQL; the laptop pulls through the real
transport. The cut is made after an event, never after a delay: before asking for page ``k`` the
transport waits until the laptop has *committed* page ``k - 1`` (its stored cursor is the one
page ``k - 1`` named), and at half the pages it refuses the connection for real (the request
goes to a port nothing listens on). The laptop then holds exactly the first half of the feed
and its cursor; a plain ``run_sync`` finishes the pull from that cursor, and every side shows
the same record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.exchange.laptop.client import engine_for, run_sync
from contigo.persons.models import Person
from sync.client.engine import CURSOR_KEY, SyncReport
from sync.client.transport import RequestsTransport, Response, TransportError
from sync.models import SyncChange
from sync.outbox import get_state
from tests.exchange.live import (
    Central,
    Laptop,
    free_port,
    module_central,
    record_visit,
    register_child,
    site_laptops,
    transport,
)
from tests.exchange.world import visible_state

pytestmark = pytest.mark.slow

central = module_central("first-pull-resume")
laptops = site_laptops("R")

PAGE = 4


class CutAtHalf:
    """Real HTTP that, before each pull request after the first, waits for the laptop to have
    committed the page before it, and at page ``cut_at`` sends the request to a port where
    nothing listens (a real refused connection) instead of the central."""

    def __init__(self, inner: RequestsTransport, laptop: Laptop, cut_at: int) -> None:
        self.inner = inner
        self.laptop = laptop
        self.cut_at = cut_at
        self.cursors: list[str] = []  # next_cursor of each page received, in order
        self.seqs: list[list[int]] = []
        self.cut = False

    def stored_cursor(self) -> str | None:
        with session_scope(self.laptop.app) as s:
            return get_state(s, CURSOR_KEY)

    def _wait_for_commit(self, cursor: str) -> None:
        deadline = time.monotonic() + 60  # a bound against a hang, not the trigger
        while self.stored_cursor() != cursor:
            assert time.monotonic() < deadline, "the laptop never committed the page"
            time.sleep(0.01)

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        if not path.startswith("/sync/v1/pull"):
            return self.inner.send(method, path, body)
        page = len(self.cursors)
        if page:
            self._wait_for_commit(self.cursors[-1])
        if page == self.cut_at:
            self.cut = True
            dead = RequestsTransport(
                f"http://127.0.0.1:{free_port()}", self.inner.device_id, self.inner.private_key
            )
            try:
                return dead.send(method, path, body)
            finally:
                dead.session.close()
        resp = self.inner.send(method, path, body)
        if resp.status == 200:
            self.cursors.append(resp.body["next_cursor"])
            self.seqs.append([c["seq"] for c in resp.body["changes"]])
        return resp


def _count(laptop: Laptop, model: Any) -> int:
    with session_scope(laptop.app) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_first_pull_cut_at_half_resumes_from_its_cursor_and_ends_equal_to_central(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = laptops("a")
    for _ in range(6):
        pid = register_child(a.app)
        for days in (3, 2, 1):
            record_visit(a.app, pid, days)
    assert a.sync().exit_code == 0
    with session_scope(central.app) as s:
        site_id = s.scalar(select(Person.owning_site_id).limit(1))
        feed = list(s.scalars(select(SyncChange.server_seq).order_by(SyncChange.server_seq)))
    assert site_id is not None and len(feed) == 24
    pages = len(feed) // PAGE
    half = pages // 2

    b = laptops("b")
    http = transport(b)
    cutting = CutAtHalf(http, b, cut_at=half)
    engine = engine_for(b.app, cutting)
    with b.app.app_context():
        engine.hello()
        with pytest.raises(TransportError):
            engine.pull(SyncReport(), limit=PAGE)
    http.session.close()

    # Cut after exactly half the pages: those are applied and their cursor stored, no more.
    assert cutting.cut and len(cutting.cursors) == half
    assert cutting.stored_cursor() == cutting.cursors[-1]
    applied = [seq for page in cutting.seqs for seq in page]
    assert applied == feed[: half * PAGE]
    assert 0 < _count(b, Encounter) < 18

    resumed = RequestsTransport(http.base_url, http.device_id, http.private_key)
    log = CutAtHalf(resumed, b, cut_at=-1)  # the same recorder, never cutting
    report = run_sync(b.app, log)
    resumed.session.close()

    # The resumed pull started at the stored cursor: the rest of the feed, nothing twice.
    rest = [seq for page in log.seqs for seq in page]
    assert rest == feed[half * PAGE :]
    assert report.pulled == len(rest) and report.parked == 0
    assert _count(b, Person) == 6 and _count(b, Encounter) == 18
    central_state = visible_state(central.app)
    assert visible_state(b.app) == central_state == visible_state(a.app)
