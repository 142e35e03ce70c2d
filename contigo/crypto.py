"""The key hierarchy, field encryption and blind indexes (DESIGN.md §4, SYNC.md §2.13).

Keys, from the top:

* **Master key**: 32 random bytes per installation. Never stored in the clear: each enrolled user
  holds a copy wrapped under a key derived from their password (:func:`wrap_with_password`), and a
  recovery copy is sealed to the central server's X25519 public key (:func:`seal_to_public_key`).
  While the app is unlocked it lives in a :class:`KeyRing`, in process memory only.
* **Person data keys**: 32 random bytes per person, wrapped by the master key with associated data
  naming the person (:func:`wrap_person_key`). Destroying that wrapped copy makes every value
  encrypted under it unreadable: crypto-shredding.
* **Subkeys** for other purposes (blind indexes, outbox, audit) come from the master key through
  HKDF with a label (:func:`derive_subkey`), so one purpose's key never opens another's data.

Values are AES-256-GCM ciphertexts with a fresh random nonce each, bound by associated data to
``table:pk:column``: a ciphertext copied into another row or column, or altered in any bit, raises
:class:`TamperedCiphertext` rather than decrypting to something else.

Blind indexes (:func:`blind_index`) are truncated HMACs of normalised values. On name tokens they
allow exact lookup of a token ("garcia") without storing it, and they leak equality: two rows
with the same token share an index value. Fuzzy and typo-tolerant search cannot work on them, so
it runs over an index held in memory while the app is unlocked (:mod:`contigo.search_index`) and
is never written to disk.

This module is pure: no Flask, no database. Its exceptions are its own; the web layer maps them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Name folding lives in contigo.names (the fuzzy index uses it too); blind indexes are defined
# over it, so it is part of this module's API as well.
from contigo.names import NAME_PARTICLES as NAME_PARTICLES
from contigo.names import name_tokens as name_tokens
from contigo.names import normalise_identifier as normalise_identifier
from contigo.names import normalise_name as normalise_name

KEY_SIZE = 32
NONCE_SIZE = 12
SALT_SIZE = 16
TAG_SIZE = 16

WRAP_VERSION = 1
"""Layout of :func:`wrap_key` blobs and :class:`WrappedKey` records."""
SEAL_VERSION = 1
"""Layout of :func:`seal_to_public_key` blobs."""

VALUE_VERSIONS: dict[int, int] = {1: 4, 2: 8}
"""Value ciphertext layouts: version byte → key id length. Both are AES-256-GCM; a new
algorithm or layout gets a new version byte, so old ciphertexts stay readable during rotation."""

MAX_SCRYPT_MEMORY = 1 << 30
"""Refuse KDF parameters needing more than 1 GiB, so a corrupted or hostile record cannot make
an unlock exhaust the laptop's memory."""


class CryptoError(Exception):
    """Base of this module's errors."""


class KeyUnwrapError(CryptoError):
    """A wrapped or sealed key did not open: wrong key, wrong associated data, or altered blob."""


class WrongPassword(KeyUnwrapError):
    """The password does not open this wrapped key (or the record was altered)."""


class TamperedCiphertext(CryptoError):
    """A value ciphertext failed authentication: altered, truncated, or moved to another place."""


class MalformedKeyRecord(CryptoError, ValueError):
    """A stored :class:`WrappedKey` record cannot be parsed."""


class KeyRingLocked(CryptoError):
    """The key ring holds no master key (the app is locked)."""


class _Nonces:
    """Random nonces cut from blocks of the OS's randomness, each byte handed out once.

    On the build machine one ``os.urandom`` call costs some 30 µs whatever its size, and a
    pulled page seals two or three values per change. A nonce only has to be unique under its
    key (it is stored beside the ciphertext, never secret), so reading 4 KiB at a time changes
    nothing about it but the cost. Keys and salts still come from ``os.urandom`` directly. A
    forked child starts with an empty block, so parent and child never hand out the same bytes.
    """

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._block, self._at = b"", 0

    def take(self, size: int = NONCE_SIZE) -> bytes:
        """``size`` bytes no caller has had before."""
        with self._lock:
            if self._at + size > len(self._block):
                self._block, self._at = os.urandom(max(self.BLOCK, size)), 0
            out = self._block[self._at : self._at + size]
            self._at += size
            return out


