"""Who wrote a synced row: the real user once central's directory names them, so rows from
other laptops stop being attributed to the device's inactive stand-in.

A create op carries its author's id only when central manages that user (a laptop's own local
users mean nothing elsewhere). The receiving side accepts the id only for a real user it knows;
central also requires the pushing device's site to be one of theirs, so a device cannot
attribute its rows to a user of another site.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from contigo.auth.models import User
from sync.handlers import ApplyContext

AUTHOR = "author"


def with_author(s: Session, data: dict[str, Any], user_id: str | None) -> dict[str, Any]:
    """``data`` plus its author's id when central knows that user."""
    user = s.get(User, user_id) if user_id else None
    if user is None or user.directory_seq is None:
        return data
    return {**data, AUTHOR: user.id}


def author_of(s: Session, ctx: ApplyContext, data: Any) -> str | None:
    """The id of the real user a synced row is by, or ``None`` (then a stand-in is used)."""
    uid = data.get(AUTHOR) if isinstance(data, Mapping) else None
    if not isinstance(uid, str):
        return None
    user = s.get(User, uid)
    if user is None or user.username.startswith("device-"):
        return None
    if ctx.site_id is not None and ctx.site_id not in user.site_ids:
        return None
    return user.id
