"""Pull and snapshot: the change feed of a device's site scope (SYNC.md §2.7).

Scope is computed by join with ``person_site_access`` (owner, previous owner, visitor until its
expiry), never stored in the changes. Pages are ordered by ``server_seq``; the cursor is signed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Integer, and_, bindparam, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from sync import fastjson
from sync.cursor import BadCursor, Cursor, decode_cursor, encode_cursor, scope_fingerprint
from sync.models import AccessGeneration, Device, PersonSiteAccess, SyncChange
from sync.protocol import SCHEMA_VERSION, ErrorCode, ProtocolError, PullRequest, SnapshotRequest
from sync.schema import downcast_change, entity_known, newest_schema
from sync.server import Open, ServerConfig, incarnation, integrity, iso, scope
from sync.server import payload as change_payload
from sync.server.upcast import refuse_below

log = logging.getLogger(__name__)


def _scope(s: Session, site_id: str, now: str) -> Any:
    return and_(
        PersonSiteAccess.person_id == SyncChange.person_id,
        PersonSiteAccess.site_id == site_id,
        or_(PersonSiteAccess.expires_at.is_(None), PersonSiteAccess.expires_at > now),
    )


_ACCESS = (
    PersonSiteAccess.role,
    PersonSiteAccess.granted_seq,
    PersonSiteAccess.expires_at,
    PersonSiteAccess.mac,
)
"""The access row's columns its MAC covers beyond the person and site, and the MAC."""


def _live(site_id: str, now: str) -> Any:
    return and_(
        PersonSiteAccess.site_id == site_id,
        or_(PersonSiteAccess.expires_at.is_(None), PersonSiteAccess.expires_at > now),
    )


def _signature(s: Session, site_id: str, now: str) -> str | None:
    """A SHA-256, made by PostgreSQL, of every column of the site's live access rows (``None``
    on another database). Equal signatures mean the very same rows, so what was verified from
    them still holds; one row changed in any column (its MAC included) changes it."""
    if s.get_bind().dialect.name != "postgresql":
        return None
    line = func.concat_ws(
        "\x1f",
        PersonSiteAccess.person_id,
        PersonSiteAccess.role,
        PersonSiteAccess.granted_seq,
        func.coalesce(PersonSiteAccess.expires_at, "\x02"),
        func.coalesce(PersonSiteAccess.mac, "\x02"),
    )
    # Rows in the order of the (site, person) index, aggregated as they come: an ordered
    # aggregate sorts its input itself (PostgreSQL 15), most of the query's time on a large
    # site. Lines are delimited, so equal texts still mean equal rows in any order; an order
    # that changed would only make the rows read and verified again.
    ordered = (
        select(line.label("line"))
        .where(_live(site_id, now))
        .order_by(PersonSiteAccess.site_id, PersonSiteAccess.person_id)
        .subquery()
    )
    rows = func.string_agg(ordered.c.line, literal("\x1e"))
    digest = func.encode(func.sha256(func.convert_to(func.coalesce(rows, ""), "UTF8")), "hex")
    found = s.scalar(select(digest).select_from(ordered))
    return str(found)


@dataclass(frozen=True)
class _Held:
    """A site's verified scope as a worker keeps it between pages."""

    persons: frozenset[str]
    signature: str
    """:func:`_signature` of the rows it was read from (at ``at``)."""
    generation: int | None
    """The site's access generation those rows stood under (``None``: not known, for instance
    because it moved while they were read)."""
    at: str
    """The instant the rows were taken live at."""
    hashed: float
    """When (``time.monotonic()``) the rows were last hashed and found the same."""


_SCOPES: dict[tuple[bytes, str], _Held] = {}
"""A site's verified scope by MAC key and site (per worker process)."""
RECHECK_S = 60.0
"""How long a kept scope is trusted on its generation alone before its rows are hashed again
(:func:`_scope_persons`)."""


def _generation(
    s: Session, site_id: str, then: str | None = None, now: str = ""
) -> tuple[int | None, bool]:
    """The site's access generation (``None``: the site has none, or not on PostgreSQL) and,
    when ``then`` is given, whether any of its rows is live at one of ``then`` and ``now`` and
    not at the other (its expiry falls between them, compared as the page's own queries
    compare), in one statement."""
    if s.get_bind().dialect.name != "postgresql":
        return None, False
    generation = (
        select(AccessGeneration.generation)
        .where(AccessGeneration.site_id == site_id)
        .scalar_subquery()
    )
    expires = PersonSiteAccess.expires_at
    moved: Any = literal(False)
    if then is not None:
        moved = exists().where(
            PersonSiteAccess.site_id == site_id,
            expires.is_not(None),
            expires > func.least(then, now),
            expires <= func.greatest(then, now),
        )
    found, expired = s.execute(select(generation, moved)).one()
    return (None if found is None else int(found)), bool(expired)


