"""Central's side of the user directory: password-derived public keys, and one site-scoped
change per site a user is (or was just) assigned to, written in the admin's transaction.

A change carries no password, hash or private key: only what a laptop needs to list the user,
check their role and sites, and seal its master key to their public key.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from contigo import crypto
from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.sites.wire import site_descriptor
from contigo.usersync.keys import UnlockKey, derive_unlock_key

ENTITY_TYPE = "user"


def is_central() -> bool:
    """Whether this instance is the central server (only central publishes the directory)."""
    return bool(current_app.config["CONTIGO_MODE"] == "central")


def set_unlock_key(user: User, password: str, scrypt_n: int) -> None:
    """Derive and keep the public key of ``user``'s new password (central only: a laptop's own
    users unlock with their password-wrapped copy). A fresh salt each time, so a changed
    password always gives a new key and laptops rewrap."""
    if is_central():
        key = derive_unlock_key(user.id, password, crypto.KdfParams(n=scrypt_n))
        user.unlock_public_key = key.to_json()


def user_body(s: Session, user: User, site_id: str) -> dict[str, Any]:
    """The directory entry of ``user`` as the laptops of ``site_id`` receive it."""
    unlock = UnlockKey.from_json(user.unlock_public_key) if user.unlock_public_key else None
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "language": user.language,
        "country": user.country,
        "active": bool(user.active),
        "assigned": site_id in user.site_ids,
        "home_site": site_descriptor(s, user.home_site_id),
        "sites": [site_descriptor(s, sid) for sid in sorted(user.site_ids)],
        "unlock": unlock.to_dict() if unlock is not None else None,
    }


def publish(
    s: Session, actor: User, user: User, *, previous_site_ids: Collection[str] = ()
) -> list[int]:
    """On central, append ``user``'s current entry to the feed of every site they are assigned
    to, and of every site in ``previous_site_ids`` they no longer are (so those laptops lock
    them out). Audited per site. Elsewhere a no-op. Returns the seqs written."""
    if not is_central():
        return []
    from contigo.exchange.extensions import server_config
    from sync.server.directory import emit_site_change

    cfg = server_config(current_app)
    s.flush()
    now_ms = time.time_ns() // 1_000_000
    seqs = []
    for site_id in sorted(set(user.site_ids) | set(previous_site_ids)):
        body = user_body(s, user, site_id)
        seqs.append(
            emit_site_change(
                s,
                cfg,
                site_id=site_id,
                entity_type=ENTITY_TYPE,
                entity_id=user.id,
                body=body,
                now_ms=now_ms,
            )
        )
        audit(
            s,
            user_id=actor.id,
            action="user_directory_publish",
            entity_type="user",
            entity_id=user.id,
            site_id=site_id,
        )
    return seqs
