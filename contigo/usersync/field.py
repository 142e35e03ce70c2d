"""A laptop's side of the user directory: applying central's entries for this site.

A central user becomes a local row marked managed by central (``directory_seq``). While they are
active and assigned here, their wrapped copy is this laptop's master key sealed to their public
key; a new public key (a changed password) replaces it, and deactivation or removal from the
site deletes it, so the old password, or any password, no longer unlocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import crypto
from contigo.audit.services import record as audit
from contigo.auth.models import LANGUAGES, ROLES, User, UserSite
from contigo.exchange.extensions import SyncExtension
from contigo.sites.wire import ensure_site
from contigo.usersync.keys import UnlockKey, seal_master
from contigo.vault import Vault
from sync.handlers import HandlerRegistry, InvalidOp

ENTITY_TYPE = "user"


def _text(body: Mapping[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidOp({name: ["required"]})
    return value.strip()[:limit]


def _checked(body: Mapping[str, Any]) -> tuple[str, str, UnlockKey | None]:
    """The role, language and unlock key of a directory entry; raises :class:`InvalidOp`."""
    role, language = body.get("role"), body.get("language")
    if role not in ROLES:
        raise InvalidOp({"role": ["not a choice"]})
    if language not in LANGUAGES:
        raise InvalidOp({"language": ["not a choice"]})
    if not isinstance(body.get("sites"), list):
        raise InvalidOp({"sites": ["required"]})
    try:
        unlock = UnlockKey.from_dict(body["unlock"]) if body.get("unlock") else None
    except crypto.MalformedKeyRecord:
        raise InvalidOp({"unlock": ["malformed"]}) from None
    return str(role), str(language), unlock


def _target(s: Session, user_id: str, seq: int) -> User | None:
    """The local row to update (for a first entry a new one, not yet in the session);
    ``None`` for a change older than what this laptop holds."""
    user = s.get(User, user_id)
    if user is None:
        return User(wrapped_master_key=None)
    if user.directory_seq is None:
        raise InvalidOp({"user": ["a local user has this id"]})
    return None if user.directory_seq >= seq else user


def apply_user(s: Session, vault: Vault, seq: int, user_id: str, body: Mapping[str, Any]) -> None:
    """Apply one directory entry. Keeps: entries apply in seq order only (an older or replayed
    one is a no-op); only an active user assigned to this site holds a wrapped copy; the copy is
    resealed when (and only when) the public key changes."""
    username = _text(body, "username", 64).lower()
    role, language, unlock = _checked(body)
    display_name = _text(body, "display_name", 120)
    home = ensure_site(s, body.get("home_site"))
    extra = {ensure_site(s, d).id for d in body["sites"]} - {home.id}
    user = _target(s, user_id, seq)
    if user is None:
        return
    if s.scalar(select(User.id).where(User.username == username, User.id != user_id)):
        raise InvalidOp({"username": ["taken on this laptop"]})
    if user not in s:
        user.id = user_id
        s.add(user)
    user.username, user.role, user.language = username, role, language
    user.display_name, user.home_site_id = display_name, home.id
    country = body.get("country")
    user.country = str(country)[:2] if isinstance(country, str) else None
    user.sites = [UserSite(site_id=sid) for sid in sorted(extra)]
    allowed = body.get("active") is True and body.get("assigned") is True
    new_key = unlock.to_json() if unlock is not None else None
    if not allowed or unlock is None:
        user.wrapped_master_key = None
    elif new_key != user.unlock_public_key or user.wrapped_master_key is None:
        user.wrapped_master_key = seal_master(vault.master_for_sealing(), user_id, unlock)
        user.failed_logins, user.locked_until = 0, None
    user.unlock_public_key = new_key
    user.active = allowed
    user.directory_seq = seq
    s.flush()
    audit(s, user_id=None, action="user_directory_apply", entity_type="user", entity_id=user_id)


def register(registry: HandlerRegistry, vault: Vault) -> None:
    """Let the sync engine apply ``user`` directory changes on this laptop."""

    def apply(s: Session, seq: int, entity_id: str, body: Mapping[str, Any]) -> None:
        apply_user(s, vault, seq, entity_id, body)

    registry.register_directory(ENTITY_TYPE, apply, since_schema=2)


EXTENSION = SyncExtension("user directory", install=register)