def _scope_persons(s: Session, site_id: str, now: str) -> frozenset[str]:
    """The persons the site has live access to, through access rows whose MAC verifies.

    Every page of a large site's pull reads the same tens of thousands of rows. On PostgreSQL a
    worker keeps the set it verified, and uses it again while:

    * the site's access generation (:class:`sync.models.AccessGeneration`, moved by triggers in
      the same statement as any change to the site's rows, whoever makes it) is the one the
      rows were read under, read before and after them in the same transaction, and
    * no row's expiry falls between the instant they were read live at and now, and
    * the rows were hashed (:func:`_signature`) less than :data:`RECHECK_S` seconds ago.

    Otherwise the database hashes the rows and the set verified from the same rows is used
    again; any change to any of them reads and verifies them afresh."""
    key = integrity.session_key(s)
    held = _SCOPES.get((key, site_id))
    generation, expired = _generation(s, site_id, held.at if held else None, now)
    if (
        held is not None
        and generation is not None
        and held.generation == generation
        and time.monotonic() - held.hashed < RECHECK_S
        and not expired
    ):
        return held.persons
    signature = _signature(s, site_id, now)
    if signature is not None and held is not None and held.signature == signature:
        persons = held.persons
    else:
        rows = s.execute(select(PersonSiteAccess.person_id, *_ACCESS).where(_live(site_id, now)))
        persons = frozenset(
            person_id
            for person_id, role, granted, expires, mac in rows
            if integrity.access_ok(key, person_id, site_id, role, granted, expires, mac)
        )
    if signature is not None:
        # The generation read again: had it moved, the rows read may be newer than it.
        stood = generation if generation == _generation(s, site_id)[0] else None
        if len(_SCOPES) >= _FINGERPRINTS_MAX and (key, site_id) not in _SCOPES:
            _SCOPES.clear()
        _SCOPES[(key, site_id)] = _Held(persons, signature, stood, now, time.monotonic())
    return persons


_FINGERPRINTS: dict[tuple[str, frozenset[str]], str] = {}
_FINGERPRINTS_MAX = 16


def _fingerprint(site_id: str, persons: frozenset[str]) -> str:
    """:func:`scope_fingerprint` of a site's scope, remembered by the exact set (every page of a
    large site's pull presents the same tens of thousands of persons; sorting and hashing them
    took longer than the page's own changes). A set differing by one person is another key."""
    key = (site_id, persons)
    found = _FINGERPRINTS.get(key)
    if found is None:
        if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
            _FINGERPRINTS.clear()
        found = _FINGERPRINTS[key] = scope_fingerprint((p, site_id) for p in persons)
    return found


_CHANGE = (
    SyncChange.server_seq,
    SyncChange.person_id,
    SyncChange.site_id,
    SyncChange.entity_type,
    SyncChange.entity_id,
    SyncChange.kind,
    SyncChange.payload_enc,
    SyncChange.origin_op_id,
    SyncChange.origin_device_id,
    SyncChange.hlc,
)
"""The columns of a change that go on the wire, read as plain rows (attribute access by the
same names as :class:`SyncChange`): a page of a thousand changes built no ORM objects, which
cost more than the rest of the page's work."""


_PAGE = (
    select(*_CHANGE, *_ACCESS)
    .outerjoin(
        PersonSiteAccess,
        and_(
            PersonSiteAccess.person_id == SyncChange.person_id,
            PersonSiteAccess.site_id == bindparam("site"),
            or_(
                PersonSiteAccess.expires_at.is_(None),
                PersonSiteAccess.expires_at > bindparam("now"),
            ),
        ),
    )
    .where(
        SyncChange.server_seq > bindparam("after"),
        or_(PersonSiteAccess.person_id.is_not(None), SyncChange.site_id == bindparam("site")),
    )
    .order_by(SyncChange.server_seq)
    .limit(bindparam("limit", type_=Integer))
)
"""A page of the change feed: the changes after ``after`` of persons ``site`` has live access
to (the access row joined in, to be verified) or scoped to ``site`` itself, in seq order."""

_PAGE_SQL: dict[tuple[str, str], str] = {}


