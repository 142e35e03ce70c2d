"""How a device reaches the central server: a :class:`Transport` that sends one signed request.

:class:`RequestsTransport` speaks real HTTP (JSON, gzip over 1 KB). :class:`FaultyTransport`
wraps any transport and injects the failures the tests need: a request dropped before the server
sees it, a response lost after the server committed, and a failure after N pull pages.
"""

from __future__ import annotations

import gzip
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import fastjson
from sync.protocol import GZIP_LEVEL, sign_request

GZIP_OVER = 1024


class TransportError(Exception):
    """The request or its response was lost; the server may or may not have applied it."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP status and its decoded JSON body (``None`` when the body was not JSON)."""

    status: int
    body: Any


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_id = device_id
        self.private_key = private_key
        self.timeout = timeout
        self.session = requests.Session()

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        """Sign and send; gzip a body over 1 KB. Keeps: a fresh nonce on every request."""
        raw = b"" if body is None else fastjson.dumps(body)
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if len(raw) > GZIP_OVER:
            raw = gzip.compress(raw, compresslevel=GZIP_LEVEL)
            headers["Content-Encoding"] = "gzip"
        headers |= sign_request(
            self.private_key,
            method,
            path,
            raw,
            time.time_ns() // 1_000_000,
            secrets.token_urlsafe(18),
            device_id=self.device_id,
        )
        try:
            resp = self.session.request(
                method, self.base_url + path, data=raw, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise TransportError(type(exc).__name__) from exc
        try:
            decoded = fastjson.loads(resp.content)
        except ValueError:
            decoded = None
        return Response(resp.status_code, decoded)


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
