"""Logging in, unlocking the laptop, lockout, API tokens and adding users.

On a laptop the password is checked by unwrapping the user's copy of the master key: a wrong
password fails to unwrap. After ``MAX_FAILED_LOGINS`` failures the account is locked for
``LOCKOUT_SECONDS``; a success resets the count.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import ROLES, ApiToken, User, UserSite
from contigo.db import utcnow
from contigo.errors import AccountLocked, DeviceRevoked, ValidationFailed, WrongCredentials
from contigo.i18n import translate
from contigo.recovery import forget_user_keys
from contigo.usersync.keys import unlock_vault
from contigo.vault import Vault
from sync.client.engine import REVOKED_KEY
from sync.outbox import get_state


def authenticate(
    s: Session, v: Vault, username: str, password: str, *, max_failed: int, lockout_s: int
) -> User:
    """Check a password and unlock the vault with it (or confirm it against an unlocked vault).

    Raises :class:`WrongCredentials` (an unknown user and a wrong password look the same),
    :class:`AccountLocked`, or :class:`DeviceRevoked` on a laptop central revoked (whose key
    copies are gone; destroyed here too, should the run that learned it have died before).
    Failures and successes are audited. This is the one service that commits: a failed attempt
    must count towards the lockout even though the request fails.
    """
    if get_state(s, REVOKED_KEY):
        forget_user_keys(s)
        s.commit()
        raise DeviceRevoked()
    user = s.scalar(select(User).where(User.username == username.strip().lower()))
    now = utcnow()
    if user is None or not user.active or user.wrapped_master_key is None:
        raise WrongCredentials()
    if user.locked_until is not None and user.locked_until > now:
        raise AccountLocked()
    if not unlock_vault(v, user, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failed:
            user.locked_until = now + timedelta(seconds=lockout_s)
            user.failed_logins = 0
        audit(s, user_id=user.id, action="login_failed", entity_type="user", entity_id=user.id)
        s.commit()
        raise WrongCredentials()
    user.failed_logins = 0
    user.locked_until = None
    audit(s, user_id=user.id, action="login", entity_type="user", entity_id=user.id)
    return user


def issue_token(s: Session, user: User, ttl_s: int) -> tuple[str, datetime]:
    """A new bearer token for the API; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + timedelta(seconds=ttl_s)
    s.add(ApiToken(user_id=user.id, token_hash=_hash(token), expires_at=expires))
    return token, expires


def user_for_token(s: Session, token: str) -> User | None:
    """The user a valid, unexpired token belongs to."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None or row.expires_at <= utcnow():
        return None
    user = s.get(User, row.user_id)
    return user if user is not None and user.active else None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(
    s: Session,
    v: Vault,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    site_id: str,
    language: str = "es",
    country: str | None = None,
    extra_site_ids: tuple[str, ...] = (),
) -> User:
    """Enrol a user on this laptop: the vault must be unlocked, since the new user receives a copy
    of the master key wrapped under a key derived from their own password."""
    errors: dict[str, list[str]] = {}
    if role not in ROLES:
        errors["role"] = [translate("v.choice")]
    if len(password) < 10:
        errors["password"] = [translate("v.password_short", min=10)]
    clean = username.strip().lower()
    if not clean or s.scalar(select(User.id).where(User.username == clean)):
        errors["username"] = [translate("v.username_taken")]
    if errors:
        raise ValidationFailed(fields=errors)
    user = User(
        username=clean,
        display_name=display_name,
        role=role,
        language=language,
        home_site_id=site_id,
        country=country,
        wrapped_master_key=v.wrap_master_for(password),
    )
    user.sites = [UserSite(site_id=sid) for sid in extra_site_ids if sid != site_id]
    s.add(user)
    s.flush()
    return user
