"""A laptop's side of central's incarnations (:mod:`sync.server.incarnation`).

Central may be restored from a backup older than what this laptop has seen: ops it
acknowledged after the backup are gone from it, and the changes this laptop pulled after the
backup are no longer in its feed (new ones will reuse their seqs). So:

* an acknowledged op leaves the outbox for ``sync_acked``, still sealed, and is kept there for
  a window (:data:`KEEP_ACKED_DAYS` by default), then pruned;
* when ``hello`` announces an incarnation other than the one this laptop last met, the kept
  ops go back to the outbox (in their original order, with their original ids and bases) and
  are pushed again: central's op-id ledger replays the result of those it still holds and
  applies the others once; the versions this laptop learnt from the lost history are forgotten
  (lowered to 0) and the feed is read again from the start, so every change of the new history
  is applied, none skipped, and re-applied ones are no-ops (apply is version-gated, inserts
  ignore known ids). Review items central opened in the lost history are dropped: central
  opens them again as the re-sent ops arrive.

All of it happens in the transaction that records the new incarnation, so a crash leaves the
laptop either before (it will do it all at the next hello) or after.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, literal, select, update
from sqlalchemy.orm import Session

from sync.models import AckedOp, FieldVersion, OutboxOp, PersonAlias, ReviewItem
from sync.outbox import get_state, set_state
from sync.transfer_models import PersonTransfer

INCARNATION_KEY = "central_incarnation"
KEEP_ACKED_DAYS = 30
_COLUMNS = (
    "local_seq",
    "op_id",
    "op_type",
    "entity_type",
    "entity_id",
    "person_id",
    "base",
    "payload_enc",
    "hlc",
    "schema_version",
    "created_at",
)


def _now() -> datetime:
    return datetime.now(UTC)


def keep_acknowledged(s: Session, op_ids: Sequence[str], now: datetime | None = None) -> int:
    """Move acknowledged ops from the outbox to ``sync_acked`` (sealed as they were); returns
    how many left the outbox."""
    at = (now or _now()).isoformat()
    moved = 0
    for start in range(0, len(op_ids), 500):
        chunk = list(op_ids[start : start + 500])
        cols = [getattr(OutboxOp, c) for c in _COLUMNS]
        s.execute(
            insert(AckedOp).from_select(
                [*_COLUMNS, "acked_at"],
                select(*cols, literal(at)).where(
                    OutboxOp.op_id.in_(chunk),
                    OutboxOp.op_id.not_in(select(AckedOp.op_id).where(AckedOp.op_id.in_(chunk))),
                ),
            )
        )
        gone = s.execute(delete(OutboxOp).where(OutboxOp.op_id.in_(chunk)))
        moved += int(getattr(gone, "rowcount", 0) or 0)
    return moved


def prune(s: Session, keep_days: int = KEEP_ACKED_DAYS, now: datetime | None = None) -> int:
    """Forget acknowledged ops older than the window; returns how many."""
    cutoff = ((now or _now()) - timedelta(days=keep_days)).isoformat()
    gone = s.execute(delete(AckedOp).where(AckedOp.acked_at < cutoff))
    return int(getattr(gone, "rowcount", 0) or 0)


_KEPT = ("state", "attempts", "last_error", "clock_suspect", "depends_on_op_id")


def requeue(s: Session) -> int:
    """Put every kept acknowledged op back in the outbox, pending; returns how many.

    The outbox is renumbered in the device's order (by HLC, strictly increasing on a device):
    a re-sent op goes before the later ops that may build on it (their bases name it). Its
    old ``local_seq`` cannot be reused, a later op may hold it now."""
    held = {op.op_id: op for op in s.scalars(select(OutboxOp))}
    kept = [op for op in s.scalars(select(AckedOp)) if op.op_id not in held]
    rows = [{c: getattr(op, c) for c in (*_COLUMNS, *_KEPT)} for op in held.values()] + [
        {c: getattr(op, c) for c in _COLUMNS} | {"state": "pending"} for op in kept
    ]
    rows.sort(key=lambda row: str(row["hlc"]))
    s.execute(delete(OutboxOp))
    s.execute(delete(AckedOp))
    for number, row in enumerate(rows, start=1):
        s.add(OutboxOp(**(row | {"local_seq": number})))
    s.flush()
    return len(kept)


def forget_lost_history(s: Session, floor: int) -> None:
    """Forget what this laptop learnt from changes above ``floor`` (they may not exist in the
    new incarnation): their versions are lowered to 0, so the feed read again from the start
    brings the current value; review items opened above it are dropped (central opens them
    again)."""
    s.execute(update(FieldVersion).where(FieldVersion.version_seq > floor).values(version_seq=0))
    s.execute(delete(ReviewItem).where(ReviewItem.opened_seq > floor))
    s.execute(update(ReviewItem).where(ReviewItem.updated_seq > floor).values(updated_seq=0))
    s.execute(update(PersonAlias).where(PersonAlias.version_seq > floor).values(version_seq=0))
    s.execute(
        update(PersonTransfer).where(PersonTransfer.updated_seq > floor).values(updated_seq=0)
    )


def meet(s: Session, incarnation: str | None, floor: int, cursor_key: str) -> int | None:
    """Note the incarnation ``hello`` announced. If it is not the one this laptop last met,
    re-queue the kept acknowledged ops, forget the lost history and restart the feed (clear the
    state key ``cursor_key``); returns how many ops were re-queued then, else ``None``.

    The first incarnation a laptop meets is only recorded: it has nothing from another one."""
    if incarnation is None:
        return None
    known = get_state(s, INCARNATION_KEY)
    set_state(s, INCARNATION_KEY, incarnation)
    if not known or known == incarnation:
        return None
    count = requeue(s)
    forget_lost_history(s, floor)
    set_state(s, cursor_key, "")
    return count
