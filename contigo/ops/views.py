"""``/healthz`` (the process answers), ``/readyz`` (it can serve sync) and ``/metrics``."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from contigo.ops import health, metrics

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the process answers requests; checks nothing else."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when the database answers, the server key is loaded and the schema is at head;
    503 otherwise, naming what failed."""
    checks = health.readiness(current_app)
    body = {
        "status": "ready" if health.ready(checks) else "not ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return jsonify(body), 200 if health.ready(checks) else 503


@bp.get("/metrics")
def metrics_view() -> Response:
    """Prometheus text format; asks for ``METRICS_TOKEN`` as a bearer token when one is set."""
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return Response("unauthorised\n", status=401, mimetype="text/plain")
    return Response(
        metrics.render(current_app), mimetype="text/plain; version=0.0.4; charset=utf-8"
    )
