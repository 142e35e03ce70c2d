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

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sync.cursor import scope_fingerprint
from sync.transfer_models import DeviceScope

EMPTY = scope_fingerprint(())


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
    :func:`scope_fingerprint` of ``current`` at ``site_id`` (not recomputed).
    """
    if fingerprint is None:
        fingerprint = scope_fingerprint((p, site_id) for p in current)
    known: set[str] | None
    if presented is None or presented == fingerprint:
        known = current
    elif presented == EMPTY:
        known = set()
    else:
        rows = s.scalars(
            select(DeviceScope.person_id).where(
                DeviceScope.device_id == device_id, DeviceScope.fingerprint == presented
            )
        )
        known = set(rows) or None
        if known is None:
            known = current
    _record(s, device_id, presented, fingerprint, current, seq)
    add, remove = sorted(current - known), sorted(known - current)
    return {"add": add, "remove": remove} if add or remove else None


def _record(
    s: Session, device_id: str, presented: str | None, fingerprint: str, current: set[str], seq: int
) -> None:
    keep = {fingerprint} | ({presented} if presented else set())
    s.execute(
        delete(DeviceScope).where(
            DeviceScope.device_id == device_id, DeviceScope.fingerprint.not_in(keep)
        )
    )
    if fingerprint == EMPTY or _recorded(s, device_id, fingerprint):
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
