"""A new laptop's first pull cut half-way over real HTTP resumes where it stopped (issue 16).

The central is gunicorn (two workers) over PostgreSQL; the laptop pulls through the real
transport. The cut is made after an event, never after a delay: before asking for page ``k`` the
transport waits until the laptop has *committed* page ``k - 1`` (its stored cursor is the one
page ``k - 1`` named), and at half the pages it refuses the connection for real (the request
goes to a port nothing listens on). The laptop then holds exactly the first half of the feed
and its cursor; a plain ``run_sync`` finishes the pull from that cursor, and every side shows
the same record. (Waiting for each page's commit before asking for the next, that laptop's
groups of pages are of one page each: each group ends when the next page is late.)

The laptop applies pages in groups, one transaction a group (issue 16.1): three more cases cut
inside a group. A stop (the laptop killed) after the first group's commit, while the next page
is applied uncommitted, keeps exactly the first group; a refused page, or one that does not
parse (checked on the wire's thread), keeps the pages of the group before it. Either way the
resumed pull ends with every change once.
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
from sync.protocol import ProtocolError
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


def _refused(inner: RequestsTransport, method: str, path: str, body: Any | None) -> Response:
    """``inner``'s request sent to a port where nothing listens: a real refused connection."""
    dead = RequestsTransport(f"http://127.0.0.1:{free_port()}", inner.device_id, inner.private_key)
    try:
        return dead.send(method, path, body)
    finally:
        dead.session.close()


def _recorded(
    inner: RequestsTransport,
    method: str,
    path: str,
    body: Any | None,
    cursors: list[str],
    seqs: list[list[int]],
) -> Response:
    """``inner``'s answer, a page's cursor and change seqs noted in ``cursors`` and ``seqs``."""
    resp = inner.send(method, path, body)
    if resp.status == 200:
        cursors.append(resp.body["next_cursor"])
        seqs.append([c["seq"] for c in resp.body["changes"]])
    return resp


def _write_site(laptops: Callable[[str], Laptop]) -> Laptop:
    """A laptop at the test's site with 6 children of 3 visits each, synced (24 changes)."""
    a = laptops("a")
    for _ in range(6):
        pid = register_child(a.app)
        for days in (3, 2, 1):
            record_visit(a.app, pid, days)
    assert a.sync().exit_code == 0
    return a


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
            return _refused(self.inner, method, path, body)
        return _recorded(self.inner, method, path, body, self.cursors, self.seqs)


def _count(laptop: Laptop, model: Any) -> int:
    with session_scope(laptop.app) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_first_pull_cut_at_half_resumes_from_its_cursor_and_ends_equal_to_central(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = _write_site(laptops)
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


class Stopped(BaseException):
    """The laptop stopped (killed, powered off) in the middle of its pull: like a real stop, it
    is no failure the engine handles, and what was not committed is gone."""


class CutInGroup:
    """Real HTTP that cuts the pull inside a group of pages, after events, never after a delay.
    ``stop_at``: before asking for that page, wait until the laptop has committed its first
    group (its stored cursor is the one page ``committed - 1`` named), then stop the laptop
    (the pages received after the group are applied in the open group, uncommitted).
    ``refuse_at``: at that page, the request goes to a port where nothing listens (a real
    refused connection), while the pages before it are applied in the open group.
    ``garble_at``: that page is central's real answer with its changes out of order (a page
    the laptop must not apply)."""

    def __init__(
        self,
        inner: RequestsTransport,
        laptop: Laptop,
        *,
        stop_at: int = -1,
        committed: int = 0,
        refuse_at: int = -1,
        garble_at: int = -1,
    ) -> None:
        self.inner = inner
        self.laptop = laptop
        self.stop_at, self.committed, self.refuse_at = stop_at, committed, refuse_at
        self.garble_at = garble_at
        self.cursors: list[str] = []
        self.seqs: list[list[int]] = []

    def stored_cursor(self) -> str | None:
        """The committed cursor, read as a WAL reader (no ``BEGIN IMMEDIATE``, which would wait
        for the open group's write lock)."""
        conn = self.laptop.app.extensions["contigo.engine"].raw_connection()
        try:
            row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (CURSOR_KEY,))
            found = row.fetchone()
        finally:
            conn.close()
        return str(found[0]) if found else None

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        if not path.startswith("/sync/v1/pull"):
            return self.inner.send(method, path, body)
        page = len(self.cursors)
        if page == self.stop_at:
            deadline = time.monotonic() + 60  # a bound against a hang, not the trigger
            while self.stored_cursor() != self.cursors[self.committed - 1]:
                assert time.monotonic() < deadline, "the laptop never committed its first group"
                time.sleep(0.01)
            raise Stopped
        if page == self.refuse_at:
            return _refused(self.inner, method, path, body)
        if page == self.garble_at:
            resp = self.inner.send(method, path, body)
            resp.body["changes"].reverse()
            return resp
        return _recorded(self.inner, method, path, body, self.cursors, self.seqs)


