"""Fetching and applying a snapshot on the device: the full state of persons that just came
into its scope (a visitor grant, a transfer in, a repair; SYNC.md §2.5)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from sync.client.apply import apply_change
from sync.client.transport import Transport
from sync.handlers import HandlerRegistry
from sync.outbox import Encrypt
from sync.protocol import ProtocolError, SnapshotRequest, parse_snapshot_response, snapshot_changes


class SnapshotFailed(Exception):
    """The server did not answer the snapshot with a valid body; nothing was applied."""

    def __init__(self, status: int) -> None:
        super().__init__(f"snapshot refused (HTTP {status})")
        self.status = status


def fetch_snapshot(
    s: Session,
    transport: Transport,
    registry: HandlerRegistry,
    person_ids: tuple[str, ...],
    encrypt: Encrypt,
) -> int:
    """Ask for ``person_ids`` and apply their changes in the caller's transaction, in seq order;
    returns how many changes were applied.

    Keeps: applying is idempotent and version-gated (:func:`apply_change`), so a snapshot that
    overlaps the change feed, or one fetched twice, changes nothing the second time; a body
    that fails its checks applies nothing (it is parsed whole before anything is written).
    """
    request = SnapshotRequest(person_ids=person_ids)
    resp = transport.send("POST", "/sync/v1/snapshot", {"person_ids": list(person_ids)})
    if resp.status != 200:
        raise SnapshotFailed(resp.status)
    try:
        _as_of, persons = parse_snapshot_response(resp.body, request)
        changes = snapshot_changes(persons)
    except ProtocolError:
        raise SnapshotFailed(resp.status) from None
    for change in changes:
        apply_change(s, registry, change, encrypt)
    return len(changes)
