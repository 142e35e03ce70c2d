"""Keeping a push batch's rows in the session while the batch is applied.

SQLAlchemy's identity map holds objects weakly: a row that ``Session.get`` returned and nobody
kept is dropped at once, so the next ``get`` of the same key asks the database again. Applying a
batch looks the same rows up over and over (the pushing device's stand-in user, its site, the
person of each visit, the visit a finder reads right after it was inserted), which made every
op pay for a dozen round trips to PostgreSQL. Holding strong references for the length of the
batch turns those repeats into identity-map hits; the request's session ends with the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from sync.models import SyncOp


@contextmanager
def rows_held(s: Session) -> Iterator[list[Any]]:
    """Keep alive every object ``s`` loads or persists inside the block.

    Keeps: what the session returns is unchanged (the same rows, expired and refreshed as
    before); only the number of identical primary-key queries falls.
    """
    kept: list[Any] = []

    def keep(_session: Session, instance: Any) -> None:
        kept.append(instance)

    event.listen(s, "loaded_as_persistent", keep)
    event.listen(s, "pending_to_persistent", keep)
    try:
        yield kept
    finally:
        event.remove(s, "loaded_as_persistent", keep)
        event.remove(s, "pending_to_persistent", keep)


def ledger_rows(s: Session, op_ids: Sequence[str]) -> dict[str, SyncOp]:
    """The ledger rows of ``op_ids`` that exist, in one query (a batch's op ids are distinct,
    so an op absent here is new to the server). Keeps: read-only."""
    return {row.op_id: row for row in s.scalars(select(SyncOp).where(SyncOp.op_id.in_(op_ids)))}
