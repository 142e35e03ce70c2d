"""Sync runs in the background: one at a time, started by a user ("Sync now") or every
``AUTO_SYNC_SECONDS`` by a daemon thread while the laptop is unlocked, enrolled and the central
server answers.

Plain :mod:`threading` (no fork, no signals), so it behaves the same on Windows. A page polls the
run's :class:`RunStatus`; the engine itself keeps every guarantee (an interrupted run resumes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import requests
from flask import Flask
from sqlalchemy.orm import Session

from contigo.db import session_scope
from contigo.errors import Locked
from contigo.exchange.laptop import status
from contigo.exchange.laptop.client import http_transport, run_sync
from contigo.vault import get_vault
from sync.client.engine import ClockRefused, SyncFailed, UpgradeRequired
from sync.client.transport import RequestsTransport, Response, Transport, TransportError
from sync.protocol import Control, ErrorCode, ProtocolError

log = logging.getLogger("contigo.syncui")

EXTENSION = "contigo.syncui"
PHASES = ("idle", "hello", "push", "pull", "done", "failed")
ERRORS = (
    *("not_enrolled", "unreachable", "revoked", "refused", "locked", "failed", "upgrade"),
    "clock",
)
TransportFactory = Callable[[Flask], Transport]
Probe = Callable[[str], bool]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class RunStatus:
    """The latest run: its phase, push batches sent, pull pages applied, and the error code
    (one of :data:`ERRORS`) when it failed."""

    running: bool = False
    phase: str = "idle"
    trigger: str = ""
    batches: int = 0
    pages: int = 0
    error: str | None = None
    started_at_ms: int | None = None
    finished_at_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The status endpoint's body (no personal data: counts and codes only)."""
        return asdict(self)


class _ProgressTransport:
    """Counts what the engine sends, so a page can show how far a run has got."""

    def __init__(self, inner: Transport, runner: SyncRunner) -> None:
        self.inner = inner
        self.runner = runner

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        phase = path.removeprefix("/sync/v1/").split("?", 1)[0]
        self.runner.update(phase=phase if phase in PHASES else self.runner.status.phase)
        resp = self.inner.send(method, path, body)
        if resp.status == 200 and phase == "push":
            self.runner.update(batches=self.runner.status.batches + 1)
        elif resp.status == 200 and phase == "pull":
            self.runner.update(pages=self.runner.status.pages + 1)
        return resp


def _http_transport(app: Flask) -> Transport:
    return http_transport(app)


def reachable(url: str) -> bool:
    """Whether the central server answers at all (any HTTP status): a HEAD with a short timeout,
    so an offline laptop does not start a run that can only fail."""
    try:
        requests.head(url, timeout=5, allow_redirects=False)
    except requests.RequestException:
        return False
    return True


def _error_code(exc: Exception) -> str:
    if isinstance(exc, UpgradeRequired):
        return "upgrade"
    if isinstance(exc, ClockRefused):
        return "clock"  # never "revoked": the enrolment is fine, the clock is not
    if isinstance(exc, SyncFailed):
        revoked = exc.status == 401 and exc.code != ErrorCode.REPLAYED_REQUEST
        return "revoked" if revoked else "refused"
    if isinstance(exc, TransportError):
        return "unreachable"
    if isinstance(exc, Locked):
        return "locked"
    if isinstance(exc, ProtocolError):
        return "refused"
    return "failed"


class SyncRunner:
    """At most one sync run at a time for one app, in a daemon thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.status = RunStatus()
        self.transport_factory: TransportFactory = _http_transport
        self.probe: Probe = reachable
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.auto_thread: threading.Thread | None = None

    def update(self, **changes: Any) -> None:
        """Change the status under the lock (the page reads it from another thread)."""
        with self._lock:
            for name, value in changes.items():
                setattr(self.status, name, value)

    def snapshot(self) -> RunStatus:
        """A copy of the status, consistent at one instant."""
        with self._lock:
            return RunStatus(**asdict(self.status))

    def start(self, trigger: str) -> bool:
        """Start a run unless one is under way; ``True`` when this call started it."""
        with self._lock:
            if self.status.running:
                return False
            self.status = RunStatus(
                running=True, phase="hello", trigger=trigger, started_at_ms=_now_ms()
            )
            self._thread = threading.Thread(target=self._run, name="contigo-sync", daemon=True)
            self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the current run to finish (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        error: str | None = None
        transport: Transport | None = None
        try:
            transport = self.transport_factory(self.app)
            run_sync(self.app, _ProgressTransport(transport, self))
        # Whatever stops a run becomes its stored error code: a background thread that died
        # silently would leave the page saying "syncing" for ever.
        except Exception as exc:
            error = _error_code(exc)
            log.warning("sync run failed: %s (%s)", error, type(exc).__name__)
            if isinstance(exc, SyncFailed) and exc.control == Control.LOCK:
                # The central server revoked this laptop: drop the master key now.
                get_vault(self.app).lock()
        finally:
            if isinstance(transport, RequestsTransport):
                transport.session.close()
            self.update(
                running=False,
                phase="failed" if error else "done",
                error=error,
                finished_at_ms=_now_ms(),
            )

    def try_auto(self) -> bool:
        """One tick of automatic sync: run only on an unlocked, enrolled laptop whose central
        server answers. ``True`` when a run was started."""
        if not get_vault(self.app).is_unlocked:
            return False
        with session_scope(self.app) as s:
            usable = status.is_enrolled(s) and not status.is_revoked(s)
            url = status.central_url(s) if usable else None
        if url is None or not self.probe(url):
            return False
        return self.start("auto")


def sync_now(app: Flask, s: Session) -> str:
    """Start a run for the user who asked: ``started``, ``running`` (one is under way) or
    ``not_enrolled`` (there is no central server to sync with)."""
    if not status.is_enrolled(s):
        return "not_enrolled"
    return "started" if runner_for(app).start("manual") else "running"


def runner_for(app: Flask) -> SyncRunner:
    """The app's runner, created on first use."""
    runner: SyncRunner | None = app.extensions.get(EXTENSION)
    if runner is None:
        runner = app.extensions[EXTENSION] = SyncRunner(app)
    return runner


def _auto_loop(runner: SyncRunner, interval: float) -> None:
    while True:
        time.sleep(interval)
        try:
            runner.try_auto()
        # The loop must outlive a bad tick (a locked database, a flaky network).
        except Exception as exc:
            log.warning("automatic sync skipped: %s", type(exc).__name__)


def start_auto_sync(app: Flask) -> bool:
    """Start the automatic-sync thread of a field app that serves pages, once
    (``AUTO_SYNC_SECONDS``, default 300; 0 disables it, and so does ``TESTING``). ``True`` when
    the thread runs. Called on a request, so a CLI command never starts one."""
    runner = runner_for(app)
    interval = float(app.config.get("AUTO_SYNC_SECONDS", 300) or 0)
    if interval <= 0 or app.config.get("TESTING") or app.config["CONTIGO_MODE"] != "field":
        return False
    with runner._lock:
        if runner.auto_thread is None:
            runner.auto_thread = threading.Thread(
                target=_auto_loop, args=(runner, interval), name="contigo-auto-sync", daemon=True
            )
            runner.auto_thread.start()
    return True
