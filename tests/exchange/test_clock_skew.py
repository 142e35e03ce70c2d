"""S26: a laptop's clock does not decide whether it can sync.

Requests are stamped with the server's time as the laptop learned it (from the ``S204`` refusal
of a stale request, or from ``hello``); replay protection still rests on the server's clock and
single-use nonces, so a captured request cannot be replayed and an altered one is refused. A
clock error that remains is reported as a clock error, never as a revoked enrolment.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import delete

from contigo.db import session_scope
from contigo.exchange.central import server as sync_views
from contigo.exchange.laptop.client import clock_reason, signing_key
from contigo.exchange.laptop.runner import _error_code
from sync.client.engine import CLOCK_OFFSET_KEY, ClockRefused, SyncFailed
from sync.client.transport import Response, SigningClock, clock_refusal
from sync.models import SyncNonce
from sync.outbox import get_state
from sync.protocol import (
    REPLAY_WINDOW_MS,
    SIGNATURE_HEADER,
    BadSignature,
    ErrorCode,
    ReplayedRequest,
    StaleTimestamp,
    sign_request,
    verify_request,
)
from tests.exchange.world import DAY_MS, Device, new_device, visible_state, wall_ms

KEY = Ed25519PrivateKey.generate()
PATH, BODY, T0 = "/sync/v1/push", b'{"ops":[]}', 1_767_225_600_000


class Nonces:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, nonce: str) -> bool:
        found = nonce in self.seen
        self.seen.add(nonce)
        return found


def _headers(stamp: int, nonce: str = "n0nce-0123456789abcdef", **over: Any) -> dict[str, str]:
    args = {"method": "POST", "path": PATH, "body_bytes": BODY} | over
    return sign_request(KEY, timestamp_ms=stamp, nonce=nonce, device_id="d-1", **args)


def _verify(headers: dict[str, str], now_ms: int, nonces: Nonces) -> None:
    verify_request(KEY.public_key(), headers, "POST", PATH, BODY, now_ms, nonces)


# ── the signature check ──────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("skew", [3 * DAY_MS, -3 * DAY_MS, REPLAY_WINDOW_MS + 1])
def test_a_stale_signed_request_is_refused_with_the_servers_time_and_spends_no_nonce(
    skew: int,
) -> None:
    nonces = Nonces()
    with pytest.raises(StaleTimestamp) as refused:
        _verify(_headers(T0 + skew), T0, nonces)
    assert refused.value.server_time_ms == T0
    assert refused.value.code == ErrorCode.CLOCK_SKEW and refused.value.http_status == 403
    assert isinstance(refused.value, ReplayedRequest)  # refused all the same
    assert nonces.seen == set()


def test_a_forged_stale_request_learns_nothing_but_bad_signature() -> None:
    forged = _headers(T0 + DAY_MS) | {
        SIGNATURE_HEADER: _headers(T0, body_bytes=b"x")["X-Contigo-Signature"]
    }
    with pytest.raises(BadSignature):
        _verify(forged, T0, Nonces())


def test_a_request_signed_on_the_learned_time_verifies_once() -> None:
    device = SigningClock(lambda: T0 + 3 * DAY_MS)  # three days ahead
    device.learn(T0, T0 + 3 * DAY_MS - 40, T0 + 3 * DAY_MS + 40)
    assert device.now() == T0
    headers, nonces = _headers(device.now()), Nonces()
    _verify(headers, T0 + 1_000, nonces)
    with pytest.raises(ReplayedRequest, match="nonce"):
        _verify(headers, T0 + 2_000, nonces)
    with pytest.raises(StaleTimestamp):  # replayed after the window: stale
        _verify(headers, T0 + REPLAY_WINDOW_MS + 2_000, nonces)


def test_clock_refusal_reads_s204_and_the_date_of_a_server_that_predates_it() -> None:
    s204 = {"error": {"code": "S204_clock_skew", "message": "x"}, "server_time_ms": T0}
    assert clock_refusal(Response(403, s204), T0 + DAY_MS) == T0
    s202 = {"error": {"code": "S202_replayed_request", "message": "x"}}
    assert clock_refusal(Response(401, s202, server_date_ms=T0), T0 + DAY_MS) == T0
    # A replayed nonce from a right clock is no clock problem.
    assert clock_refusal(Response(401, s202, server_date_ms=T0), T0 + 2_000) is None
    assert clock_refusal(Response(401, s202), T0 + DAY_MS) is None
    revoked = {"error": {"code": "S203_unknown_device", "message": "x"}, "control": "lock"}
    assert clock_refusal(Response(401, revoked, server_date_ms=T0), T0 + DAY_MS) is None


# ── over the sync endpoints ──────────────────────────────────────────────────────────────────


class Recording:
    """The Flask test client of the central, keeping every request it sent and its answer."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.sent: list[tuple[str, str, bytes, dict[str, str], int, Any]] = []

    def open(self, path: str, **kw: Any) -> Any:
        resp = self.client.open(path, **kw)
        self.sent.append(
            (kw["method"], path, kw["data"], dict(kw["headers"]), resp.status_code, resp.get_json())
        )
        return resp

    def replay(self, i: int, **headers: str) -> Any:
        method, path, raw, sent, *_ = self.sent[i]
        return self.client.open(
            path, method=method, data=raw, headers=sent | headers,
            content_type="application/json", base_url="http://localhost",
        )  # fmt: skip


@pytest.fixture
def skewed(central: Flask, laptop: Callable[[str], Flask]) -> Callable[[str, int], Device]:
    def make(name: str, skew_ms: int) -> Device:
        device = new_device(central, laptop, name, skew_ms)
        device.net.inner.client = Recording(device.net.inner.client)  # type: ignore[attr-defined]
        return device

    return make


