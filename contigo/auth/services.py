"""Logging in, unlocking the laptop, lockout, API tokens and adding users.

On a laptop the password is checked by unwrapping the user's copy of the master key: a wrong
password fails to unwrap. After ``MAX_FAILED_LOGINS`` failures the account is locked for
``LOCKOUT_SECONDS``; a success resets the count.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import ROLES, ApiToken, User, UserSite
from contigo.db import utcnow
from contigo.errors import (
    AccountLocked,
    DeviceRevoked,
    Locked,
    ValidationFailed,
    WrongCredentials,
)
from contigo.i18n import translate
from contigo.keystore import Keystore, mark_dirty
from contigo.recovery import forget_user_keys
from contigo.usersync.keys import open_user_copy
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

    On a laptop under SQLCipher the database cannot be read before unlock: the user's copy and
    counters come from the keystore (:mod:`contigo.keystore`), and the database opens once the
    copy has given the master key.
    """
    keystore = v.keystore()
    if keystore is not None:
        return _authenticate_from_keystore(
            s, v, keystore, username, password, max_failed=max_failed, lockout_s=lockout_s
        )
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
    managed = user.directory_seq is not None and user.unlock_public_key is not None
    master = open_user_copy(
        user.id, user.wrapped_master_key, user.unlock_public_key if managed else None, password
    )
    if master is None or (v.is_unlocked and not v.hold(master)):
        user.failed_logins += 1
        if user.failed_logins >= max_failed:
            user.locked_until = now + timedelta(seconds=lockout_s)
            user.failed_logins = 0
        audit(s, user_id=user.id, action="login_failed", entity_type="user", entity_id=user.id)
        s.commit()
        raise WrongCredentials()
    if not v.is_unlocked:
        # Unlocking may convert a plain laptop database to SQLCipher: this session lets go of
        # the file first and reads the user again from what is there afterwards.
        uid = user.id
        s.rollback()
        v.hold(master)
        found = s.get(User, uid)
        assert found is not None
        user = found
    user.failed_logins = 0
    user.locked_until = None
    audit(s, user_id=user.id, action="login", entity_type="user", entity_id=user.id)
    return user


def _authenticate_from_keystore(
    s: Session,
    v: Vault,
    keystore: Keystore,
    username: str,
    password: str,
    *,
    max_failed: int,
    lockout_s: int,
) -> User:
    """:func:`authenticate` on a laptop whose database is under SQLCipher."""
    if keystore.revoked_at is not None:
        raise DeviceRevoked()
    entry = keystore.find(username)
    now = time.time()
    if entry is None:
        raise WrongCredentials()
    if entry.locked_until is not None and entry.locked_until > now:
        raise AccountLocked()
    master = open_user_copy(entry.user_id, entry.copy, entry.unlock, password)
    if master is None or not v.hold(master):
        keystore.failed(entry, now, max_failed=max_failed, lockout_s=lockout_s)
        try:  # the database is open (another user's session): count and audit there too
            user = s.get(User, entry.user_id)
            if user is not None:
                user.failed_logins = entry.failed
                user.locked_until = _when(entry.locked_until)
                audit(
                    s, user_id=user.id, action="login_failed", entity_type="user", entity_id=user.id
                )
                s.commit()
        except Locked:  # a locked laptop's database stays shut: audited at the next unlock
            s.rollback()
            keystore.pending_failures.append((entry.user_id, now))
            keystore.save()
        raise WrongCredentials()
    user = s.get(User, entry.user_id)
    if user is None or not user.active:
        raise WrongCredentials()
    for uid, _when_s in keystore.pending_failures:
        audit(s, user_id=uid, action="login_failed", entity_type="user", entity_id=uid)
    if keystore.pending_failures:
        keystore.pending_failures = []
        keystore.save()
    # Counters kept in the keystore while the laptop was locked come into the database (the
    # keystore is mirrored back from it when this transaction commits).
    for other in keystore.users.values():
        if other.user_id != user.id and (other.failed or other.locked_until is not None):
            row = s.get(User, other.user_id)
            if row is not None:
                row.failed_logins, row.locked_until = other.failed, _when(other.locked_until)
    user.failed_logins = 0
    user.locked_until = None
    mark_dirty(s)
    audit(s, user_id=user.id, action="login", entity_type="user", entity_id=user.id)
    return user


def _when(epoch_s: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, UTC) if epoch_s is not None else None


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
