"""Applying pulled ``alias`` changes on a laptop (SYNC.md §2.11): the local mirror of
``person_aliases`` that read paths resolve through.

``lifecycle`` changes need nothing of their own: they carry the :data:`sync.lifecycle.FIELD`
pseudo-field and apply, version-gated, like any field.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from sync.models import PersonAlias
from sync.protocol import Change


def apply_alias(s: Session, change: Change, park: Callable[[str], None]) -> None:
    """Upsert the alias mirror from an ``alias`` change.

    Keeps: the mirror only moves forward (a change whose seq is not above the row's
    ``version_seq`` is ignored, so replays, the second copy of each alias change and snapshot
    overlap are harmless); a malformed change is parked, never dropped.
    """
    body = (change.data or {}).get("body")
    if (
        not isinstance(body, dict)
        or body.get("merged_id") != change.entity_id
        or not isinstance(body.get("survivor_id"), str)
        or not isinstance(body.get("active"), bool)
    ):
        park("malformed alias")
        return
    alias = s.get(PersonAlias, change.entity_id)
    if alias is not None and alias.version_seq >= change.seq:
        return
    if alias is None:
        alias = PersonAlias(merged_id=change.entity_id)
        s.add(alias)
    alias.survivor_id = body["survivor_id"]
    alias.active = body["active"]
    alias.op_id = str((change.data or {}).get("origin_op_id") or "")
    alias.version_seq = change.seq
    s.flush()