@pytest.mark.parametrize("skew", [4 * DAY_MS, -4 * DAY_MS])
def test_s26_a_laptop_days_off_syncs_and_a_captured_request_is_still_refused(
    central: Flask, skewed: Callable[[str, int], Device], skew: int
) -> None:
    off, right = skewed("off", skew), skewed("right", 0)
    pid = off.register()
    off.visit(pid)

    report = off.sync()

    assert report.acknowledged == 2 and off.outbox() == []
    sent = off.net.inner.client.sent  # type: ignore[attr-defined]
    first, second = sent[0], sent[1]
    assert first[1] == second[1] == "/sync/v1/hello"
    assert (first[4], first[5]["error"]["code"]) == (403, "S204_clock_skew")
    assert abs(first[5]["server_time_ms"] - wall_ms()) < 60_000
    assert second[4] == 200 and all(status == 200 for *_, status, _b in sent[1:])
    with session_scope(off.app) as s:  # the banner still says the clock is off
        assert abs(int(get_state(s, CLOCK_OFFSET_KEY) or 0) - skew) < 60_000
    right.sync()
    assert visible_state(right.app) == visible_state(off.app) == visible_state(central)

    recorder = off.net.inner.client  # type: ignore[attr-defined]
    push = next(i for i, r in enumerate(sent) if r[1] == "/sync/v1/push" and r[4] == 200)
    replayed = recorder.replay(push)
    assert replayed.status_code == 401
    assert replayed.get_json()["error"]["code"] == "S202_replayed_request"
    stale = recorder.replay(0)  # the first hello, stamped with the laptop's own clock
    assert stale.status_code == 403 and stale.get_json()["error"]["code"] == "S204_clock_skew"
    altered = recorder.replay(push, **{"X-Contigo-Timestamp": str(wall_ms())})
    assert altered.status_code == 401
    assert altered.get_json()["error"]["code"] == "S201_bad_signature"
    assert visible_state(central) == visible_state(right.app)  # nothing applied twice


def test_s26_a_request_replayed_after_the_window_is_refused(
    central: Flask, skewed: Callable[[str, int], Device], monkeypatch: pytest.MonkeyPatch
) -> None:
    off = skewed("off", -3 * DAY_MS)
    off.register()
    off.sync()
    recorder = off.net.inner.client  # type: ignore[attr-defined]
    push = next(i for i, r in enumerate(recorder.sent) if r[1] == "/sync/v1/push")
    later = wall_ms() + 2 * REPLAY_WINDOW_MS + 1_000  # the nonce may be forgotten by then
    monkeypatch.setattr(sync_views, "wall_ms", lambda: later)
    with session_scope(central) as s:
        s.execute(delete(SyncNonce))
    replayed = recorder.replay(push)
    assert replayed.status_code == 403
    assert replayed.get_json()["error"]["code"] == "S204_clock_skew"


def test_an_old_client_days_off_is_told_refused_not_revoked(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    """A client that predates S204 signs with its own clock and does not retry: it still
    cannot sync, but it hears 403 (its own code says "refused"), never 401 ("revoked")."""
    app = laptop("old")
    device = new_device(central, lambda _n: app, "old")
    dev, _url, key = signing_key(app)
    raw = json.dumps({}).encode()
    headers = sign_request(
        key, "POST", "/sync/v1/hello", raw, wall_ms() + 3 * DAY_MS, "n0nce-0123456789abcdef",
        device_id=dev,
    )  # fmt: skip
    resp = central.test_client().post(
        "/sync/v1/hello", data=raw, headers=headers, content_type="application/json",
        base_url="http://localhost",
    )  # fmt: skip
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "S204_clock_skew"
    assert "control" not in resp.get_json()
    device.skew_ms = 3 * DAY_MS
    assert device.try_sync()  # the same laptop, updated, syncs


class RunawayClock:
    """A broken real-time clock that jumps a day forward every time it is read: the laptop
    cannot sign with the server's time even after learning it."""

    def __init__(self) -> None:
        self.reads = itertools.count()

    def __call__(self) -> int:
        return wall_ms() + next(self.reads) * DAY_MS


def test_a_laptop_that_still_cannot_sync_for_its_clock_is_told_so_in_its_language(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    from contigo.exchange.laptop.client import run_sync
    from sync.outbox import PHYSICAL_CLOCK

    device = new_device(central, laptop, "broken")
    clock = RunawayClock()
    device.app.extensions["contigo.sessionmaker"].configure(info={PHYSICAL_CLOCK: clock})
    with pytest.raises(ClockRefused) as refused:
        run_sync(device.app, device.net)
    assert refused.value.status == 403 and refused.value.offset_ms > DAY_MS
    assert _error_code(refused.value) == "clock"
    with session_scope(device.app) as s:
        assert int(get_state(s, CLOCK_OFFSET_KEY) or 0) > DAY_MS
        assert get_state(s, "revoked_at") is None  # not taken for a revocation
    ahead = clock_reason(3 * DAY_MS + 5_000, "es")
    assert "3 días" in ahead and "adelantado" in ahead
    assert "atrasado" in clock_reason(-3 * DAY_MS, "pt") and "3 dias" in clock_reason(
        -3 * DAY_MS, "pt"
    )
    assert "behind" in clock_reason(-3 * 3600_000, "en") and "3 h" in clock_reason(
        -3 * 3600_000, "en"
    )


def test_a_refused_nonce_is_refused_not_revoked() -> None:
    replay = SyncFailed("server refused", status=401, code="S202_replayed_request")
    assert _error_code(replay) == "refused"
    assert _error_code(SyncFailed("x", status=401, code="S203_unknown_device")) == "revoked"
