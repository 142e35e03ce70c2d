"""Endpoints of :mod:`contigo.auth.parking`: the page parks its form before the idle lock and
takes it back after the same user unlocks."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, session

from contigo.auth.parking import ParkedForms
from contigo.errors import Locked, Unauthenticated
from contigo.vault import get_vault

bp = Blueprint("parking", __name__)


def _store() -> ParkedForms:
    store: ParkedForms = current_app.extensions["contigo.parked_forms"]
    return store


def _path(value: Any) -> str:
    path = str(value or "")
    return path if path.startswith("/") and not path.startswith("//") else ""


@bp.post("/park")
def park() -> Any:
    """Keep what was typed, sealed in memory. Deliberately not counted as activity: parking
    happens because nobody touched the laptop, and must not keep it from locking."""
    uid, vault = session.get("uid"), get_vault()
    if not uid:
        raise Unauthenticated()
    if not vault.is_unlocked:
        raise Locked()
    body = request.get_json(silent=True) or {}
    path = _path(body.get("path"))
    fields = [(str(n), str(v)) for n, v in body.get("fields", []) if str(n) != "csrf_token"]
    if not path or not fields:
        return "", 204
    try:
        _store().park(vault, str(uid), path, fields)
    except ValueError:
        return "", 413
    return "", 204


@bp.post("/unpark")
def unpark() -> Any:
    """The parked fields of this user for this path, handed back once."""
    uid, vault = session.get("uid"), get_vault()
    if not uid:
        raise Unauthenticated()
    if not vault.is_unlocked:
        raise Locked()
    path = _path((request.get_json(silent=True) or {}).get("path"))
    return jsonify({"fields": _store().unpark(vault, str(uid), path) if path else []})


def init_app(app: Flask) -> None:
    """The store, and ``parked_here()`` for the page frame (which then asks for it back)."""
    app.extensions["contigo.parked_forms"] = ParkedForms()

    def parked_here() -> bool:
        uid = session.get("uid")
        return bool(uid) and _store().waiting(str(uid), request.path)

    app.jinja_env.globals["parked_here"] = parked_here
    app.register_blueprint(bp)
