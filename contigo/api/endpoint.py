"""What every endpoint of the JSON API (``/api/v1``) shares: the blueprint and its one error
shape, and the three steps of a view: who is asking (:func:`context`), what they sent
(:func:`body`), and the answer (:func:`reply`). :mod:`contigo.api.views` and
:mod:`contigo.api.referrals` add their routes to :data:`bp`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import Schema
from sqlalchemy.orm import Session

from contigo import db
from contigo.auth.current import current_user
from contigo.auth.models import User
from contigo.errors import AccountLocked, ContigoError, ErrorCode, Forbidden, error_body
from contigo.schemas import load
from contigo.vault import Vault, get_vault

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class NotJson(ContigoError):
    """The request body is not a JSON object sent as ``application/json``."""

    code = ErrorCode.BAD_REQUEST
    status = 400
    message_id = "api.error.not_json"


class TooDeep(ContigoError):
    """The JSON body nests deeper than any request of this API (a probe, or a parser bomb)."""

    code = ErrorCode.BAD_REQUEST
    status = 400
    message_id = "apierr.too_deep"


#: Deeper than any body of this API (a person with documents is 3 levels).
MAX_JSON_DEPTH = 8


@bp.errorhandler(ContigoError)
def _error(exc: ContigoError) -> Response:
    """The JSON error shape, plus the headers HTTP asks for: a 401 names the bearer scheme
    (RFC 6750), and a locked-out account says when to try again."""
    response = error_body(exc.code.value, exc.message(), exc.fields)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="contigo"'
    if isinstance(exc, AccountLocked):
        response.headers["Retry-After"] = str(int(current_app.config["LOCKOUT_SECONDS"]))
    return response


def context(roles: frozenset[str] | None = None) -> tuple[Session, Vault, User]:
    """The request's session, the vault and the authenticated user.

    Called first in every protected view: it authenticates (401 otherwise) and sets the user's
    language, so validation messages that follow are in that language. A role outside ``roles``
    is refused (403) before the body is read; scope is checked by the service after.
    """
    user = current_user()
    if roles is not None and user.role not in roles:
        raise Forbidden()
    return db.session(), get_vault(), user


def body(schema: Schema) -> dict[str, Any]:
    """The request's JSON object validated by ``schema``: 400 when the body is not JSON, 422
    naming each wrong field (unknown keys included) when it does not validate."""
    if not request.is_json:
        raise NotJson()
    try:
        data = json.loads(request.get_data(cache=True))
    except RecursionError as exc:
        raise TooDeep() from exc
    except ValueError as exc:  # not JSON, or not UTF-8 (UnicodeDecodeError is a ValueError)
        raise NotJson() from exc
    if data is None:
        raise NotJson()
    if _depth(data) > MAX_JSON_DEPTH:
        raise TooDeep()
    return load(schema, data)


def _depth(value: Any) -> int:
    """How deep ``value`` nests arrays and objects (walked without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, level + 1) for item in items)
    return deepest


def reply(schema: Schema, value: Any, status: int = 200) -> Response:
    """``value`` dumped by ``schema`` as the JSON response, with ``status``."""
    response = jsonify(schema.dump(value))
    response.status_code = status
    return response
