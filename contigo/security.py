"""Request hardening: accepted host names, CSRF for forms, strict security headers.

The field app listens on 127.0.0.1 only; accepting only localhost host names also defeats DNS
rebinding from a page the laptop happens to open.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Flask, Response, abort, request, session

from contigo.errors import CsrfFailed

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def _host_allowed(app: Flask) -> bool:
    allowed = app.config.get("ALLOWED_HOSTS") or ()
    if "*" in allowed:
        return True
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host in allowed


def init_app(app: Flask) -> None:
    """Install the host check, CSRF check and response headers."""
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def _check() -> Any:
        if not _host_allowed(app):
            abort(400)
        if request.method in SAFE_METHODS or request.path.startswith(("/api/", "/sync/")):
            return None
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(str(sent), str(session.get("csrf", "")) or "\0"):
            raise CsrfFailed()
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["X-Frame-Options"] = "DENY"
        h["Referrer-Policy"] = "no-referrer"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
        h["Cross-Origin-Resource-Policy"] = "same-origin"
        # A page that needs the camera (the card reader) sets its own, allowing it for itself.
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if not request.path.startswith("/static/"):
            h["Cache-Control"] = "no-store"
        return response
