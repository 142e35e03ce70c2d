"""Keyed MACs over the central's plaintext columns that decide access, checked where they are
read for an access decision (DESIGN.md §4: central holds nothing it cannot vouch for).

Someone who can write to the central's PostgreSQL (a stolen backup restored elsewhere, a
compromised database account, an operator with ``psql``) could otherwise give a site a person
by editing one row: move an owner row to another site, push a visitor's expiry out by a year,
move a laptop to another site. Each such row carries ``mac``, a keyed BLAKE2b MAC under a key
derived from the server's key (which never enters the database) over the columns that decide:

* ``person_site_access``: ``person_id, site_id, role, granted_seq, expires_at``;
* ``devices``: ``id, site_id, public_key, revoked_at``;
* ``person_transfers``: ``id, person_id``, both site codes, ``initiator, state`` and its ops;
* ``enrolment_codes``: ``code_hash, site_id, expires_at`` (checked when a laptop enrols).

Rows are MACed when the ORM inserts or updates them (mapper events) and when a push batch
inserts them in bulk (:func:`access_row_mac`). A row whose MAC does not verify (or is missing)
is logged with its ids and treated as granting nothing; a device's is refused.

Not bound (documented in the README): a deleted row put back exactly as it was (the MAC of an
old, once-valid row still verifies), and the rows' other columns.

The application registers the key of each central database engine with :func:`use_key`; ``sync``
never imports the application.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from hashlib import blake2b
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, event, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapper, Session

from sync.models import Device, EnrolmentCode, PersonSiteAccess, SyncCounter
from sync.transfer_models import PersonTransfer

log = logging.getLogger(__name__)

TAMPERED = "S901_row_integrity"
"""The stable code logged (and returned to a device) for a row that failed its MAC check."""
BACKFILLED = "row_macs"
"""The ``sync_counters`` row set once every row older than the MACs has been given one; from
then on a row without a MAC is refused, never MACed."""

CHANGES_BOUND_FROM = "changes_bound_from"
"""The ``sync_counters`` row holding the first ``server_seq`` whose change payload is sealed
with its routing columns in its associated data (:func:`change_aad`); older changes were
sealed with their seq alone (:func:`legacy_change_aad`)."""
NO_ACCESS_UNTIL = "0000"
"""The expiry a tampered access row is read with: before any time, so it grants nothing, yet
the person still reads as known to the server (an op for it is refused, never deferred)."""

_KEYS: WeakKeyDictionary[Engine, Callable[[], bytes]] = WeakKeyDictionary()
_VERIFIED: dict[tuple[object, ...], None] = {}
_VERIFIED_MAX = 100_000
"""Access rows whose MAC verified, by contents (about 40 MB at most per worker)."""


class MissingKey(RuntimeError):
    """An access-deciding row was written or read on an engine with no MAC key registered."""


def use_key(engine: Engine, key: Callable[[], bytes]) -> None:
    """Register the MAC key of a central database (``key()`` is called when a row is MACed
    or checked, so it may read an unlocked vault)."""
    _KEYS[engine] = key


def _key(bind: Engine | Connection) -> bytes:
    engine = bind.engine if isinstance(bind, Connection) else bind
    found = _KEYS.get(engine)
    if found is None:
        raise MissingKey("no row MAC key for this database")
    return found()


def has_key(s: Session) -> bool:
    """Whether ``s`` is bound to a central database with a MAC key (a laptop's is not: it
    keeps its own visits' access rows, which decide nothing on central)."""
    bind = s.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    return engine in _KEYS


def session_key(s: Session) -> bytes:
    """The MAC key of the database ``s`` is bound to."""
    bind = s.get_bind()
    assert isinstance(bind, Engine | Connection)
    return _key(bind)


def _mac(key: bytes, *parts: object) -> str:
    # Keyed BLAKE2b is a MAC by design (RFC 7693) and about twice as fast as HMAC-SHA256 on
    # short messages: a large site's pull checks tens of thousands of rows.
    message = "\x1f".join("\x00" if p is None else str(p) for p in parts).encode()
    return blake2b(message, key=key, digest_size=32, person=b"contigo/row-mac").hexdigest()


def access_row_mac(
    key: bytes,
    person_id: str,
    site_id: str,
    role: str,
    granted_seq: int,
    expires_at: str | None,
) -> str:
    """The MAC of one ``person_site_access`` row."""
    return _mac(key, "person_site_access", person_id, site_id, role, granted_seq, expires_at)


def code_row_mac(key: bytes, code_hash: str, site_id: str, expires_at: str) -> str:
    """The MAC of one ``enrolment_codes`` row: which site a code enrols into, until when."""
    return _mac(key, "enrolment_codes", code_hash, site_id, expires_at)


def code_ok(s: Session, row: EnrolmentCode) -> bool:
    """Whether an enrolment code row is one the server issued (else logged)."""
    expected = code_row_mac(session_key(s), row.code_hash, row.site_id, row.expires_at)
    if row.mac is not None and hmac.compare_digest(expected, row.mac):
        return True
    log.warning("%s enrolment_codes site=%s", TAMPERED, row.site_id)
    return False


def transfer_row_mac(key: bytes, t: PersonTransfer) -> str:
    """The MAC of one ``person_transfers`` row on central: its person, sides, initiator,
    state and the ops that asked and decided (who may accept, and what accepting moves)."""
    return _mac(
        key,
        "person_transfers",
        t.id,
        t.person_id,
        t.from_site_code,
        t.to_site_code,
        t.initiator,
        t.state,
        t.base_owner_op_id,
        t.requested_op_id,
        t.decided_op_id,
    )


def transfer_ok(s: Session, t: PersonTransfer) -> bool:
    """Whether a transfer row is as the server wrote it; a row that is not is logged."""
    expected = transfer_row_mac(session_key(s), t)
    if t.mac is not None and hmac.compare_digest(expected, t.mac):
        return True
    log.warning("%s person_transfers transfer=%s person=%s", TAMPERED, t.id, t.person_id)
    return False


def device_row_mac(
    key: bytes, device_id: str, site_id: str, public_key: bytes, revoked_at: str | None
) -> str:
    """The MAC of one ``devices`` row (the columns that say which site it pulls for, what key
    signs for it, and whether it may still)."""
    return _mac(key, "devices", device_id, site_id, public_key.hex(), revoked_at)


def access_ok(
    key: bytes,
    person_id: str,
    site_id: str,
    role: str,
    granted_seq: int,
    expires_at: str | None,
    mac: str | None,
) -> bool:
    """Whether an access row is as the server wrote it; a row that is not is logged.

    Rows verified once are remembered by their exact contents (MAC included): every page of a
    large site's pull reads the same tens of thousands of rows, and a row changed in any
    column is a different entry, so it is checked afresh."""
    seen = (key, person_id, site_id, role, granted_seq, expires_at, mac)
    if seen in _VERIFIED:
        return True
    expected = access_row_mac(key, person_id, site_id, role, granted_seq, expires_at)
    if mac is not None and hmac.compare_digest(expected, mac):
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[seen] = None
        return True
    log.warning("%s person_site_access person=%s site=%s", TAMPERED, person_id, site_id)
    return False


def access_row_ok(key: bytes, row: PersonSiteAccess) -> bool:
    """:func:`access_ok` for an ORM row."""
    return access_ok(
        key, row.person_id, row.site_id, row.role, row.granted_seq, row.expires_at, row.mac
    )


def change_aad(seq: int, person_id: str | None, site_id: str | None) -> str:
    """The associated data of a change's payload: its seq and the columns that route it to
    devices (the person whose access rows decide, or the one site), so a change moved to
    another person or site in the database no longer opens."""
    return f"sync_changes:{seq}:{person_id or ''}:{site_id or ''}:payload"


def legacy_change_aad(seq: int) -> str:
    """The associated data of a change sealed before :func:`change_aad` (seq only)."""
    return f"sync_changes:{seq}:payload"


def changes_bound_from(s: Session) -> int:
    """The first seq sealed with :func:`change_aad` (0 on a central that never had others)."""
    row = s.get(SyncCounter, CHANGES_BOUND_FROM)
    return row.value if row is not None else 0


def owner_site(s: Session, person_id: str) -> str | None:
    """The site of the person's owner row, if that row verifies."""
    key = session_key(s)
    for row in s.scalars(
        select(PersonSiteAccess).where(
            PersonSiteAccess.person_id == person_id, PersonSiteAccess.role == "owner"
        )
    ):
        if access_row_ok(key, row):
            return row.site_id
    return None


def device_ok(s: Session, device: Device) -> bool:
    """Whether a device row is as the server wrote it (a pseudo-device of the central itself,
    never stored, is)."""
    if device.id == "central":
        return True
    key = session_key(s)
    expected = device_row_mac(key, device.id, device.site_id, device.public_key, device.revoked_at)
    if device.mac is not None and hmac.compare_digest(expected, device.mac):
        return True
    log.warning("%s devices device=%s", TAMPERED, device.id)
    return False


class TamperedRow(RuntimeError):
    """An update of a row whose stored MAC did not verify: refused, so that writing to a
    tampered row can never give it a fresh, valid MAC."""


def _before(row: Any, name: str) -> Any:
    """The value ``row.name`` had when it was loaded (before this flush's change)."""
    history = inspect(row).attrs[name].history
    return history.deleted[0] if history.deleted else getattr(row, name)


@event.listens_for(PersonSiteAccess, "before_insert")
def _mac_new_access(_mapper: Mapper[Any], conn: Connection, row: PersonSiteAccess) -> None:
    if conn.engine not in _KEYS:  # a laptop's own visit rows (no server key there)
        return
    row.mac = access_row_mac(
        _key(conn), row.person_id, row.site_id, row.role, row.granted_seq, row.expires_at
    )


@event.listens_for(PersonSiteAccess, "before_update")
def _mac_access(_mapper: Mapper[Any], conn: Connection, row: PersonSiteAccess) -> None:
    if conn.engine not in _KEYS:
        return
    key = _key(conn)
    old = [_before(row, n) for n in ("person_id", "site_id", "role", "granted_seq", "expires_at")]
    if not access_ok(key, old[0], old[1], old[2], old[3], old[4], _before(row, "mac")):
        raise TamperedRow(TAMPERED)
    _mac_new_access(_mapper, conn, row)


@event.listens_for(EnrolmentCode, "before_insert")
def _mac_code(_mapper: Mapper[Any], conn: Connection, row: EnrolmentCode) -> None:
    row.mac = code_row_mac(_key(conn), row.code_hash, row.site_id, row.expires_at)


@event.listens_for(PersonTransfer, "before_insert")
@event.listens_for(PersonTransfer, "before_update")
def _mac_transfer(_mapper: Mapper[Any], conn: Connection, row: PersonTransfer) -> None:
    # Laptops hold transfer rows too (a mirror, no key): only central's are MACed. An update
    # of a tampered row is refused by :func:`transfer_ok`, checked before any transfer op.
    engine = conn.engine
    if engine in _KEYS:
        row.mac = transfer_row_mac(_key(conn), row)


@event.listens_for(Device, "before_insert")
def _mac_new_device(_mapper: Mapper[Any], conn: Connection, row: Device) -> None:
    row.mac = device_row_mac(_key(conn), row.id, row.site_id, row.public_key, row.revoked_at)


@event.listens_for(Device, "before_update")
def _mac_device(_mapper: Mapper[Any], conn: Connection, row: Device) -> None:
    key = _key(conn)
    old = [_before(row, n) for n in ("id", "site_id", "public_key", "revoked_at")]
    expected = device_row_mac(key, *old)
    mac = _before(row, "mac")
    if mac is None or not hmac.compare_digest(expected, mac):
        log.warning("%s devices device=%s", TAMPERED, row.id)
        if old[3] is not None or row.revoked_at is None:  # revoking a tampered row is allowed
            raise TamperedRow(TAMPERED)
    _mac_new_device(_mapper, conn, row)


def backfill(s: Session) -> int:
    """Give every access and device row written before MACs existed its MAC, once: the first
    start after the upgrade marks it done (``sync_counters.row_macs``), so a MAC-less row
    written into the table later is refused, never adopted. Returns the rows MACed.

    Writes with UPDATE statements (no mapper events: those refuse to touch a row whose stored
    MAC does not verify, which a row without one does not)."""
    # Workers starting together: the first to lock the seq counter does the work, the others
    # find it done (the lock also keeps seqs from moving while the bound is taken).
    latest = s.scalar(select(SyncCounter).where(SyncCounter.name == "server_seq").with_for_update())
    if s.get(SyncCounter, CHANGES_BOUND_FROM) is None:
        _mark(s, CHANGES_BOUND_FROM, (latest.value if latest else 0) + 1)
    if s.get(SyncCounter, BACKFILLED) is not None:
        return 0
    key = session_key(s)
    done = 0
    access = s.execute(
        select(
            PersonSiteAccess.person_id,
            PersonSiteAccess.site_id,
            PersonSiteAccess.role,
            PersonSiteAccess.granted_seq,
            PersonSiteAccess.expires_at,
        ).where(PersonSiteAccess.mac.is_(None))
    ).all()
    for person_id, site_id, role, granted_seq, expires_at in access:
        s.execute(
            update(PersonSiteAccess)
            .where(PersonSiteAccess.person_id == person_id, PersonSiteAccess.site_id == site_id)
            .values(mac=access_row_mac(key, person_id, site_id, role, granted_seq, expires_at))
            .execution_options(synchronize_session=False)
        )
        done += 1
    devices = s.execute(
        select(Device.id, Device.site_id, Device.public_key, Device.revoked_at).where(
            Device.mac.is_(None)
        )
    ).all()
    for device_id, site_id, public_key, revoked_at in devices:
        s.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(mac=device_row_mac(key, device_id, site_id, public_key, revoked_at))
            .execution_options(synchronize_session=False)
        )
        done += 1
    for t in s.scalars(select(PersonTransfer).where(PersonTransfer.mac.is_(None))):
        s.execute(
            update(PersonTransfer)
            .where(PersonTransfer.id == t.id)
            .values(mac=transfer_row_mac(key, t))
            .execution_options(synchronize_session=False)
        )
        done += 1
    for code in s.scalars(select(EnrolmentCode).where(EnrolmentCode.mac.is_(None))):
        s.execute(
            update(EnrolmentCode)
            .where(EnrolmentCode.code_hash == code.code_hash)
            .values(mac=code_row_mac(key, code.code_hash, code.site_id, code.expires_at))
            .execution_options(synchronize_session=False)
        )
        done += 1
    _mark(s, BACKFILLED, 1)
    return done


def _mark(s: Session, name: str, value: int) -> None:
    """Add a marker counter, unless a worker that started at the same time just did."""
    try:
        with s.begin_nested():
            s.add(SyncCounter(name=name, value=value))
            s.flush()
    except IntegrityError:
        pass
