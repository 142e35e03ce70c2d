"""Stable error codes, the domain exceptions named for their condition, and the JSON handler.

API errors are ``{"error": {"code", "message", "fields": {name: [messages]}}}`` with a 4xx status;
messages are in the user's language.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from contigo.i18n import translate


class ErrorCode(StrEnum):
    """Numbered, stable error codes (Kinto-style): clients and tests rely on them."""

    VALIDATION = "E100_validation"
    UNKNOWN_PERSON = "E104_unknown_person"
    UNKNOWN_ENCOUNTER = "E105_unknown_encounter"
    NOT_FOUND = "E106_not_found"
    ALREADY_VOIDED = "E107_already_voided"
    NO_MATCH = "E108_no_match"
    UNAUTHENTICATED = "E201_unauthenticated"
    LOCKED = "E202_locked"
    WRONG_CREDENTIALS = "E203_wrong_credentials"
    ACCOUNT_LOCKED = "E204_account_locked"
    LOOKUP_LOCKED = "E205_lookup_locked"
    DEVICE_REVOKED = "E206_device_revoked"
    DATABASE_DAMAGED = "E501_database_damaged"
    FORBIDDEN = "E301_forbidden"
    CSRF = "E302_csrf"
    BAD_HOST = "E303_bad_host"
    BAD_REQUEST = "E400_bad_request"
    METHOD_NOT_ALLOWED = "E405_method_not_allowed"
    TOO_LARGE = "E413_too_large"
    SERVER = "E500_server"
    INTEGRITY = "E510_integrity"
    CENTRAL_UNAVAILABLE = "E503_central_unavailable"


class ContigoError(Exception):
    """Base of domain errors: a code, an HTTP status and a translatable message id."""

    code: ErrorCode = ErrorCode.BAD_REQUEST
    status: int = 400
    message_id: str = "error.bad_request"

    def __init__(self, fields: dict[str, list[str]] | None = None, **params: Any) -> None:
        super().__init__(self.code.value)
        self.fields = fields or {}
        self.params = params

    def message(self) -> str:
        """The message in the current user's language."""
        return translate(self.message_id, **self.params)


class ValidationFailed(ContigoError):
    """Input failed validation; ``fields`` names each wrong field with translated messages."""

    code = ErrorCode.VALIDATION
    status = 422
    message_id = "error.validation"


class UnknownPerson(ContigoError):
    code = ErrorCode.UNKNOWN_PERSON
    status = 404
    message_id = "error.unknown_person"


class UnknownEncounter(ContigoError):
    code = ErrorCode.UNKNOWN_ENCOUNTER
    status = 404
    message_id = "error.unknown_encounter"


class AlreadyVoided(ContigoError):
    code = ErrorCode.ALREADY_VOIDED
    status = 409
    message_id = "error.already_voided"


class Unauthenticated(ContigoError):
    code = ErrorCode.UNAUTHENTICATED
    status = 401
    message_id = "error.unauthenticated"


class Locked(ContigoError):
    code = ErrorCode.LOCKED
    status = 401
    message_id = "error.locked"


class WrongCredentials(ContigoError):
    code = ErrorCode.WRONG_CREDENTIALS
    status = 401
    message_id = "error.wrong_credentials"


class AccountLocked(ContigoError):
    code = ErrorCode.ACCOUNT_LOCKED
    status = 429
    message_id = "error.account_locked"


class DeviceRevoked(ContigoError):
    """The central server revoked this laptop: every user's key copy is gone (contigo.recovery)."""

    code = ErrorCode.DEVICE_REVOKED
    status = 403
    message_id = "cipher.revoked"


class DatabaseDamaged(ContigoError):
    """The encrypted database failed its integrity check: altered or damaged, never shown."""

    code = ErrorCode.DATABASE_DAMAGED
    status = 500
    message_id = "cipher.damaged"


class Forbidden(ContigoError):
    code = ErrorCode.FORBIDDEN
    status = 403
    message_id = "error.forbidden"


class RecordUnreadable(ContigoError):
    """A value this action needs failed its integrity check (the damage is audited)."""

    code = ErrorCode.INTEGRITY
    status = 409
    message_id = "apierr.error.integrity"


class UnlockDamaged(ContigoError):
    """A key record that unlocking opens is damaged: the laptop stays locked."""

    code = ErrorCode.INTEGRITY
    status = 500
    message_id = "apierr.error.unlock_damaged"


class CsrfFailed(ContigoError):
    code = ErrorCode.CSRF
    status = 400
    message_id = "error.csrf"


#: HTTP errors raised by the framework (routing, body size) as the API's codes and messages.
_HTTP_ERRORS: dict[int, tuple[ErrorCode, str]] = {
    404: (ErrorCode.NOT_FOUND, "error.not_found"),
    405: (ErrorCode.METHOD_NOT_ALLOWED, "apierr.error.method_not_allowed"),
    413: (ErrorCode.TOO_LARGE, "apierr.error.too_large"),
}
_SERVER_ERROR = (ErrorCode.SERVER, "apierr.error.server")
_OTHER_ERROR = (ErrorCode.BAD_REQUEST, "error.bad_request")
#: The page shown when even the error page cannot be rendered (no template, no database).
_BARE_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Contigo</title></head>'
    "<body><main><h1>Contigo</h1><p>{message}</p><p>{code}</p>"
    '<p><a href="/">Contigo</a></p></main></body></html>'
)
log = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> Response:
    """The one JSON error shape."""
    return jsonify({"error": {"code": code, "message": message, "fields": fields or {}}})


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/sync/")) or request.is_json


def init_app(app: Flask) -> None:
    """Register the handlers: JSON for the API, a translated page for browsers."""

    @app.errorhandler(ContigoError)
    def _domain(exc: ContigoError) -> Any:
        if _wants_json():
            return error_body(exc.code.value, exc.message(), exc.fields), exc.status
        from flask import render_template

        status = exc.status
        return render_template(
            "error.html", message=exc.message(), code=exc.code, status=status
        ), status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        """Framework errors (404, 405, 413 …) and unhandled exceptions (500, which Flask hands
        over as :class:`InternalServerError`) in the one error shape; a 405 keeps its ``Allow``
        header."""
        status = exc.code or 500
        code, message_id = (
            _SERVER_ERROR if status >= 500 else _HTTP_ERRORS.get(status, _OTHER_ERROR)
        )
        message = translate(message_id)
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        if _wants_json():
            return error_body(code.value, message), status, headers
        return _error_page(message, code, status), status, headers


def _error_page(message: str, code: ErrorCode, status: int) -> str:
    """The translated error page; if it cannot be rendered (the failure that caused a 500 may
    break it too), a bare page with the same message."""
    from flask import render_template
    from markupsafe import escape

    try:
        return render_template("error.html", message=message, code=code, status=status)
    except Exception:  # the last resort of an error page must not fail itself
        if status < 500:
            raise
        log.exception("error page failed")
        return _BARE_PAGE.format(message=escape(message), code=escape(code.value))