def _grouped(b: Laptop, cutting: CutInGroup) -> Any:
    """``b``'s engine over ``cutting``, pulling in groups of 4 pages ended only by their count
    (the time bound made long: a bound against a hang, not the trigger)."""
    engine = engine_for(b.app, cutting)
    engine.group_pages, engine.group_seconds = 4, 600.0
    return engine


def _resume(b: Laptop, http: RequestsTransport) -> tuple[list[int], SyncReport]:
    resumed = RequestsTransport(http.base_url, http.device_id, http.private_key)
    log = CutInGroup(resumed, b)  # the same recorder, never cutting
    report = run_sync(b.app, log)
    resumed.session.close()
    return [seq for page in log.seqs for seq in page], report


def _cut(b: Laptop, http: RequestsTransport, cutting: CutInGroup, cut: type[BaseException]) -> None:
    """``b``'s grouped first pull over ``cutting``, which ends it by raising ``cut``."""
    engine = _grouped(b, cutting)
    with b.app.app_context():
        engine.hello()
        with pytest.raises(cut):
            engine.pull(SyncReport(), limit=PAGE)
    http.session.close()


def _resumed_equal(a: Laptop, b: Laptop, http: RequestsTransport, kept: list[int]) -> list[int]:
    """``b``'s pull resumed to the end: with the ``kept`` changes, every one of the site's 24
    exactly once and in order, nothing parked, and ``b`` shows what ``a`` wrote. Returns the
    resumed run's changes (their seqs)."""
    rest, report = _resume(b, http)
    whole = kept + rest
    assert whole == sorted(set(whole)) and len(whole) == 24
    assert report.pulled == len(rest) and report.parked == 0
    assert _count(b, Person) == 6 and _count(b, Encounter) == 18
    assert visible_state(b.app) == visible_state(a.app)
    return rest


def test_a_first_pull_stopped_inside_a_group_keeps_the_committed_group_and_pulls_the_rest(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = _write_site(laptops)
    b = laptops("b")
    http = transport(b)
    # Pages 0-3 are the first group; page 4 is applied in the second, and the laptop stops
    # when it asks for page 5.
    cutting = CutInGroup(http, b, stop_at=5, committed=4)
    _cut(b, http, cutting, Stopped)

    # The first group and its cursor are kept; page 4, received and applied, is not.
    assert len(cutting.cursors) == 5
    assert cutting.stored_cursor() == cutting.cursors[3]
    kept = [seq for page in cutting.seqs[:4] for seq in page]
    assert len(kept) == 4 * PAGE
    assert _count(b, Person) + _count(b, Encounter) == 4 * PAGE

    # Resumed from the stored cursor: page 4 again, then the rest; nothing twice, nothing skipped.
    rest = _resumed_equal(a, b, http, kept)
    assert rest[:PAGE] == cutting.seqs[4]


@pytest.mark.parametrize(
    ("cut_at", "cut"),
    [({"refuse_at": 3}, TransportError), ({"garble_at": 3}, ProtocolError)],
    ids=["refused", "does-not-parse"],
)
def test_a_page_refused_or_unreadable_inside_a_group_keeps_the_pages_applied_before_it(
    central: Central,
    laptops: Callable[[str], Laptop],
    cut_at: dict[str, int],
    cut: type[BaseException],
) -> None:
    a = _write_site(laptops)
    b = laptops("b")
    http = transport(b)
    # Pages 0-2 are applied in the first group (of 4 at most); page 3 cannot be fetched, or
    # arrives with its changes out of order (checked on the wire's thread, as the laptop
    # applies page 2).
    cutting = CutInGroup(http, b, **cut_at)
    _cut(b, http, cutting, cut)

    # Every page before it is kept, with its cursor.
    assert len(cutting.cursors) == 3
    assert cutting.stored_cursor() == cutting.cursors[2]
    kept = [seq for page in cutting.seqs for seq in page]
    assert _count(b, Person) + _count(b, Encounter) == len(kept) == 3 * PAGE

    _resumed_equal(a, b, http, kept)
