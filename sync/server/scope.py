"""Which persons a device's scope gained or lost since the scope it was last sent (SYNC.md §2.7).

The pull cursor carries only a fingerprint of the site's access set: it shows *that* the scope
changed, not *how*. So the server keeps, per device, the person set behind every fingerprint it
answered with (:class:`sync.transfer_models.DeviceScope`). A cursor can only come from a response
the device applied, so the set recorded for the presented fingerprint is exactly what the device
holds; the difference with the current access set is the scope change to announce. Sets older
than the presented one are pruned; the newest is recorded with each answer. A cursor whose
fingerprint was never recorded (issued before this table existed) is taken to match the current
scope, which is what such a device was last sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, text
from sqlalchemy.orm import Session

from sync.cursor import scope_fingerprint
from sync.models import PersonSiteAccess
from sync.server import integrity
from sync.sqlin import among
from sync.transfer_models import DeviceScope

EMPTY = scope_fingerprint(())
HELD = ""
"""The ``person_id`` of the marker row of a set that :func:`note_held` grew (no person id is
empty)."""
CONFIRMED = "~"
"""Appended to a fingerprint for the cursor of an answer that announced the removal of persons
held beyond it (fingerprints are hexadecimal, so the two never meet)."""


def diff(
    s: Session,
    device_id: str,
    site_id: str,
    presented: str | None,
    current: AbstractSet[str],
    seq: int,
    *,
    fingerprint: str | None = None,
) -> tuple[dict[str, Any] | None, str]:
    """The ``{"add", "remove"}`` persons since the ``presented`` fingerprint (``None`` when
    nothing changed), and the fingerprint the answer's cursor is to carry; records the current
    set under that fingerprint for the next pull.

    Keeps: announcing is idempotent (a lost answer is announced again, since the device then
    presents the older fingerprint); a first pull (no cursor) announces no additions, because
    it reads the whole feed from the start. ``fingerprint``, when given, is the caller's own
    :func:`scope_fingerprint` of ``current`` at ``site_id`` (not recomputed).

    A set that :func:`note_held` grew is read even when the fingerprints match, and so is the
    empty scope's on a first pull: the persons the device holds beyond ``current`` are
    announced as removed until the device presents a cursor issued after the announcement.
    When the grown set's fingerprint is also the current one, that cursor carries
    ``fingerprint + CONFIRMED`` (the same persons, recorded apart), so that presenting it proves
    the answer was applied and presenting the old one proves it was lost.
    """
    if fingerprint is None:
        fingerprint = scope_fingerprint((p, site_id) for p in current)
    first = presented is None
    basis = EMPTY if first and _held(s, device_id, EMPTY) else presented
    grown = basis is not None and _held(s, device_id, basis)
    issued = fingerprint + CONFIRMED if grown and basis == fingerprint else fingerprint
    known: AbstractSet[str]
    if basis is None or (basis == fingerprint and not grown):
        known = current
    else:
        rows = s.scalars(
            select(DeviceScope.person_id).where(
                DeviceScope.device_id == device_id,
                DeviceScope.fingerprint == basis,
                DeviceScope.person_id != HELD,
            )
        )
        # none recorded: an empty scope, or a cursor from before this table existed
        empty = basis.removesuffix(CONFIRMED) == EMPTY
        known = set(rows) or (set() if empty else current)
        if first:  # the feed from the start brings every current person
            known |= current
    _record(s, device_id, basis, issued, current, seq)
    if known is current:  # (two differences of tens of thousands of persons, a page)
        return None, issued
    add, remove = sorted(current - known), sorted(known - current)
    return ({"add": add, "remove": remove} if add or remove else None), issued


def visits(
    s: Session, site_id: str, added: list[str], after: int | None, now: str
) -> dict[str, str]:
    """The live visits of ``site_id`` to announce, person → the visit's end (ISO text): those
    to the persons just ``added`` to its scope, and those granted or extended since the
    cursor's ``after`` (``None``: a first pull, which announces every live visit). The
    laptops let the site's clinical users read a visited person until then (a visitor lookup
    elsewhere, or a transfer sent to the site). Keeps: announcing again is harmless."""
    since = PersonSiteAccess.granted_seq > (after or 0)
    if added:
        since = or_(since, among(s, PersonSiteAccess.person_id, added))
    rows = s.execute(
        select(
            PersonSiteAccess.person_id,
            PersonSiteAccess.granted_seq,
            PersonSiteAccess.expires_at,
            PersonSiteAccess.mac,
        ).where(
            PersonSiteAccess.site_id == site_id,
            PersonSiteAccess.role == "visitor",
            PersonSiteAccess.expires_at > now,
            since,
        )
    )
    key = integrity.session_key(s)
    return {
        person_id: str(expires)
        for person_id, granted, expires, mac in rows
        if integrity.access_ok(key, person_id, site_id, "visitor", granted, expires, mac)
    }


def note_held(s: Session, device_id: str, person_ids: Iterable[str]) -> None:
    """Record that ``device_id`` now holds ``person_ids`` though no pull sent them (a visitor
    lookup's snapshot): every scope set recorded for the device gains them (the empty scope's
    when none is) and is marked grown, so the pull that follows the end of their access
    announces their removal even if the scope's fingerprint did not change, and even if that
    pull is the device's first. Keeps: idempotent.
    """
    rows = s.execute(
        select(DeviceScope.fingerprint, func.max(DeviceScope.recorded_seq))
        .where(DeviceScope.device_id == device_id)
        .group_by(DeviceScope.fingerprint)
    )
    recorded: dict[str, int] = {fingerprint: seq for fingerprint, seq in rows} or {EMPTY: 0}
    for fingerprint, seq in recorded.items():
        for person_id in (*person_ids, HELD):
            if s.get(DeviceScope, (device_id, fingerprint, person_id)) is None:
                row = DeviceScope(device_id=device_id, fingerprint=fingerprint, person_id=person_id)
                row.recorded_seq = seq
                s.add(row)
    s.flush()


def _held(s: Session, device_id: str, fingerprint: str) -> bool:
    return s.get(DeviceScope, (device_id, fingerprint, HELD)) is not None


def _record(
    s: Session,
    device_id: str,
    basis: str | None,
    issued: str,
    current: AbstractSet[str],
    seq: int,
) -> None:
    """Keep the sets of ``basis`` (what the device holds now) and ``issued`` only, ``issued``'s
    being ``current``. A grown set recorded under ``issued`` is written again as ``current``:
    a device that applies this answer holds exactly ``current``."""
    keep = {issued} | ({basis} if basis else set())
    fingerprints = _fingerprints(s, device_id)
    stale = [f for f in fingerprints if f not in keep]
    if stale:
        s.execute(
            delete(DeviceScope).where(
                DeviceScope.device_id == device_id, DeviceScope.fingerprint.in_(stale)
            )
        )
    if basis != issued and _held(s, device_id, issued):
        s.execute(
            delete(DeviceScope).where(
                DeviceScope.device_id == device_id, DeviceScope.fingerprint == issued
            )
        )
    elif issued in fingerprints:  # recorded already (and kept)
        return
    if issued == EMPTY:
        return
    # No ORM objects: a large site's scope is tens of thousands of rows.
    s.flush()
    if s.get_bind().dialect.name == "postgresql":
        # One statement over an array of the persons: an executemany sent one INSERT per row
        # (20,000 on a large site's first page: over a second of a new laptop's first pull).
        s.execute(
            _RECORD,
            {"device": device_id, "fingerprint": issued, "seq": seq, "persons": sorted(current)},
        )
        return
    rows = [
        {"device_id": device_id, "fingerprint": issued, "person_id": p, "recorded_seq": seq}
        for p in sorted(current)
    ]
    for start in range(0, len(rows), 5000):
        s.execute(insert(DeviceScope), rows[start : start + 5000])


_RECORD = text(
    "INSERT INTO device_scopes (device_id, fingerprint, person_id, recorded_seq)"
    " SELECT :device, :fingerprint, person_id, :seq"
    " FROM unnest(CAST(:persons AS text[])) AS person_id"
)
"""A device's person set under one fingerprint, recorded in one statement (PostgreSQL)."""

_FINGERPRINTS = text(
    "WITH RECURSIVE found(fingerprint) AS ("
    " SELECT min(fingerprint) FROM device_scopes WHERE device_id = :device"
    " UNION ALL SELECT (SELECT min(d.fingerprint) FROM device_scopes AS d"
    "  WHERE d.device_id = :device AND d.fingerprint > found.fingerprint)"
    " FROM found WHERE found.fingerprint IS NOT NULL)"
    " SELECT fingerprint FROM found WHERE fingerprint IS NOT NULL"
)
"""The distinct fingerprints recorded for a device, in one statement of one index probe each
(plus one): each probe seeks past the tens of thousands of rows of the one before, all of which
a scan of the device's rows (a large site's pull did one a page) would read."""


def _fingerprints(s: Session, device_id: str) -> list[str]:
    """The fingerprints recorded for the device (:data:`_FINGERPRINTS`)."""
    s.flush()  # as s.execute() of an ORM statement would (autoflush)
    return list(s.scalars(_FINGERPRINTS, {"device": device_id}))
