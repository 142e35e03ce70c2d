"""Per-request accounting on central: a request id, metrics by endpoint rule, one log line.

The request id is the caller's ``X-Request-Id`` when it is a plain token, else a new one; it is
sent back in the answer. Timing runs from the first ``before_request`` to teardown, so the
commit (made when the answer is ready) is included.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import select

from contigo.db import session_scope
from contigo.ops import incarnation, metrics
from contigo.sites.models import Site
from sync.models import Device
from sync.protocol.signing import DEVICE_HEADER

log = logging.getLogger("contigo.ops.request")
REQUEST_ID = "X-Request-Id"
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_sites: dict[str, str] = {}
"""Device id → site code, per process (a device never changes site)."""


def _site_of(app: Flask, device_id: str) -> str | None:
    found = _sites.get(device_id)
    if found is None:
        with session_scope(app) as s:
            found = s.scalar(
                select(Site.code)
                .join(Device, Device.site_id == Site.id)
                .where(Device.id == device_id)
            )
        if found is None:
            return None
        _sites[device_id] = found
    return found


def _begin() -> None:
    g.ops_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID, "")
    g.ops_request_id = given if _TOKEN.fullmatch(given) else uuid.uuid4().hex


def _answer(response: Response) -> Response:
    g.ops_status = response.status_code
    response.headers[REQUEST_ID] = g.get("ops_request_id", "")
    return response


def _end(_exc: BaseException | None) -> None:
    started = g.pop("ops_started", None)
    if started is None:
        return
    seconds = time.perf_counter() - started
    rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
    status = int(g.pop("ops_status", 500))
    metrics.observe_request(rule, request.method, status, seconds)
    results = g.pop("push_results", None)
    if results and status == 200:
        metrics.observe_push(results)
    fields: dict[str, Any] = {
        "request_id": g.get("ops_request_id"),
        "method": request.method,
        "endpoint": rule,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    claimed = request.headers.get(DEVICE_HEADER, "")
    if rule.startswith("/sync/") and status < 400 and _TOKEN.fullmatch(claimed):
        # Only once the request was authenticated (a refused one names no device).
        fields["device"] = claimed
        try:
            fields["site"] = _site_of(app, claimed)
        except Exception:  # logging never fails a request
            fields["site"] = None
    if rule == "/sync/v1/push" and status == 200:
        try:
            incarnation.note_high_water(app)
        except Exception as exc:  # the mark is a net, never a reason to fail
            log.warning("incarnation mark not updated (%s)", type(exc).__name__)
    log.info("request", extra=fields)


def install(app: Flask) -> None:
    """Install the hooks on ``app``."""
    app.before_request(_begin)
    app.after_request(_answer)
    app.teardown_request(_end)
