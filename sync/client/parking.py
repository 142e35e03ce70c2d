"""Re-applying parked changes after an upgrade (SYNC.md §2.8 and §2.12 item 5).

A change this client could not parse was parked under the client's wire schema at the time. Once
the client runs at a higher schema, each such row is taken out and applied again, in server
order; what the upgraded client still cannot parse is parked again under its new schema (so it
waits for the next upgrade rather than being retried on every run).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.client.apply import apply_change
from sync.handlers import HandlerRegistry
from sync.models import SyncParked
from sync.outbox import Encrypt
from sync.protocol import Change, FieldResult

Decrypt = Callable[[str, bytes], bytes]


def _change(row: SyncParked, decrypt: Decrypt) -> Change:
    raw = json.loads(decrypt(f"parked-{row.server_seq}", row.raw_enc))
    fields = raw.get("fields") or {}
    return Change(
        seq=row.server_seq,
        kind=str(raw.get("kind")),
        entity_type=str(raw.get("entity_type")),
        entity_id=str(raw.get("entity_id")),
        fields={k: FieldResult.from_json(v, f"parked.{k}") for k, v in fields.items()} or None,
        data=raw.get("data"),
    )


def reapply_parked(
    s: Session, registry: HandlerRegistry, schema: int, decrypt: Decrypt, encrypt: Encrypt
) -> int:
    """Re-apply, in ``server_seq`` order, every parked change parked under a schema below
    ``schema``; returns how many now applied.

    Keeps: a parked row is never lost (it is applied or parked again, in the caller's one
    transaction); rows parked at ``schema`` or above are not touched; applying is version-gated,
    so a change whose fields the feed has since brought again changes nothing twice.
    """
    rows = list(
        s.scalars(
            select(SyncParked)
            .where(SyncParked.schema_version < schema)
            .order_by(SyncParked.server_seq)
        )
    )
    applied = 0
    for row in rows:
        change = _change(row, decrypt)
        s.delete(row)
        s.flush()
        if apply_change(s, registry, change, encrypt, schema=schema):
            applied += 1
    return applied


def parked_counts(s: Session) -> dict[str, int]:
    """``{reason: count}`` of the changes waiting in ``sync_parked`` (for "needs attention")."""
    return {
        reason: n
        for reason, n in s.execute(
            select(SyncParked.reason, func.count()).group_by(SyncParked.reason)
        )
    }
