"""Merging the records of a ``possible_duplicate`` review item: the supervisor picks the record
that survives, every other record of the item is merged into it, and the item is resolved."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.persons import lifecycle
from contigo.review import services as review
from contigo.vault import Vault
from sync.models import ReviewItem
from sync.protocol import ConflictKind
from sync.server.review import candidates_aad


def persons_of(reader: review.Reader, item: ReviewItem) -> list[str]:
    """The person ids a possible-duplicate item names, in its order."""
    raw: list[dict[str, Any]] = json.loads(reader(candidates_aad(item.id), item.candidates_enc))
    ids = [str((c.get("value") or {}).get("person_id") or "") for c in raw]
    return list(dict.fromkeys(i for i in ids if i))


def merge_duplicate(
    s: Session,
    v: Vault,
    actor: User,
    item_id: str,
    survivor_id: str,
    server: lifecycle.Central = None,
) -> None:
    """Merge every other record of the item into ``survivor_id`` and resolve the item: one
    ``person.merge`` op per merged record and one ``conflict.resolve``, in the caller's
    transaction (applied at once on central, ``server`` given). Raises
    :class:`ValidationFailed` when the item is not an open duplicate or the survivor is not one
    of its records, :class:`Forbidden` outside role or scope."""
    item = s.get(ReviewItem, item_id)
    if item is None or item.kind != ConflictKind.POSSIBLE_DUPLICATE.value or item.status != "open":
        raise ValidationFailed(fields={"item": [translate("lifecycle.error.not_duplicate")]})
    reader = review.reader_for(v, server)
    ids = persons_of(reader, item)
    if survivor_id not in ids:
        raise ValidationFailed(fields={"survivor_id": [translate("lifecycle.error.not_duplicate")]})
    for merged_id in ids:
        if merged_id != survivor_id:
            lifecycle.merge(s, v, actor, survivor_id, merged_id, server)
    review.resolve(s, v, actor, item_id, reader, action="resolve", note="merged", server=server)
