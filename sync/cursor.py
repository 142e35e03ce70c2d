"""The opaque, signed pull cursor (SYNC.md §2.5 and §2.7).

A cursor is ``<payload>.<signature>``: the payload is base64url JSON
``{"v":1,"seq":N,"scope":"<fingerprint>","schema":S,"inc":I}`` (``inc``, the central
incarnation, is absent from cursors issued before incarnations) and the signature is
HMAC-SHA256 over the payload text with a server key, both unpadded base64url. Clients store and
send it back verbatim; they never parse it. The server rejects any cursor it did not issue
(:class:`BadCursor`), so a client cannot skip ahead, rewind into another scope or claim a
schema it was never served.

Pure: no I/O. The key is the caller's (the server's secret); nothing here stores it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CURSOR_VERSION = 1
MIN_KEY_BYTES = 16
MAX_CURSOR_CHARS = 1_000


class BadCursor(ValueError):
    """A cursor that this server did not issue, was altered, or cannot be read."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the change feed: every change with ``server_seq <= seq`` was delivered,
    for the access set fingerprinted ``scope``, downcast to ``schema``."""

    seq: int
    scope: str
    schema: int
    incarnation: int = 0
    """The number of the central incarnation that issued it (0: from before incarnations); a
    cursor of an earlier incarnation points into a history the database no longer has."""

    def __post_init__(self) -> None:
        if self.seq < 0 or self.schema < 0:
            raise ValueError("seq and schema must not be negative")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadCursor("not base64url") from exc


def _sign(key: bytes, payload: str) -> str:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"cursor key must be at least {MIN_KEY_BYTES} bytes")
    return _b64encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def encode_cursor(cursor: Cursor, key: bytes) -> str:
    """The opaque, signed text of ``cursor``.

    Keeps: ``decode_cursor(encode_cursor(c, k), k) == c``; the same cursor and key always give
    the same text.
    """
    body: dict[str, Any] = {
        "v": CURSOR_VERSION,
        "seq": cursor.seq,
        "scope": cursor.scope,
        "schema": cursor.schema,
    }
    if cursor.incarnation:
        body["inc"] = cursor.incarnation
    payload = _b64encode(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    return f"{payload}.{_sign(key, payload)}"


def _natural(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadCursor(f"bad {name}")
    return value


def decode_cursor(text: str, key: bytes) -> Cursor:
    """The cursor in ``text``, which must carry a valid signature under ``key``.

    Raises :class:`BadCursor` for anything else, checking the signature (in constant time)
    before reading the payload, so an altered cursor is never interpreted.
    """
    payload, sep, signature = text.partition(".")
    if not sep or not payload or len(text) > MAX_CURSOR_CHARS or not text.isascii():
        raise BadCursor("malformed cursor")
    if not hmac.compare_digest(signature, _sign(key, payload)):
        raise BadCursor("signature does not match")
    try:
        body = json.loads(_b64decode(payload))
    except ValueError as exc:
        raise BadCursor("payload is not JSON") from exc
    if not isinstance(body, dict) or set(body) - {"inc"} != {"v", "seq", "scope", "schema"}:
        raise BadCursor("unexpected payload")
    if body["v"] != CURSOR_VERSION or not isinstance(body["scope"], str):
        raise BadCursor("unsupported cursor")
    return Cursor(
        seq=_natural(body, "seq"),
        scope=body["scope"],
        schema=_natural(body, "schema"),
        incarnation=_natural(body, "inc") if "inc" in body else 0,
    )


def scope_fingerprint(access: Iterable[tuple[str, str]]) -> str:
    """A 32-hex-character fingerprint of a set of ``(person_id, site_id)`` access pairs.

    Keeps: equal sets give equal fingerprints whatever their order or repeats; any added or
    removed pair changes it (up to SHA-256 collisions). It only *detects* a scope change: which
    persons were added or removed the server works out from its access table.
    """
    pairs = sorted({(person_id, site_id) for person_id, site_id in access})
    text = json.dumps(pairs, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
