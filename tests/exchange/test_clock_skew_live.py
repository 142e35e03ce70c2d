"""S26 over real HTTP: a gunicorn central (two workers) on PostgreSQL and laptops whose whole
process (HLC and request signing) runs days ahead or behind. They sync and converge; a captured
request replayed, a stale one and an altered one are refused; ``contigo sync`` works with a clock
days off and, when the clock still prevents a sync, says so on one line (never "revoked")."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import requests

from contigo.db import session_scope
from contigo.exchange.laptop.client import http_transport, run_sync
from sync import outbox
from sync.client.engine import CLOCK_OFFSET_KEY
from sync.models import SyncOp
from sync.outbox import PHYSICAL_CLOCK, get_state
from tests.exchange.live import (
    Central,
    Laptop,
    encounter_ids,
    module_central,
    one_line,
    record_visit,
    register_child,
    site_laptops,
)
from tests.exchange.world import DAY_MS, visible_state, wall_ms

pytestmark = pytest.mark.slow


central = module_central("live-clock")


laptops = site_laptops("K")


def skew(laptop: Laptop, skew_ms: int) -> None:
    """Run the laptop's whole process ``skew_ms`` off: its HLC and its request signing."""
    laptop.app.extensions["contigo.sessionmaker"].configure(
        info={PHYSICAL_CLOCK: lambda: wall_ms() + skew_ms}
    )


Sent = tuple[str, str, bytes, dict[str, str], int, Any]


class RecordingSession(requests.Session):
    """A real HTTP session that keeps every request it sent (as a network tap would) and the
    answer's status and body."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Sent] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        resp = super().request(method, url, *args, **kw)
        try:
            body = resp.json()
        except ValueError:
            body = None
        self.sent.append(
            (str(method), str(url), kw["data"], dict(kw["headers"]), resp.status_code, body)
        )
        return resp


def replay(sent: Sent, **headers: str) -> requests.Response:
    method, url, raw, signed, *_ = sent
    return requests.request(method, url, data=raw, headers=signed | headers, timeout=30)


def synced(laptop: Laptop) -> RecordingSession:
    """One sync run over real HTTP; the requests it sent."""
    transport = http_transport(laptop.app)
    transport.session.close()
    transport.session = tap = RecordingSession()
    try:
        run_sync(laptop.app, transport)
    finally:
        tap.close()
    return tap


def test_s26_laptops_days_ahead_and_behind_sync_converge_and_replays_are_refused(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    ahead, behind = laptops("ahead"), laptops("behind")
    skew(ahead, 5 * DAY_MS)
    skew(behind, -5 * DAY_MS)
    people = {lap.device_id: register_child(lap.app) for lap in (ahead, behind)}
    visits = {
        pid: [record_visit(lap.app, pid)]
        for lap, pid in zip((ahead, behind), people.values(), strict=True)
    }
    op_ids = [op.op_id for lap in (ahead, behind) for op in lap.outbox()]

    taps = [synced(lap) for lap in (ahead, behind, ahead)]

    assert ahead.outbox() == behind.outbox() == []
    with session_scope(central.app) as s:
        rows = s.query(SyncOp.op_id, SyncOp.status).filter(SyncOp.op_id.in_(op_ids)).all()
    assert sorted(r.op_id for r in rows) == sorted(op_ids)
    assert {r.status for r in rows} == {"applied"}
    for pid, ids in visits.items():
        assert encounter_ids(ahead.app, pid) == encounter_ids(behind.app, pid) == sorted(ids)
        assert encounter_ids(central.app, pid) == sorted(ids)
    assert visible_state(ahead.app) == visible_state(behind.app)
    for lap, sign in ((ahead, 1), (behind, -1)):  # each still warns its users of its clock
        with session_scope(lap.app) as s:
            assert abs(int(get_state(s, CLOCK_OFFSET_KEY) or 0) - sign * 5 * DAY_MS) < 60_000

    # Each laptop's first hello, stamped with its own clock, was refused with the server's
    # time; every other request was signed with that time and accepted. The next run starts
    # from the offset the last hello measured: nothing refused.
    for tap in taps[:2]:
        first, *rest = tap.sent
        assert first[1].endswith("/sync/v1/hello")
        assert (first[4], first[5]["error"]["code"]) == (403, "S204_clock_skew")
        assert [r[4] for r in rest] == [200] * len(rest)
    assert [r[4] for r in taps[2].sent] == [200] * len(taps[2].sent)
    push = next(r for r in taps[0].sent if r[1].endswith("/sync/v1/push"))
    before = central.count(SyncOp)
    replayed = replay(push)
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (
        401,
        "S202_replayed_request",
    )
    stale = replay(taps[1].sent[0])
    assert (stale.status_code, stale.json()["error"]["code"]) == (403, "S204_clock_skew")
    altered = replay(push, **{"X-Contigo-Timestamp": str(wall_ms())})
    assert (altered.status_code, altered.json()["error"]["code"]) == (401, "S201_bad_signature")
    assert central.count(SyncOp) == before


def test_contigo_sync_works_with_a_clock_days_off(
    central: Central, laptops: Callable[[str], Laptop], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = laptops("a")
    record_visit(a.app, register_child(a.app))
    monkeypatch.setattr(outbox, "_wall_ms", lambda: wall_ms() - 4 * DAY_MS)  # the process's

    result = a.sync()

    assert result.exit_code == 0, result.output
    assert "2 accepted" in result.stdout and a.outbox() == []


def test_contigo_sync_names_a_clock_that_still_prevents_it_on_one_line(
    central: Central, laptops: Callable[[str], Laptop], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = laptops("a")
    record_visit(a.app, register_child(a.app))
    reads = itertools.count()  # a broken clock: a day further ahead at every reading
    monkeypatch.setattr(outbox, "_wall_ms", lambda: wall_ms() + next(reads) * DAY_MS)

    result = a.sync()

    assert result.exit_code != 0
    line = one_line(result)
    assert line.startswith("Error: the central server refused this laptop's requests")
    assert "clock is" in line and "ahead" in line and "revoked" not in line
    assert [op.state for op in a.outbox()] == ["pending", "pending"]
