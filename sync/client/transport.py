"""How a device reaches the central server: a :class:`Transport` that sends one signed request.

:class:`RequestsTransport` speaks real HTTP (JSON, gzip over 1 KB). Requests are stamped with
the *server's* time as the device last learned it (:class:`SigningClock`), never with the
device's own clock alone: a laptop whose clock is days off still syncs. :class:`FaultyTransport`
wraps any transport and injects the failures the tests need: a request dropped before the server
sees it, a response lost after the server committed, and a failure after N pull pages.
"""

from __future__ import annotations

import gzip
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import fastjson
from sync.protocol import GZIP_LEVEL, REPLAY_WINDOW_MS, ErrorCode, sign_request

GZIP_OVER = 1024


def wall_ms() -> int:
    """This machine's clock, in ms since the epoch."""
    return time.time_ns() // 1_000_000


class TransportError(Exception):
    """The request or its response was lost; the server may or may not have applied it."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP status and its decoded JSON body (``None`` when the body was not JSON)."""

    status: int
    body: Any
    server_date_ms: int | None = None
    """The HTTP ``Date`` header, when the server sent one (second precision)."""


class SigningClock:
    """The time a device stamps its signed requests with: its own clock plus the offset to the
    server's clock it last learned. Starts at offset 0 (a right clock needs nothing more).

    Keeps: replay protection rests on the server's clock (its ±5 minute window and single-use
    nonces); the device's clock only has to tick, not be right.
    """

    def __init__(self, device_ms: Callable[[], int] = wall_ms) -> None:
        self.device_ms = device_ms
        self.offset_ms = 0
        """The server's time minus the device's, as last learned."""

    def now(self) -> int:
        """The server's time now, as far as this device knows."""
        return self.device_ms() + self.offset_ms

    def learn(self, server_time_ms: int, sent_ms: int, received_ms: int) -> None:
        """Take the server's time, read at some instant between ``sent_ms`` and ``received_ms``
        (device clock): it is taken as read half-way."""
        self.offset_ms = server_time_ms - (sent_ms + received_ms) // 2


def clock_refusal(resp: Response, now_ms: int) -> int | None:
    """The server's time when ``resp`` refused a request for its timestamp alone, else ``None``
    (``now_ms``: the server's time as the device reckoned it when it signed).

    ``S204_clock_skew`` carries it in the body. A server that predates S204 answers
    ``S202_replayed_request`` for a stale timestamp; its ``Date`` header tells the time then,
    when that is further off than half the window (a replayed nonce from a right clock is not).
    """
    body = resp.body if isinstance(resp.body, dict) else {}
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    stamp = body.get("server_time_ms")
    if code == ErrorCode.CLOCK_SKEW and type(stamp) is int:
        return stamp
    date = resp.server_date_ms
    if code == ErrorCode.REPLAYED_REQUEST and date is not None:
        return date if abs(date - now_ms) > REPLAY_WINDOW_MS // 2 else None
    return None


def send_signed(clock: SigningClock, attempt: Callable[[int, str], Response]) -> Response:
    """Send one request through ``attempt(timestamp_ms, nonce)``, stamped with ``clock``; if the
    server refuses it for its timestamp, learn the server's time and sign it again once, with a
    fresh nonce (the refusal came before the server read or wrote anything). An answer carrying
    ``server_time_ms`` (``hello``) refreshes the clock too.

    Keeps: at most two attempts; the second answer is returned whatever it is."""
    for retry in (False, True):
        sent, stamp = clock.device_ms(), clock.now()
        resp = attempt(stamp, secrets.token_urlsafe(18))
        received = clock.device_ms()
        server_time = clock_refusal(resp, stamp)
        if server_time is None:
            body = resp.body if isinstance(resp.body, dict) else {}
            told = body.get("server_time_ms")
            if resp.status == 200 and type(told) is int:
                clock.learn(told, sent, received)
            return resp
        clock.learn(server_time, sent, received)
        if retry:
            break
    return resp


class Transport(Protocol):
    """Sends one request to the sync server; raises :class:`TransportError` when it is lost."""

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        """``path`` starts with ``/sync/v1/`` and includes any query string."""


class RequestsTransport:
    """Real HTTP with every request signed by the device's Ed25519 key."""

    def __init__(
        self,
        base_url: str,
        device_id: str,
        private_key: Ed25519PrivateKey,
        *,
        timeout: float = 60.0,
        clock: SigningClock | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_id = device_id
        self.private_key = private_key
        self.timeout = timeout
        self.clock = clock or SigningClock()
        self.session = requests.Session()

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        """Sign and send; gzip a body over 1 KB. Keeps: a fresh nonce on every request, and the
        server's time (as last learned) in every signature."""
        raw = b"" if body is None else fastjson.dumps(body)
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if len(raw) > GZIP_OVER:
            raw = gzip.compress(raw, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"

        def attempt(timestamp_ms: int, nonce: str) -> Response:
            signed = headers | sign_request(
                self.private_key, method, path, raw, timestamp_ms, nonce, device_id=self.device_id
            )
            try:
                resp = self.session.request(
                    method, self.base_url + path, data=raw, headers=signed, timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise TransportError(type(exc).__name__) from exc
            try:
                decoded = fastjson.loads(resp.content)
            except ValueError:
                decoded = None
            return Response(resp.status_code, decoded, _date_ms(resp.headers.get("Date")))

        return send_signed(self.clock, attempt)


def _date_ms(header: str | None) -> int | None:
    """An HTTP ``Date`` header in ms, or ``None`` when absent or unreadable."""
    if not header:
        return None
    try:
        return int(parsedate_to_datetime(header).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


class FaultyTransport:
    """Wraps a transport and injects faults, each armed by a counter.

    * ``drop_requests``: the next N requests are lost before reaching the server;
    * ``drop_responses``: the next N requests reach the server (which commits) but their
      responses are lost;
    * ``fail_after_pages``: after this many successful pull pages, pulls fail until disarmed.
    """

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.drop_requests = 0
        self.drop_responses = 0
        self.fail_after_pages: int | None = None
        self.pages = 0
        self.sent: list[str] = []

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        """Forward the request unless a fault is armed for it."""
        self.sent.append(path.split("?", 1)[0])
        if self.drop_requests > 0:
            self.drop_requests -= 1
            raise TransportError("request dropped")
        is_pull = path.startswith("/sync/v1/pull")
        if is_pull and self.fail_after_pages is not None and self.pages >= self.fail_after_pages:
            raise TransportError("pull interrupted")
        resp = self.inner.send(method, path, body)
        if self.drop_responses > 0:
            self.drop_responses -= 1
            raise TransportError("response dropped after commit")
        if is_pull and resp.status == 200:
            self.pages += 1
        return resp
