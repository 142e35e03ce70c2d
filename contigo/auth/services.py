"""Logging in, unlocking the laptop, lockout, API tokens and adding users.

On a laptop the password is checked by unwrapping the user's copy of the master key: a wrong
password fails to unwrap. After ``MAX_FAILED_LOGINS`` failures the account is locked for
``LOCKOUT_SECONDS``; a success resets the count. A refusal never says which check failed.
"""

from __future__ import annotations

import secrets
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import crypto
from contigo.audit.services import record as audit
from contigo.auth import sessions
from contigo.auth.models import ROLES, User, UserSite
from contigo.db import utcnow
from contigo.errors import DeviceRevoked, Locked, ValidationFailed, WrongCredentials
from contigo.i18n import translate
from contigo.keystore import Keystore, UserCopy, mark_dirty
from contigo.recovery import forget_user_keys
from contigo.usersync.keys import UnlockKey, open_user_copy
from contigo.vault import Vault
from sync.client.engine import REVOKED_KEY
from sync.outbox import get_state


class LoginRefused(WrongCredentials):
    """One answer for every refused sign-in: unknown user, wrong password, locked-out or
    deactivated account (same status, same message, same work), so none can be told apart."""

    message_id = "sess.login_refused"


def _kdf_of(user: User, fallback: crypto.KdfParams) -> crypto.KdfParams:
    """The key-derivation cost of ``user``'s copy of the master key (what a check costs)."""
    try:
        if user.directory_seq is not None and user.unlock_public_key is not None:
            return UnlockKey.from_json(user.unlock_public_key).kdf
        if user.wrapped_master_key is not None:
            return crypto.WrappedKey.from_bytes(user.wrapped_master_key).kdf
    except crypto.MalformedKeyRecord:
        pass
    return fallback


def _spend_as_a_real_check(s: Session, v: Vault, user: User | None, password: str) -> None:
    """Run ``password`` through the key derivation a real check runs, at a real user's cost,
    against a decoy no password opens: a refusal takes as long whether the account exists,
    is deactivated or is locked out."""
    model = user or s.scalar(
        select(User).where(User.wrapped_master_key.is_not(None)).order_by(User.id).limit(1)
    )
    params = _kdf_of(model, crypto.KdfParams(n=v.scrypt_n)) if model is not None else None
    _unwrap_decoy(params or crypto.KdfParams(n=v.scrypt_n), password)


def _unwrap_decoy(params: crypto.KdfParams, password: str) -> None:
    """One password key derivation at ``params``' cost, against a copy no password opens."""
    decoy = crypto.WrappedKey(
        version=crypto.WRAP_VERSION,
        kdf=params,
        salt=secrets.token_bytes(crypto.SALT_SIZE),
        nonce=secrets.token_bytes(crypto.NONCE_SIZE),
        ciphertext=secrets.token_bytes(crypto.KEY_SIZE + 16),
    )
    with suppress(crypto.WrongPassword):
        crypto.unwrap_with_password(password, decoy)


def authenticate(
    s: Session, v: Vault, username: str, password: str, *, max_failed: int, lockout_s: int
) -> User:
    """Check a password and unlock the vault with it (or confirm it against an unlocked vault).

    Raises :class:`LoginRefused`, whatever the reason (see there): an unknown, deactivated or
    locked-out account costs the same key derivation as a wrong password and is audited as it
    is; :class:`DeviceRevoked` on a laptop central revoked (whose key copies are gone; destroyed
    here too, should the run that learned it have died before). This is the one service that
    commits: a failed attempt must count towards the lockout even though the request fails.

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
    if (
        user is None
        or not user.active
        or user.wrapped_master_key is None
        or (user.locked_until is not None and user.locked_until > now)
    ):
        _spend_as_a_real_check(s, v, user, password)
        uid = user.id if user is not None else None
        audit(s, user_id=uid, action="login_refused", entity_type="user", entity_id=uid)
        s.commit()
        raise LoginRefused()
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
        raise LoginRefused()
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
    """:func:`authenticate` on a laptop whose database is under SQLCipher. Every refusal (no
    such user, locked out, wrong password) costs one key derivation at a real user's cost and
    is counted the same way, so none can be told apart."""
    if keystore.revoked_at is not None:
        raise DeviceRevoked()
    entry = keystore.find(username)
    now = time.time()
    if entry is None or (entry.locked_until is not None and entry.locked_until > now):
        _spend_as_a_keystore_check(v, entry or next(iter(keystore.users.values()), None), password)
        _refused_while_locked(s, keystore, entry.user_id if entry else None, now)
        raise LoginRefused()
    master = open_user_copy(entry.user_id, entry.copy, entry.unlock, password)
    was_unlocked = v.is_unlocked
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
        raise LoginRefused()
    user = s.get(User, entry.user_id)
    if user is None or not user.active:
        if not was_unlocked:
            v.lock()  # a copy that should have gone with the account opens nothing
        raise LoginRefused()
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


def _spend_as_a_keystore_check(v: Vault, model: UserCopy | None, password: str) -> None:
    """The key derivation a keystore check runs, at ``model``'s cost, against a decoy."""
    params = crypto.KdfParams(n=v.scrypt_n)
    if model is not None:
        try:
            if model.unlock is not None:
                params = UnlockKey.from_json(model.unlock).kdf
            else:
                params = crypto.WrappedKey.from_bytes(model.copy).kdf
        except crypto.MalformedKeyRecord:
            pass
    _unwrap_decoy(params, password)


def _refused_while_locked(s: Session, keystore: Keystore, uid: str | None, now: float) -> None:
    """Audit a refusal that is not a wrong password, now if the database is open, else at the
    next unlock (the keystore is written either way, as for a wrong password)."""
    try:
        audit(s, user_id=uid, action="login_refused", entity_type="user", entity_id=uid)
        s.commit()
    except Locked:
        s.rollback()
        if uid is not None:
            keystore.pending_failures.append((uid, now))
        keystore.save()


def _when(epoch_s: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_s, UTC) if epoch_s is not None else None


def issue_token(s: Session, user: User, ttl_s: int) -> tuple[str, datetime]:
    """A new bearer token for the API, held in the session store (:mod:`contigo.auth.sessions`)
    with the browser sessions, so lock and sign-out end it too; only its hash is stored."""
    token, expires = sessions.issue_token(current_app, user.id, ttl_s)
    return token, datetime.fromtimestamp(expires, UTC)


def user_for_token(s: Session, token: str) -> User | None:
    """The active user a live (unexpired, unrevoked) token belongs to."""
    uid = sessions.token_user_id(current_app, token)
    user = s.get(User, uid) if uid else None
    return user if user is not None and user.active else None


def end_sessions(user_id: str) -> None:
    """Sign a user out everywhere: every browser session and API token of theirs ends."""
    sessions.store(current_app).revoke_user(user_id)


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
    wrapped_master_key: bytes | None = None,
) -> User:
    """Enrol a user on this laptop: the vault must be unlocked, since the new user receives a copy
    of the master key wrapped under a key derived from their own password.

    ``wrapped_master_key`` is that copy when the caller made it already with
    :meth:`Vault.wrap_master_for` and ``password`` (a demo makes its users' copies concurrently:
    each is a full-cost derivation with its own salt)."""
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
        wrapped_master_key=wrapped_master_key or v.wrap_master_for(password),
    )
    user.sites = [UserSite(site_id=sid) for sid in extra_site_ids if sid != site_id]
    s.add(user)
    s.flush()
    return user
