"""Enrolled devices: one-time enrolment codes, revocation, request authentication and ``hello``.

A device proves itself on every request with its Ed25519 key (:mod:`sync.protocol.signing`); a
revoked or unknown device is refused before anything is read or written.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sync.cursor import BadCursor, decode_cursor
from sync.merge import MAX_FORWARD_MS
from sync.models import Device, EnrolmentCode, SyncNonce
from sync.protocol import (
    DEVICE_HEADER,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    MAX_PULL_LIMIT,
    REPLAY_WINDOW_MS,
    SCHEMA_VERSION,
    ErrorCode,
    Hello,
    ProtocolError,
    verify_request,
)
from sync.server import ServerConfig, incarnation, integrity, iso
from sync.server.upcast import alerts, negotiate

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_TTL_MS = 24 * 3600 * 1000


class EnrolmentRefused(Exception):
    """An enrolment code that is unknown, used or expired, or a device id already enrolled."""


class DeviceRevoked(ProtocolError):
    """A revoked device: refused with 401 and told to lock (``control: "lock"``)."""

    code = ErrorCode.UNKNOWN_DEVICE


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def issue_code(s: Session, site_id: str, now_ms: int) -> str:
    """A new one-time code for enrolling a device at ``site_id``, valid 24 hours.

    Keeps: only the code's hash is stored; the code itself exists only in the return value.
    """
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    s.add(
        EnrolmentCode(code_hash=_hash(raw), site_id=site_id, expires_at=iso(now_ms + CODE_TTL_MS))
    )
    s.flush()
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def enrol(
    s: Session, *, code: str, device_id: str, public_key: bytes, label: str, now_ms: int
) -> Device:
    """Register a device with a one-time code; the code is spent in the same transaction.

    Keeps: a code enrols at most one device, never after expiry; a device id is enrolled once.
    Raises :class:`EnrolmentRefused` otherwise, changing nothing.
    """
    row = s.get(EnrolmentCode, _hash(code), with_for_update=True)
    if row is not None and not integrity.code_ok(s, row):
        raise EnrolmentRefused("code not issued by this server")
    if row is None or row.used_at is not None or row.expires_at <= iso(now_ms):
        raise EnrolmentRefused("code unknown, used or expired")
    if s.get(Device, device_id) is not None:
        raise EnrolmentRefused("device already enrolled")
    Ed25519PublicKey.from_public_bytes(public_key)  # refuse a malformed key now, not at sync
    device = Device(
        id=device_id,
        site_id=row.site_id,
        label=label[:120],
        public_key=public_key,
        enrolled_at=iso(now_ms),
        clock_suspect=False,
    )
    row.used_at, row.device_id = iso(now_ms), device_id
    s.add(device)
    s.flush()
    return device


def revoke(s: Session, device_id: str, now_ms: int) -> Device | None:
    """Revoke a device; from now on every request it signs is refused. Idempotent."""
    device = s.get(Device, device_id)
    if device is not None and device.revoked_at is None:
        device.revoked_at = iso(now_ms)
    return device


def authenticate(
    s: Session, headers: Any, method: str, path: str, body: bytes, now_ms: int
) -> Device:
    """The device that signed this request, or :class:`ProtocolError` (401).

    Keeps: a request is accepted at most once (its nonce is recorded in the caller's
    transaction), only within the replay window of the server's clock (``now_ms``; a device
    whose clock is off learns the server's time from the ``S204_clock_skew`` refusal and signs
    again with it), and never from a revoked device.
    """
    device_id = headers.get(DEVICE_HEADER, "")
    device = s.get(Device, device_id) if device_id else None
    if device is None:
        raise ProtocolError("unknown device", code=ErrorCode.UNKNOWN_DEVICE)
    if device.revoked_at is not None:
        raise DeviceRevoked("device revoked")
    key = Ed25519PublicKey.from_public_bytes(device.public_key)

    def seen(nonce: str) -> bool:
        return not _record_nonce(s, nonce, device.id, iso(now_ms))

    verify_request(key, dict(headers), method, path, body, now_ms, seen)
    return device


def _record_nonce(s: Session, nonce: str, device_id: str, seen_at: str) -> bool:
    """Record a request's nonce; ``False`` if it was already recorded (a replay). One
    ``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite (a savepoint, the insert and
    its release were three round trips on every signed request); a savepoint elsewhere."""
    row = {"nonce": nonce, "device_id": device_id, "seen_at": seen_at}
    dialect = s.get_bind().dialect.name
    if dialect in _UPSERT:
        s.flush()  # as s.execute() would (autoflush)
        stmt = _UPSERT[dialect](SyncNonce).values(**row).on_conflict_do_nothing()
        return s.execute(stmt.returning(SyncNonce.nonce)).first() is not None
    try:
        with s.begin_nested():
            s.add(SyncNonce(**row))
            s.flush()
    except IntegrityError:
        return False
    return True


_UPSERT: dict[str, Any] = {"postgresql": pg_insert, "sqlite": sqlite_insert}


def hello(s: Session, cfg: ServerConfig, device: Device, msg: Hello, now_ms: int) -> dict[str, Any]:
    """Versions, limits and the clock check. Records the device's offset and versions; prunes
    nonces older than twice the replay window."""
    offset = msg.device_time_ms - now_ms
    suspect = abs(offset) > MAX_FORWARD_MS
    device.clock_offset_ms, device.clock_suspect = offset, suspect
    device.app_version, device.schema_version = msg.app_version[:32], msg.schema_version
    device.last_seen_at = iso(now_ms)
    s.execute(delete(SyncNonce).where(SyncNonce.seen_at < iso(now_ms - 2 * REPLAY_WINDOW_MS)))
    schema = negotiate(
        cfg.registry,
        msg,
        cfg.cursor_key,
        min_push_schema=cfg.min_push_schema,
        min_pull_schema=cfg.min_pull_schema,
    )
    return {
        **_incarnation(s, cfg, msg, now_ms),
        "server_time_ms": now_ms,
        "server_hlc": cfg.clock.now().encode(),
        "schema_version": SCHEMA_VERSION,
        "max_batch_ops": MAX_BATCH_OPS,
        "max_batch_bytes": MAX_BATCH_BYTES,
        "max_pull_limit": MAX_PULL_LIMIT,
        "clock_offset_ms": offset,
        "clock_suspect": suspect,
        "alerts": alerts(
            msg.schema_version,
            min_pull_schema=cfg.min_pull_schema,
            soft_eol_schema=cfg.soft_eol_schema,
            hard_eol_on=cfg.hard_eol_on,
        ),
        **schema,
    }


def _incarnation(s: Session, cfg: ServerConfig, msg: Hello, now_ms: int) -> dict[str, object]:
    """The incarnation ``hello`` announces; a cursor this incarnation signed for a seq past the
    feed proves a restore and starts the next one first (:mod:`sync.server.incarnation`)."""
    life = incarnation.ensure(s, now_ms)
    if msg.pull_cursor:
        try:
            held = decode_cursor(msg.pull_cursor, cfg.cursor_key)
        except BadCursor:
            held = None  # refused by pull, which names the cursor
        if held is not None:
            life = incarnation.witness(s, held.incarnation, held.seq, now_ms) or life
    return incarnation.announce(life)


def public_key_b64(raw: bytes) -> str:
    """The wire form of a raw Ed25519 public key."""
    return base64.urlsafe_b64encode(raw).decode("ascii")
