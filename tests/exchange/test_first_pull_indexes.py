"""A new laptop's first pull leaves out the indexes no pull reads and builds them at its end
(issue 16.1, :mod:`sync.client.deferral`), over real HTTP to a gunicorn central on PostgreSQL.

Whatever stops the pull, nothing is lost and the laptop's schema ends as a never-deferred
laptop's: a first pull drained builds them; one cut keeps the deferral, recorded, and the
resumed pull builds them; a laptop opened again after a cut (no pull) gets them back at once;
a pull that is not a laptop's first never drops anything. The indexes are read from
``sqlite_master`` by a WAL reader while the pull runs, at each pull request (an event, never a
delay).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contigo import create_app
from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.exchange.laptop.client import DEFERRED_INDEXES, engine_for, run_sync
from contigo.vault import get_vault
from sync.client.deferral import DEFERRED_KEY
from sync.client.engine import CURSOR_KEY, SyncReport
from sync.client.transport import RequestsTransport, Response, TransportError
from sync.outbox import set_state
from tests.exchange.live import (
    PASSWORD,
    Central,
    Laptop,
    module_central,
    record_visit,
    register_child,
    site_laptops,
    transport,
)
from tests.exchange.test_first_pull_resume import PAGE, CutInGroup, Stopped, _cut, _write_site
from tests.exchange.world import visible_state

pytestmark = pytest.mark.slow

central = module_central("first-pull-indexes")
laptops = site_laptops("X")

LEFT_OUT = set(DEFERRED_INDEXES)


def _schema(laptop: Laptop) -> tuple[dict[str, str], str | None]:
    """The laptop's committed indexes (name to SQL) and its recorded deferral, read as a WAL
    reader (no ``BEGIN IMMEDIATE``, which would wait for an open group's write lock)."""
    conn = laptop.app.extensions["contigo.engine"].raw_connection()
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        key = conn.execute("SELECT value FROM sync_state WHERE key = ?", (DEFERRED_KEY,))
        found = key.fetchone()
    finally:
        conn.close()
    return {str(n): str(sql) for n, sql in rows}, (str(found[0]) if found else None)


class Watching:
    """Real HTTP noting, before each pull request, the laptop's committed indexes."""

    def __init__(self, inner: RequestsTransport, laptop: Laptop) -> None:
        self.inner = inner
        self.laptop = laptop
        self.seen: list[tuple[set[str], bool]] = []  # (indexes, deferral recorded) per request

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        if path.startswith("/sync/v1/pull"):
            indexes, recorded = _schema(self.laptop)
            self.seen.append((set(indexes), recorded is not None))
        return self.inner.send(method, path, body)


def _pull(laptop: Laptop, **options: Any) -> tuple[Watching, SyncReport]:
    """A whole sync run of ``laptop`` in pages of :data:`PAGE`, watched."""
    http = transport(laptop)
    watching = Watching(http, laptop)
    try:
        with laptop.app.app_context():
            engine = engine_for(laptop.app, watching, **options)
            engine.hello()
            report = SyncReport()
            engine.pull(report, limit=PAGE)
    finally:
        http.session.close()
    return watching, report


def _never_deferred(laptops: Callable[[str], Laptop]) -> Laptop:
    """A new laptop of the site whose first pull keeps every index up row by row."""
    c = laptops("c")
    _, report = _pull(c, deferrable=())
    assert report.rebuilt == ()
    return c


def _whole(laptop: Laptop, reference: Laptop, writer: Laptop) -> None:
    """``laptop`` holds every index exactly as ``reference`` (never deferred), nothing deferred
    any more, and the same record as both."""
    indexes, recorded = _schema(laptop)
    assert recorded is None
    assert indexes == _schema(reference)[0]
    assert set(indexes) >= LEFT_OUT
    assert visible_state(laptop.app) == visible_state(reference.app) == visible_state(writer.app)


def test_a_first_pull_builds_what_it_left_out_exactly_as_a_laptop_that_never_deferred(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = _write_site(laptops)
    b = laptops("b")
    watching, report = _pull(b)

    # From its first request to its last, the pull ran without them, the deferral recorded.
    assert len(watching.seen) >= 24 // PAGE
    assert all(not (LEFT_OUT & seen) and recorded for seen, recorded in watching.seen)
    assert set(report.rebuilt) == LEFT_OUT
    _whole(b, _never_deferred(laptops), a)


def test_a_first_pull_cut_keeps_the_deferral_and_the_resumed_pull_builds_them(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = _write_site(laptops)
    b = laptops("b")
    http = transport(b)
    cutting = CutInGroup(http, b, stop_at=5, committed=4)  # stopped after the first group
    _cut(b, http, cutting, Stopped)
    assert cutting.stored_cursor() == cutting.cursors[3]
    indexes, recorded = _schema(b)
    assert recorded is not None and not LEFT_OUT & set(indexes)

    # The next pull (the same laptop, still open) resumes without them and builds them.
    resumed = RequestsTransport(http.base_url, http.device_id, http.private_key)
    watching = Watching(resumed, b)
    report = run_sync(b.app, watching)
    resumed.session.close()
    assert watching.seen and all(not (LEFT_OUT & seen) for seen, _ in watching.seen)
    assert set(report.rebuilt) == LEFT_OUT
    _whole(b, _never_deferred(laptops), a)


def test_a_laptop_opened_after_a_cut_first_pull_gets_its_indexes_back_before_anything(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = _write_site(laptops)
    b = laptops("b")
    http = transport(b)
    cutting = CutInGroup(http, b, refuse_at=3)  # the network gone at the fourth page
    _cut(b, http, cutting, TransportError)
    assert _schema(b)[1] is not None
    b.close()  # the laptop shut down, then used offline: opened again, no pull

    app = create_app({"INSTANCE_PATH": str(b.instance), "IDLE_WATCH": False, "TESTING": True})
    with session_scope(app) as s:  # the password unlocks it: the database is opened
        auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
        get_vault(app).load_index_key(s)
        get_vault(app).build_name_index(s)
    b = Laptop(instance=b.instance, password_file=b.password_file, app=app)
    try:
        indexes, recorded = _schema(b)
        assert recorded is None and set(indexes) >= LEFT_OUT

        # Its pull is not a first pull any more (it holds a cursor): it drops nothing.
        watching, report = _pull(b)
        assert all(seen >= LEFT_OUT and not recorded for seen, recorded in watching.seen)
        assert report.rebuilt == ()
        _whole(b, _never_deferred(laptops), a)
    finally:
        b.close()


def test_a_pull_that_is_not_a_laptops_first_never_drops_an_index(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = _write_site(laptops)
    b = laptops("b")
    _pull(b)
    pid = register_child(a.app)
    record_visit(a.app, pid, 1)
    assert a.sync().exit_code == 0

    watching, report = _pull(b)  # a routine pull: two new changes
    assert report.pulled == 2
    assert all(seen >= LEFT_OUT and not recorded for seen, recorded in watching.seen)

    # A cursor reset (central asks for the feed again) on a laptop holding pulled records:
    # not a first pull either.
    with session_scope(b.app) as s:
        set_state(s, CURSOR_KEY, "")
    watching, report = _pull(b)
    assert report.pulled == 26 and report.rebuilt == ()
    assert all(seen >= LEFT_OUT and not recorded for seen, recorded in watching.seen)
    _whole(b, _never_deferred(laptops), a)
