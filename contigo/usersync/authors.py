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
    """``data`` plus its author's id when central knows that user (asked once per session and
    user: a push batch names the same few authors again and again)."""
    if not user_id:
        return data
    managed: dict[str, bool] = s.info.setdefault("contigo_managed_authors", {})
    if user_id not in managed:
        user = s.get(User, user_id)
        managed[user_id] = user is not None and user.directory_seq is not None
    return {**data, AUTHOR: user_id} if managed[user_id] else data


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
