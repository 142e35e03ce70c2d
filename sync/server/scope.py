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

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sync.cursor import scope_fingerprint
from sync.transfer_models import DeviceScope

EMPTY = scope_fingerprint(())
HELD = ""
"""The ``person_id`` of the marker row of a set that :func:`note_held` grew (no person id is
empty)."""


def diff(
    s: Session,
    device_id: str,
    site_id: str,
    presented: str | None,
    current: set[str],
    seq: int,
    *,
    fingerprint: str | None = None,
) -> dict[str, list[str]] | None:
    """The ``{"add", "remove"}`` persons since the ``presented`` fingerprint, or ``None`` when
    nothing changed; records the current set under its fingerprint for the next pull.

    Keeps: announcing is idempotent (a lost answer is announced again, since the device then
    presents the older fingerprint); a first pull (no cursor) announces nothing, because it
    reads the whole feed from the start. ``fingerprint``, when given, is the caller's own
    :func:`scope_fingerprint` of ``current`` at ``site_id`` (not recomputed). A set that
    :func:`note_held` grew is read even when the fingerprints match, and announced once.
    """
    if fingerprint is None:
        fingerprint = scope_fingerprint((p, site_id) for p in current)
    grown = presented is not None and _held(s, device_id, presented)
    known: set[str]
    if presented is None or (presented == fingerprint and not grown):
        known = current
    else:
        rows = s.scalars(
            select(DeviceScope.person_id).where(
                DeviceScope.device_id == device_id,
                DeviceScope.fingerprint == presented,
                DeviceScope.person_id != HELD,
            )
        )
        # none recorded: an empty scope, or a cursor from before this table existed
        known = set(rows) or (set() if presented == EMPTY else current)
    _record(s, device_id, presented, fingerprint, current, seq, rewrite=grown)
    add, remove = sorted(current - known), sorted(known - current)
    return {"add": add, "remove": remove} if add or remove else None


def note_held(s: Session, device_id: str, person_ids: Iterable[str]) -> None:
    """Record that ``device_id`` now holds ``person_ids`` though no pull sent them (a visitor
    lookup's snapshot): every scope set recorded for the device gains them (the empty scope's
    when none is) and is marked grown, so the pull that follows the end of their access
    announces their removal even if the scope's fingerprint did not change. Keeps: idempotent.
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
    presented: str | None,
    fingerprint: str,
    current: set[str],
    seq: int,
    *,
    rewrite: bool = False,
) -> None:
    """Keep the sets of ``presented`` and ``fingerprint`` only, ``fingerprint``'s being
    ``current``. ``rewrite``: the presented set had grown; when it is also the current
    fingerprint, it is written again as ``current`` (the growth was just announced; a lost
    answer then leaves the person on that laptop, where its visit has ended too)."""
    keep = {fingerprint} | ({presented} if presented else set())
    s.execute(
        delete(DeviceScope).where(
            DeviceScope.device_id == device_id, DeviceScope.fingerprint.not_in(keep)
        )
    )
    if rewrite and presented == fingerprint:
        s.execute(
            delete(DeviceScope).where(
                DeviceScope.device_id == device_id, DeviceScope.fingerprint == fingerprint
            )
        )
    elif _recorded(s, device_id, fingerprint):
        return
    if fingerprint == EMPTY:
        return
    s.add_all(
        DeviceScope(device_id=device_id, fingerprint=fingerprint, person_id=p, recorded_seq=seq)
        for p in sorted(current)
    )
    s.flush()


def _recorded(s: Session, device_id: str, fingerprint: str) -> bool:
    return (
        s.scalar(
            select(DeviceScope.person_id)
            .where(DeviceScope.device_id == device_id, DeviceScope.fingerprint == fingerprint)
            .limit(1)
        )
        is not None
    )
