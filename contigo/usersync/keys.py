"""Key pairs derived from a password, and master keys sealed to their public half.

The private key is never stored anywhere: it is re-derived from the password (scrypt, a
per-user salt, the stored cost) whenever a laptop is unlocked. What is stored and synced (the
public key, the salt and the cost) opens nothing; like any password-derived value it can only
be attacked by guessing passwords at the scrypt cost.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from contigo import crypto

if TYPE_CHECKING:
    from contigo.auth.models import User
    from contigo.vault import Vault

SALT_SIZE = 16


@dataclass(frozen=True, slots=True)
class UnlockKey:
    """The public half of a user's password-derived key pair, with how to derive it again."""

    public_key: bytes
    salt: bytes
    kdf: crypto.KdfParams

    def to_json(self) -> str:
        """Text for ``users.unlock_public_key`` and the wire."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict[str, object]:
        return {
            "public_key": base64.b64encode(self.public_key).decode(),
            "salt": base64.b64encode(self.salt).decode(),
            "n": self.kdf.n,
            "r": self.kdf.r,
            "p": self.kdf.p,
        }

    @classmethod
    def from_json(cls, text: str) -> UnlockKey:
        """Parse :meth:`to_json` text; raises :class:`crypto.MalformedKeyRecord` if it is not."""
        try:
            data = json.loads(text)
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise crypto.MalformedKeyRecord("not an unlock key") from exc

    @classmethod
    def from_dict(cls, data: object) -> UnlockKey:
        if not isinstance(data, dict):
            raise crypto.MalformedKeyRecord("not an unlock key")
        try:
            public = base64.b64decode(str(data["public_key"]), validate=True)
            salt = base64.b64decode(str(data["salt"]), validate=True)
            kdf = crypto.KdfParams(n=int(data["n"]), r=int(data["r"]), p=int(data["p"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise crypto.MalformedKeyRecord("not an unlock key") from exc
        if len(public) != 32 or len(salt) != SALT_SIZE:
            raise crypto.MalformedKeyRecord("not an unlock key")
        return cls(public_key=public, salt=salt, kdf=kdf)


def _private_key(
    user_id: str, password: str, salt: bytes, kdf: crypto.KdfParams
) -> X25519PrivateKey:
    stretched = crypto.derive_wrapping_key(password, salt, kdf)
    seed = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"contigo/user-unlock/v1:" + user_id.encode(),
    ).derive(stretched)
    return X25519PrivateKey.from_private_bytes(seed)


def derive_unlock_key(
    user_id: str, password: str, kdf: crypto.KdfParams, salt: bytes | None = None
) -> UnlockKey:
    """The public key derived from ``password`` (a fresh salt unless one is given). The user id
    is part of the derivation, so two users with one password get unrelated keys."""
    salt = salt if salt is not None else os.urandom(SALT_SIZE)
    public = _private_key(user_id, password, salt, kdf).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return UnlockKey(public_key=raw, salt=salt, kdf=kdf)


def _aad(user_id: str) -> bytes:
    return b"contigo/user-master/v1:" + user_id.encode()


def seal_master(master: bytes, user_id: str, unlock: UnlockKey) -> bytes:
    """``master`` sealed to the user's public key: the user's wrapped copy on a laptop."""
    return crypto.seal_to_public_key(unlock.public_key, master, _aad(user_id))


def open_master(user_id: str, password: str, unlock: UnlockKey, sealed: bytes) -> bytes:
    """The master key from a :func:`seal_master` copy; raises :class:`crypto.WrongPassword` when
    the password derives another key (or the copy was altered)."""
    private = _private_key(user_id, password, unlock.salt, unlock.kdf)
    try:
        return crypto.open_sealed(private, sealed, _aad(user_id))
    except crypto.KeyUnwrapError as exc:
        raise crypto.WrongPassword("the password does not open this key") from exc


def open_user_copy(user_id: str, copy: bytes, unlock: str | None, password: str) -> bytes | None:
    """The master key from a user's copy (sealed to their public key when ``unlock`` names it,
    else wrapped under their password); ``None`` when the password does not open it."""
    try:
        if unlock is None:
            return crypto.unwrap_with_password(password, crypto.WrappedKey.from_bytes(copy))
        return open_master(user_id, password, UnlockKey.from_json(unlock), copy)
    except crypto.CryptoError:
        return None


def unlock_vault(v: Vault, user: User, password: str) -> bool:
    """Unlock ``v`` with ``user``'s copy of the master key: a copy sealed to their public key
    when central manages them on this laptop, else the copy wrapped under their password."""
    if user.wrapped_master_key is None:
        return False
    managed = user.directory_seq is not None and user.unlock_public_key is not None
    master = open_user_copy(
        user.id, user.wrapped_master_key, user.unlock_public_key if managed else None, password
    )
    return master is not None and v.hold(master)
