"""The server's one-query read of a push batch's ledger rows (see :mod:`sync.identity` for
why a batch's rows are also held in the session while it is applied)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sync.identity import rows_held
from sync.models import SyncOp
from sync.sqlin import among

__all__ = ["ledger_rows", "rows_held"]


def ledger_rows(s: Session, op_ids: Sequence[str]) -> dict[str, SyncOp]:
    """The ledger rows of ``op_ids`` that exist, in one query (a batch's op ids are distinct,
    so an op absent here is new to the server). Keeps: read-only."""
    return {
        row.op_id: row for row in s.scalars(select(SyncOp).where(among(s, SyncOp.op_id, op_ids)))
    }
