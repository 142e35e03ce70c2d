"""A laptop's keystore: what unlocking needs, outside the encrypted database.

On a laptop the whole SQLite file is encrypted with SQLCipher under a key derived from the master
key (DESIGN.md §4, "Two layers on a laptop"), so nothing in it can be read before unlock. What
unlock itself needs lives here instead, in ``keystore.json`` in the instance folder (mode 0600,
replaced atomically):

- each user's copy of the master key (password-wrapped, or sealed to their central-derived public
  key with that key's salt and cost), found by a salted hash of the username, with the user's
  id (random, not personal) and their failed-login count and lock-out time;
- the recovery copy of the master key sealed to central's recovery key, with the device id it
  is bound to;
- whether central revoked this laptop (then there are no user copies at all);
- whether the database is encrypted (a plain file is then refused, never opened).

No name, username or personal value is in it in plaintext. The copies open only with a password
(scrypt) or central's key. The users' copies are mirrored from the ``users`` table inside the
encrypted database whenever a transaction that changed them commits (:func:`mirror`), so the
services keep one source of truth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

FILENAME = "keystore.json"
VERSION = 1
_write_lock = threading.Lock()


RECOVERY_ENTRY = "recovery_master_key"
"""The ``key_entries`` row of the recovery copy (sealed to central), mirrored here."""


class KeystoreDamaged(RuntimeError):
    """The keystore file is not one this code wrote (altered, truncated or foreign)."""


@dataclass(slots=True)
class UserCopy:
    """One user's copy of the master key and their login counters."""

    user_id: str
    copy: bytes
    unlock: str | None = None  # the public key record of a user central manages
    failed: int = 0
    locked_until: float | None = None  # epoch seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "copy": base64.b64encode(self.copy).decode(),
            "unlock": self.unlock,
            "failed": self.failed,
            "locked_until": self.locked_until,
        }

    @classmethod
    def from_dict(cls, data: Any) -> UserCopy:
        try:
            return cls(
                user_id=str(data["user_id"]),
                copy=base64.b64decode(str(data["copy"]), validate=True),
                unlock=str(data["unlock"]) if data.get("unlock") is not None else None,
                failed=int(data.get("failed", 0)),
                locked_until=(
                    float(data["locked_until"]) if data.get("locked_until") is not None else None
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreDamaged("malformed user entry") from exc


@dataclass(slots=True)
class Keystore:
    """The keystore of one instance folder (see the module docstring)."""

    path: Path
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    users: dict[str, UserCopy] = field(default_factory=dict)
    recovery: bytes | None = None
    device_id: str | None = None
    revoked_at: int | None = None
    encrypted_db: bool = False
    # Failed logins of a locked laptop (user id, epoch seconds): audited at the next unlock.
    pending_failures: list[tuple[str, float]] = field(default_factory=list)
    exists: bool = False

    # ── lookup ─────────────────────────────────────────────────────────────
    def handle(self, username: str) -> str:
        """The salted hash a username is filed under (no username is stored)."""
        clean = username.strip().lower().encode()
        return hmac.new(self.salt, clean, hashlib.sha256).hexdigest()

    def find(self, username: str) -> UserCopy | None:
        return self.users.get(self.handle(username))

    # ── file ───────────────────────────────────────────────────────────────
    @classmethod
    def load(cls, instance: Path) -> Keystore:
        """The keystore of ``instance`` (an empty, unsaved one when there is none yet)."""
        path = Path(instance) / FILENAME
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path=path)
        try:
            data = json.loads(raw)
            if data.get("version") != VERSION:
                raise KeystoreDamaged("unknown keystore version")
            recovery = data.get("recovery")
            return cls(
                path=path,
                salt=base64.b64decode(str(data["salt"]), validate=True),
                users={str(k): UserCopy.from_dict(v) for k, v in dict(data["users"]).items()},
                recovery=base64.b64decode(recovery, validate=True) if recovery else None,
                device_id=str(data["device_id"]) if data.get("device_id") else None,
                revoked_at=int(data["revoked_at"]) if data.get("revoked_at") else None,
                encrypted_db=bool(data.get("encrypted_db", False)),
                pending_failures=[(str(u), float(w)) for u, w in data.get("pending_failures", [])],
                exists=True,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise KeystoreDamaged("malformed keystore") from exc

    def save(self) -> None:
        """Write the keystore atomically (temp file, fsync, rename, fsync of the folder),
        readable and writable by its owner only."""
        data = {
            "version": VERSION,
            "salt": base64.b64encode(self.salt).decode(),
            "users": {k: v.to_dict() for k, v in sorted(self.users.items())},
            "recovery": base64.b64encode(self.recovery).decode() if self.recovery else None,
            "device_id": self.device_id,
            "revoked_at": self.revoked_at,
            "encrypted_db": self.encrypted_db,
            "pending_failures": [[u, w] for u, w in self.pending_failures],
        }
        body = json.dumps(data, sort_keys=True, indent=1).encode()
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        with _write_lock:
            fd, tmp = tempfile.mkstemp(prefix=".keystore-", dir=folder)
            try:
                os.chmod(tmp, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            _fsync_dir(folder)
        self.exists = True

    # ── counters ───────────────────────────────────────────────────────────
    def failed(self, entry: UserCopy, now: float, *, max_failed: int, lockout_s: int) -> None:
        """Count a failed login of ``entry`` (locking it out after ``max_failed``) and save."""
        entry.failed += 1
        if entry.failed >= max_failed:
            entry.locked_until = now + lockout_s
            entry.failed = 0
        self.save()

    def succeeded(self, entry: UserCopy) -> None:
        """Reset ``entry``'s counters after a successful login (saved only when they change)."""
        if entry.failed or entry.locked_until is not None:
            entry.failed, entry.locked_until = 0, None
            self.save()


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder for fsync; the rename is durable there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


DIRTY = "contigo_keystore_dirty"


def mark_dirty(s: Session) -> None:
    """Have the keystore mirrored when ``s`` next commits (after a bulk update the session's
    own change tracking does not see)."""
    s.info[DIRTY] = True


def mirror(s: Session, keystore: Keystore) -> None:
    """Make the keystore's user copies and counters, recovery copy, device id and revocation
    match the database in ``s`` (called before a transaction that changed them commits)."""
    from contigo.auth.models import KeyEntry, User
    from sync.client.engine import REVOKED_KEY
    from sync.outbox import DEVICE_KEY, get_state

    users: dict[str, UserCopy] = {}
    rows = s.execute(
        select(
            User.id,
            User.username,
            User.wrapped_master_key,
            User.unlock_public_key,
            User.failed_logins,
            User.locked_until,
            User.directory_seq,
        ).where(User.active.is_(True), User.wrapped_master_key.is_not(None))
    )
    for uid, username, copy, unlock, failed, locked_until, seq in rows:
        users[keystore.handle(username)] = UserCopy(
            user_id=uid,
            copy=bytes(copy or b""),
            unlock=unlock if seq is not None and unlock else None,
            failed=int(failed or 0),
            locked_until=locked_until.timestamp() if locked_until is not None else None,
        )
    recovery = s.get(KeyEntry, RECOVERY_ENTRY)
    revoked = get_state(s, REVOKED_KEY)
    keystore.users = {} if revoked else users
    keystore.recovery = recovery.blob if recovery is not None else None
    keystore.device_id = get_state(s, DEVICE_KEY)
    keystore.revoked_at = int(revoked) if revoked else None
    keystore.save()


def install_mirror(factory: sessionmaker[Session], instance: Path) -> None:
    """Mirror the keystore from the database whenever a session of ``factory`` commits a change
    to a user, a wrapped key or the device's identity or revocation."""
    from contigo.auth.models import KeyEntry, User
    from sync.client.engine import REVOKED_KEY
    from sync.models import SyncState
    from sync.outbox import DEVICE_KEY

    watched = (REVOKED_KEY, DEVICE_KEY)

    def _seen(session: Session, _ctx: Any) -> None:
        for obj in itertools.chain(session.new, session.dirty, session.deleted):
            if isinstance(obj, User | KeyEntry) or (
                isinstance(obj, SyncState) and obj.key in watched
            ):
                session.info[DIRTY] = True
                return

    def _bulk(state: ORMExecuteState) -> None:
        mapper = state.bind_mapper
        bulk = state.is_update or state.is_delete
        if bulk and mapper is not None and mapper.class_ in (User, KeyEntry, SyncState):
            state.session.info[DIRTY] = True

    def _mirror(session: Session) -> None:
        session.flush()
        if session.info.pop(DIRTY, False):
            mirror(session, Keystore.load(instance))

    event.listen(factory, "after_flush", _seen)
    event.listen(factory, "do_orm_execute", _bulk)
    event.listen(factory, "before_commit", _mirror)
