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
from sync.server import batchcache

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


def stand_in_user(s: Session, device_id: str, site_id: str) -> str:
    """The inactive user that rows from ``device_id`` are attributed to (it cannot sign in)."""
    uid = (device_id or "unknown")[:32]
    cache = batchcache.current(s)  # a push batch names the same device on every row
    known = cache.memo("contigo.stand_ins", set) if cache is not None else set()
    if uid in known:
        return uid
    known.add(uid)
    if s.get(User, uid) is None:
        s.add(
            User(
                id=uid,
                username=f"device-{uid}"[:64],
                display_name=f"Device {uid[:8]}",
                role="health_worker",
                home_site_id=site_id,
                active=False,
                language="es",
            )
        )
        s.flush()
    return uid


def author_id(s: Session, ctx: ApplyContext, data: Any, site_id: str) -> str:
    """The real author of a synced row when the directory names them, else the device's
    stand-in (decided once per push batch for each author, device and site: every visit names
    them). Every entity handler that stores who wrote a row uses it."""
    cache = batchcache.current(s)
    if cache is None:
        return author_of(s, ctx, data) or stand_in_user(s, ctx.device_id, site_id)
    named = data.get(AUTHOR) if isinstance(data, dict) else None
    key = (named, ctx.device_id, ctx.site_id, site_id)
    decided: dict[tuple[Any, ...], str] = cache.memo("contigo.authors", dict)
    if key not in decided:
        decided[key] = author_of(s, ctx, data) or stand_in_user(s, ctx.device_id, site_id)
    return decided[key]