_nonces = _Nonces()
new_nonce = _nonces.take


def new_key() -> bytes:
    """A fresh random 256-bit key (master key, person data key, index key)."""
    return os.urandom(KEY_SIZE)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two secrets without leaking where they differ through timing."""
    return hmac.compare_digest(a, b)


def _check_key(key: bytes | bytearray) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"keys are {KEY_SIZE} bytes, got {len(key)}")


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


# ── password-derived wrapping ──────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class KdfParams:
    """scrypt cost parameters, stored with every wrapped key so they can be raised later.

    The defaults (n=2**15, r=8, p=1: 32 MiB, about 0.1 s) suit a shared field laptop; tests pass
    a smaller ``n``. Rewrapping under stronger parameters needs only the password at next unlock.
    """

    n: int = 2**15
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise ValueError("scrypt n must be a power of two above 1")
        if self.r < 1 or self.p < 1:
            raise ValueError("scrypt r and p must be positive")
        if 128 * self.n * self.r > MAX_SCRYPT_MEMORY:
            raise ValueError("scrypt parameters need more memory than allowed")


def derive_wrapping_key(password: str, salt: bytes, params: KdfParams) -> bytes:
    """Derive a 256-bit key-encryption key from ``password`` with scrypt.

    The password is NFC-normalised first, so the same password typed as composed or decomposed
    accented letters (keyboards and input methods differ) derives the same key.
    """
    # hashlib's scrypt (OpenSSL's) gives the same bytes as ``cryptography``'s and releases the
    # GIL while it runs, so several derivations (a demo's users) can use every core.
    return hashlib.scrypt(
        unicodedata.normalize("NFC", password).encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=MAX_SCRYPT_MEMORY + (1 << 20),
        dklen=KEY_SIZE,
    )


@dataclass(frozen=True)
class WrappedKey:
    """A key wrapped under a password: everything needed to unwrap it except the password.

    The version, KDF parameters and salt are authenticated as associated data, so none of them
    can be altered without the unwrap failing.
    """

    version: int
    kdf: KdfParams
    salt: bytes
    nonce: bytes
    ciphertext: bytes

    def header(self) -> bytes:
        """The authenticated header: version, KDF parameters and salt."""
        head = f"contigo/wrapped-key/v{self.version}:scrypt:{self.kdf.n}:{self.kdf.r}:{self.kdf.p}:"
        return head.encode() + self.salt

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (binary fields in URL-safe base64)."""
        return {
            "v": self.version,
            "kdf": {"alg": "scrypt", "n": self.kdf.n, "r": self.kdf.r, "p": self.kdf.p},
            "salt": _b64(self.salt),
            "nonce": _b64(self.nonce),
            "ct": _b64(self.ciphertext),
        }

    def to_bytes(self) -> bytes:
        """Compact JSON, UTF-8: what is stored per user."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WrappedKey:
        """Parse :meth:`to_dict` output; raises :class:`MalformedKeyRecord` if it is not one."""
        try:
            kdf = data["kdf"]
            supported = data["v"] == WRAP_VERSION and kdf["alg"] == "scrypt"
            record = cls(
                version=int(data["v"]),
                kdf=KdfParams(n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])),
                salt=_unb64(data["salt"]),
                nonce=_unb64(data["nonce"]),
                ciphertext=_unb64(data["ct"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedKeyRecord("not a wrapped key record") from exc
        if not supported:
            raise MalformedKeyRecord("unsupported wrapped key version or KDF")
        return record

    @classmethod
    def from_bytes(cls, blob: bytes) -> WrappedKey:
        """Parse :meth:`to_bytes` output; raises :class:`MalformedKeyRecord` if it is not one."""
        try:
            data = json.loads(blob)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedKeyRecord("not a wrapped key record") from exc
        if not isinstance(data, dict):
            raise MalformedKeyRecord("not a wrapped key record")
        return cls.from_dict(data)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode("ascii"))


def wrap_with_password(
    password: str, key: bytes, *, params: KdfParams | None = None, aad: bytes = b""
) -> WrappedKey:
    """Wrap ``key`` under ``password`` with a fresh salt and nonce (one user's copy).

    ``aad`` may bind the copy to its holder (e.g. the user id); the same value must be given to
    :func:`unwrap_with_password`.
    """
    _check_key(key)
    params = params or KdfParams()
    salt = os.urandom(SALT_SIZE)
    unsealed = WrappedKey(WRAP_VERSION, params, salt, b"", b"")
    nonce = new_nonce()
    kek = derive_wrapping_key(password, salt, params)
    ciphertext = AESGCM(kek).encrypt(nonce, key, unsealed.header() + aad)
    return WrappedKey(WRAP_VERSION, params, salt, nonce, ciphertext)


def unwrap_with_password(password: str, wrapped: WrappedKey, *, aad: bytes = b"") -> bytes:
    """Unwrap a key with ``password``; raises :class:`WrongPassword`, never returns garbage."""
    kek = derive_wrapping_key(password, wrapped.salt, wrapped.kdf)
    try:
        return AESGCM(kek).decrypt(wrapped.nonce, wrapped.ciphertext, wrapped.header() + aad)
    except (InvalidTag, ValueError) as exc:
        raise WrongPassword("the password does not open this key") from exc


# ── key wrapping under another key ─────────────────────────────────────────────────────────────


def _wrap_aad(aad: bytes | str) -> bytes:
    return b"contigo/wrap/v1\x00" + _as_bytes(aad)


def wrap_key(kek: bytes, key: bytes, aad: bytes | str) -> bytes:
    """Wrap ``key`` under ``kek`` (AES-256-GCM): ``version || nonce || ciphertext+tag``.

    ``aad`` names what the key is for (e.g. ``person:<id>``); unwrapping with another name fails,
    so a wrapped key cannot be moved to another owner.
    """
    _check_key(kek)
    nonce = new_nonce()
    return bytes([WRAP_VERSION]) + nonce + AESGCM(kek).encrypt(nonce, key, _wrap_aad(aad))


def unwrap_key(kek: bytes, blob: bytes, aad: bytes | str) -> bytes:
    """Open a :func:`wrap_key` blob; raises :class:`KeyUnwrapError` on any mismatch."""
    _check_key(kek)
    if len(blob) < 1 + NONCE_SIZE + TAG_SIZE or blob[0] != WRAP_VERSION:
        raise KeyUnwrapError("not a wrapped key")
    nonce, body = blob[1 : 1 + NONCE_SIZE], blob[1 + NONCE_SIZE :]
    try:
        return AESGCM(kek).decrypt(nonce, body, _wrap_aad(aad))
    except InvalidTag as exc:
        raise KeyUnwrapError("wrong key, wrong owner, or altered blob") from exc


def person_key_aad(person_id: str) -> bytes:
    """The associated data binding a wrapped data key to its person."""
    return f"person:{person_id}".encode()


def wrap_person_key(master: bytes, person_id: str, key: bytes) -> bytes:
    """Wrap a person's data key under the master key, bound to ``person_id``.

    The result is the only stored copy of the data key: deleting it shreds every value
    encrypted under that key, everywhere it was copied.
    """
    return wrap_key(master, key, person_key_aad(person_id))


def unwrap_person_key(master: bytes, person_id: str, blob: bytes) -> bytes:
    """Open a person's wrapped data key; raises :class:`KeyUnwrapError` for another person's."""
    return unwrap_key(master, blob, person_key_aad(person_id))


def derive_subkey(master: bytes, label: str) -> bytes:
    """A 256-bit key for one purpose (``"blind_index"``, ``"outbox"``, ``"audit"`` …).

    HKDF-SHA256 with the label as context: subkeys of different labels are independent, and none
    reveals the master key.
    """
    _check_key(master)
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=b"contigo/subkey/v1:" + label.encode(),
    )
    return hkdf.derive(master)


# ── recovery copy sealed to the central server ─────────────────────────────────────────────────


def new_recovery_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 key pair as raw ``(private, public)`` bytes (for the central server)."""
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return raw_private, _raw_public(private.public_key())


def _raw_public(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _seal_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=None,
        info=b"contigo/seal/v1" + ephemeral + recipient,
    )
    return hkdf.derive(shared)


def seal_to_public_key(public: X25519PublicKey | bytes, key: bytes, aad: bytes = b"") -> bytes:
    """Seal ``key`` so only the holder of the matching private key can open it.

    Ephemeral X25519, HKDF-SHA256, AES-256-GCM; the laptop keeps no secret that opens the blob.
    Layout: ``version || ephemeral public (32) || nonce || ciphertext+tag``.
    """
    recipient = (
        public if isinstance(public, X25519PublicKey) else X25519PublicKey.from_public_bytes(public)
    )
    ephemeral = X25519PrivateKey.generate()
    eph_raw, rec_raw = _raw_public(ephemeral.public_key()), _raw_public(recipient)
    aead = AESGCM(_seal_key(ephemeral.exchange(recipient), eph_raw, rec_raw))
    nonce = new_nonce()
    return bytes([SEAL_VERSION]) + eph_raw + nonce + aead.encrypt(nonce, key, aad)


def open_sealed(private: X25519PrivateKey | bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Open a :func:`seal_to_public_key` blob; raises :class:`KeyUnwrapError` on any mismatch."""
    if isinstance(private, bytes):
        private = X25519PrivateKey.from_private_bytes(private)
    if len(blob) < 1 + 32 + NONCE_SIZE + TAG_SIZE or blob[0] != SEAL_VERSION:
        raise KeyUnwrapError("not a sealed key")
    eph_raw, nonce, body = blob[1:33], blob[33 : 33 + NONCE_SIZE], blob[33 + NONCE_SIZE :]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_raw))
        aead = AESGCM(_seal_key(shared, eph_raw, _raw_public(private.public_key())))
        return aead.decrypt(nonce, body, aad)
    except (InvalidTag, ValueError) as exc:
        raise KeyUnwrapError("wrong private key or altered blob") from exc


# ── value encryption ───────────────────────────────────────────────────────────────────────────


def _value_version(key_id: bytes) -> int:
    for version, size in VALUE_VERSIONS.items():
        if size == len(key_id):
            return version
    raise ValueError("key ids are 4 or 8 bytes")


def encrypt_value(key: bytes, key_id: bytes, plaintext: bytes, aad: str) -> bytes:
    """Encrypt one field value: ``version || key_id || nonce || ciphertext+tag``.

    ``aad`` is ``f"{table}:{pk}:{column}"``; it is not stored, and decrypting under any other
    place fails. The version byte and key id are authenticated too. A fresh random nonce per
    value makes equal plaintexts encrypt differently.
    """
    _check_key(key)
    header = bytes([_value_version(key_id)]) + key_id
    nonce = new_nonce()
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + aad.encode())


def ciphertext_key_id(blob: bytes) -> bytes:
    """The key id a value ciphertext names (to pick the key during rotation)."""
    if not blob or blob[0] not in VALUE_VERSIONS:
        raise TamperedCiphertext("unknown ciphertext version")
    return blob[1 : 1 + VALUE_VERSIONS[blob[0]]]


def decrypt_value(key: bytes, blob: bytes, aad: str) -> bytes:
    """Decrypt :func:`encrypt_value` output; raises :class:`TamperedCiphertext` if it was
    altered, truncated, or belongs to another table, row or column."""
    _check_key(key)
    key_id = ciphertext_key_id(blob)
    start = 1 + len(key_id)
    if len(blob) < start + NONCE_SIZE + TAG_SIZE:
        raise TamperedCiphertext("truncated ciphertext")
    nonce, body = blob[start : start + NONCE_SIZE], blob[start + NONCE_SIZE :]
    try:
        return AESGCM(key).decrypt(nonce, body, blob[:start] + aad.encode())
    except InvalidTag as exc:
        raise TamperedCiphertext("ciphertext altered or moved") from exc


def decrypter(key: bytes) -> Callable[[bytes, str], bytes]:
    """:func:`decrypt_value` with ``key`` bound, for opening many values in a row (the cipher
    is set up once, not per value: a pull page opens a thousand)."""
    _check_key(key)
    cipher = AESGCM(key)

    def decrypt(blob: bytes, aad: str) -> bytes:
        key_id = ciphertext_key_id(blob)
        start = 1 + len(key_id)
        if len(blob) < start + NONCE_SIZE + TAG_SIZE:
            raise TamperedCiphertext("truncated ciphertext")
        try:
            return cipher.decrypt(
                blob[start : start + NONCE_SIZE],
                blob[start + NONCE_SIZE :],
                blob[:start] + aad.encode(),
            )
        except InvalidTag as exc:
            raise TamperedCiphertext("ciphertext altered or moved") from exc

    return decrypt


def encrypt_str(key: bytes, key_id: bytes, value: str, aad: str) -> bytes:
    """Encrypt a string (UTF-8)."""
    return encrypt_value(key, key_id, value.encode("utf-8"), aad)


def decrypt_str(key: bytes, blob: bytes, aad: str) -> str:
    """Decrypt :func:`encrypt_str` output."""
    return decrypt_value(key, blob, aad).decode("utf-8")


def encrypt_json(key: bytes, key_id: bytes, value: Any, aad: str) -> bytes:
    """Encrypt a JSON-serialisable value (canonical, compact encoding)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return encrypt_str(key, key_id, text, aad)


def decrypt_json(key: bytes, blob: bytes, aad: str) -> Any:
    """Decrypt :func:`encrypt_json` output."""
    return json.loads(decrypt_str(key, blob, aad))


def encrypt_date(key: bytes, key_id: bytes, value: date, aad: str) -> bytes:
    """Encrypt a calendar date (ISO 8601)."""
    return encrypt_str(key, key_id, value.isoformat(), aad)


def decrypt_date(key: bytes, blob: bytes, aad: str) -> date:
    """Decrypt :func:`encrypt_date` output."""
    return date.fromisoformat(decrypt_str(key, blob, aad))


# ── normalisation and blind indexes ────────────────────────────────────────────────────────────


def blind_index(
    index_key: bytes,
    value: str,
    *,
    field: str,
    length: int = 16,
    normalise: Callable[[str], str] = normalise_name,
) -> str:
    """A keyed, truncated HMAC-SHA256 of a normalised value, as ``length`` hex characters.

    The field name separates domains, so the same value gives unrelated indexes in different
    fields. Equal normalised values give equal indexes, which is what makes exact lookup work and
    also what it leaks; the default 64 bits keep accidental collisions negligible at our scale.
    """
    if not field or "\x00" in field:
        raise ValueError("field must be a non-empty name without NUL")
    if not 8 <= length <= 64:
        raise ValueError("length is 8 to 64 hex characters")
    message = field.encode() + b"\x00" + normalise(value).encode("utf-8")
    return hmac.new(index_key, message, sha256).hexdigest()[:length]


# ── the unlocked master key ────────────────────────────────────────────────────────────────────


class KeyRing:
    """Holds the master key in process memory while the app is unlocked.

    :meth:`lock` overwrites the held buffer before dropping it. Python cannot promise more: copies
    handed out by :attr:`master_key` and keys derived from it live until garbage-collected, so
    callers keep them no longer than needed and drop their own caches on lock.
    """

    def __init__(self) -> None:
        self._key: bytearray | None = None

    @property
    def is_unlocked(self) -> bool:
        """Whether a master key is held."""
        return self._key is not None

    @property
    def master_key(self) -> bytes:
        """The master key; raises :class:`KeyRingLocked` when locked."""
        if self._key is None:
            raise KeyRingLocked("the key ring is locked")
        return bytes(self._key)

    def unlock(self, key: bytes) -> None:
        """Hold ``key`` (replacing, and wiping, any key held before)."""
        _check_key(key)
        self.lock()
        self._key = bytearray(key)

    def lock(self) -> None:
        """Wipe and drop the held key; safe to call when already locked."""
        if self._key is not None:
            for i in range(len(self._key)):
                self._key[i] = 0
            self._key = None

    def __repr__(self) -> str:
        return f"KeyRing(unlocked={self.is_unlocked})"