def _page(s: Session, site_id: str, now: str, after: int, limit: int) -> list[Any]:
    """The rows of :data:`_PAGE` (attribute access by column name). On PostgreSQL they are read
    in the binary format, through the session's connection and transaction: a page's thousand
    sealed payloads come as bytes instead of hexadecimal text to decode (which took as long as
    the query itself), and the statement's text is made once per process."""
    params = {"site": site_id, "now": now, "after": after, "limit": limit}
    if s.get_bind().dialect.name != "postgresql":
        return list(s.execute(_PAGE, params))
    from psycopg.rows import namedtuple_row  # the central's driver (not on a laptop)

    s.flush()  # as s.execute() would (autoflush)
    connection = s.connection()
    dialect = connection.dialect
    sql = _PAGE_SQL.get((dialect.name, dialect.paramstyle))
    if sql is None:
        sql = _PAGE_SQL[(dialect.name, dialect.paramstyle)] = str(_PAGE.compile(dialect=dialect))
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor(binary=True, row_factory=namedtuple_row) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _verified(s: Session, site_id: str, rows: Any) -> list[Any]:
    """The changes of a page (rows of :data:`_CHANGE` and :data:`_ACCESS`) whose person's
    access row (joined in) verifies; a site-scoped change (no access row) is kept. A change
    let through by a tampered row is left out."""
    key = integrity.session_key(s)
    checked: dict[str, bool] = {}
    out = []
    for change in rows:
        role, granted, expires, mac = change[-4:]
        if role is not None:
            ok = checked.get(change.person_id)
            if ok is None:
                ok = checked[change.person_id] = integrity.access_ok(
                    key, change.person_id, site_id, role, granted, expires, mac
                )
            if not ok:
                continue
        out.append(change)
    return out


def _open(open_: Open, row: Any, bound_from: int) -> bytes | None:
    """The payload text of a change (``None`` if it has none). It opens only under the row's
    own seq, person and site (changes from before ``bound_from`` under their seq alone);
    raises if it was moved or altered."""
    if row.payload_enc is None:
        return None
    aad = (
        integrity.change_aad(row.server_seq, row.person_id, row.site_id)
        if row.server_seq >= bound_from
        else integrity.legacy_change_aad(row.server_seq)
    )
    return open_(aad, row.payload_enc)


def _wire(row: Any, body: Any, fields: Any) -> dict[str, Any]:
    """One change in wire form, with the body and fields given (``fields`` left out when
    ``None``)."""
    out: dict[str, Any] = {
        "seq": row.server_seq,
        "kind": row.kind,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "data": {
            "person_id": row.person_id,
            "origin_device_id": row.origin_device_id,
            "origin_op_id": row.origin_op_id,
            "hlc": row.hlc,
            "body": body,
        },
    }
    if fields is not None:
        out["fields"] = fields
    return out


def _parsed(row: Any, plain: bytes | None) -> dict[str, Any]:
    """:func:`_wire` of a change from its payload text, parsed."""
    payload = fastjson.loads(plain) if plain is not None else {}
    return _wire(row, payload.get("body"), payload.get("fields") or None)


_EMPTY = (b"{}", b"null")


def _embedded(row: Any, body: bytes, fields: bytes) -> dict[str, Any]:
    """:func:`_wire` of a change whose body and fields are JSON texts, embedded as they are
    (the page's JSON is the same as if they had been parsed and written again)."""
    return _wire(row, orjson.Fragment(body), None if fields in _EMPTY else orjson.Fragment(fields))


def change_json(cfg: ServerConfig, row: Any, bound_from: int = 0) -> dict[str, Any]:
    """One change in wire form, its payload decrypted for transport (TLS protects it).

    The payload opens only under the row's own seq, person and site (changes from before
    ``bound_from`` under their seq alone); raises if it was moved or altered."""
    return _parsed(row, _open(cfg.open, row, bound_from))


def served_schema(cfg: ServerConfig, device: Device) -> int:
    """The wire schema a device is served at: the one it announced in its last ``hello`` (or
    push), capped at this server's. A device below ``min_pull_schema`` is refused (``S104``).
    """
    announced = SCHEMA_VERSION if device.schema_version is None else device.schema_version
    schema = min(announced, SCHEMA_VERSION)
    refuse_below(cfg.min_pull_schema, schema)
    return schema


def _downcast(s: Session, cfg: ServerConfig, rows: list[Any], schema: int) -> list[Any]:
    """Rows in wire form, without what a client at ``schema`` cannot represent (SYNC.md §2.12
    item 4); a change with nothing left is left out, and the cursor still passes it. A change
    whose payload does not open under its own seq, person and site (moved in the database) is
    left out too, and logged.

    For an up-to-date client nothing is cut: a change's body and fields go into the page as the
    JSON texts its payload holds (:func:`sync.server.payload.split`, embedded as
    :class:`orjson.Fragment`), never parsed and serialised again."""
    bound_from = integrity.changes_bound_from(s)
    cut = schema < newest_schema(cfg.registry)  # nothing to cut for an up-to-date client
    open_ = cfg.opener() if cfg.opener is not None else cfg.open
    known: dict[str, bool] = {}
    out: list[Any] = []
    for row in rows:
        if not cut:
            entity_type = row.entity_type
            ok = known.get(entity_type)
            if ok is None:
                ok = known[entity_type] = entity_known(cfg.registry, entity_type, schema)
            if not ok:
                continue
        try:
            plain = _open(open_, row, bound_from)
        except Exception:  # the application's open() raises its own error for a moved payload
            log.warning(
                "%s sync_changes seq=%s person=%s site=%s",
                integrity.TAMPERED,
                row.server_seq,
                row.person_id,
                row.site_id,
            )
            continue
        parts = None if cut or plain is None else change_payload.split(plain)
        if parts is not None:
            out.append(_embedded(row, *parts))
            continue
        wire = _parsed(row, plain)
        if not cut:
            out.append(wire)
            continue
        change = downcast_change(cfg.registry, wire, schema)
        if change is not None:
            out.append(change)
    return out


def pull(
    s: Session, cfg: ServerConfig, device: Device, req: PullRequest, now_ms: int
) -> dict[str, Any]:
    """One page of changes after the cursor, in the device's scope.

    Keeps: changes come in strictly increasing seq; ``next_cursor`` names the last one sent, so
    applying pages in turn neither skips nor repeats a change; a tampered cursor is refused; a
    cursor of an earlier incarnation (issued before a restore) starts the feed again.
    """
    now = iso(now_ms)
    schema = served_schema(cfg, device)
    try:
        presented = decode_cursor(req.cursor, cfg.cursor_key) if req.cursor else None
    except BadCursor as exc:
        raise ProtocolError(str(exc), where="cursor", code=ErrorCode.BAD_CURSOR) from None
    life = incarnation.current(s)
    number = life.number if life is not None else 0
    if presented is not None and presented.incarnation not in (0, number):
        # A cursor into a history this database no longer has (it was restored): the feed is
        # served again from the start; apply is version-gated and inserts ignore known ids.
        presented = None
    after = presented.seq if presented else 0
    joined = _page(s, device.site_id, now, after, req.limit + 1)
    has_more = len(joined) > req.limit
    joined = joined[: req.limit]
    last = joined[-1].server_seq if joined else after
    rows = _verified(s, device.site_id, joined)
    # The scope's persons are read once per page and fingerprinted once (they were read twice
    # and hashed twice: 20,000 rows each time on a large site).
    persons = _scope_persons(s, device.site_id, now)
    fingerprint = _fingerprint(device.site_id, persons)
    device.last_seen_at = now
    presented_scope = presented.scope if presented else None
    changed, issued = scope.diff(
        s, device.id, device.site_id, presented_scope, persons, last, fingerprint=fingerprint
    )
    cursor = Cursor(seq=last, scope=issued, schema=schema, incarnation=number)
    added = changed["add"] if changed else []
    visiting = scope.visits(s, device.site_id, added, presented.seq if presented else None, now)
    if visiting:
        changed = (changed or {"add": [], "remove": []}) | {"visits": visiting}
    return ({"scope": changed} if changed else {}) | {
        "changes": _downcast(s, cfg, rows, schema),
        "next_cursor": encode_cursor(cursor, cfg.cursor_key),
        "has_more": has_more,
        "server_hlc": cfg.clock.now().encode(),
        "control": None,
    }


def snapshot(
    s: Session, cfg: ServerConfig, device: Device, req: SnapshotRequest, now_ms: int
) -> dict[str, Any]:
    """The full state of the asked persons in the device's scope, as their whole change
    history up to ``as_of_seq`` (applying it is idempotent and version-gated, so overlap with
    the feed is harmless). Persons outside the scope are left out."""
    now = iso(now_ms)
    persons = []
    as_of = 0
    for person_id in req.person_ids:
        rows = _verified(
            s,
            device.site_id,
            s.execute(
                select(*_CHANGE, *_ACCESS)
                .join(PersonSiteAccess, _scope(s, device.site_id, now))
                .where(SyncChange.person_id == person_id)
                .order_by(SyncChange.server_seq)
            ),
        )
        if rows:
            as_of = max(as_of, rows[-1].server_seq)
            changes = _downcast(s, cfg, rows, served_schema(cfg, device))
            persons.append({"id": person_id, "changes": changes})
    return {"as_of_seq": as_of, "persons": persons}
