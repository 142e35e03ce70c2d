"""The unlocked state of this installation: the master key in process memory, and what it opens.

The app starts locked. A user's password unwraps their copy of the master key; the key then
unwraps each person's data key on demand. Locking (by hand, on idle or at exit) drops every key
and the in-memory fuzzy name index. Nothing here is ever written to disk in the clear.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import crypto
from contigo.errors import Locked, UnlockDamaged
from contigo.search_index import FuzzyNameIndex
from sync import fastjson

if TYPE_CHECKING:
    from contigo.keystore import Keystore

log = logging.getLogger(__name__)
KEY_ID = b"mk01"
KEEP_DATABASE_KEY_FOR_TESTS = False
_KEPT_FOR_TESTS: dict[str, bytes] = {}  # instance folder -> database key (tests only)
INDEX_KEY_NAME = "blind_index"
SETTLE_HEAP_AT_UNLOCK = True
"""Whether building the name index ends with a full collection and ``gc.freeze`` (see
:meth:`Vault.build_name_index`). Off in the test process only (set by tests/conftest.py, never
by configuration): it holds hundreds of apps, and a full pass over that heap at every unlock would
cost the suite more than it measures."""


class Vault:
    """Keys of one installation while it is unlocked; thread-safe for waitress' worker threads."""

    def __init__(self, scrypt_n: int = 2**15) -> None:
        self._lock = threading.RLock()
        self._ring = crypto.KeyRing()
        self._index_key: bytes | None = None
        self._person_keys: dict[str, bytes] = {}
        self._subkeys: dict[str, tuple[bytes, bytes]] = {}
        self._fuzzy: FuzzyNameIndex | None = None
        self._memos: dict[str, dict[Any, Any]] = {}
        self.scrypt_n = scrypt_n
        self.last_activity = time.monotonic()
        # A laptop whose database is under SQLCipher: the folder of its keystore, and what must
        # happen when the master key arrives (open, convert, migrate the database) or leaves
        # (drop every pooled connection).
        self.keystore_dir: Path | None = None
        self.on_unlock: list[Callable[[], None]] = []
        self.on_lock: list[Callable[[], None]] = []
        # Where the name index learns what other processes over the same database wrote since
        # it was built (set on a central, whose workers each hold their own index; a laptop
        # has one process and no source).
        self.name_source: Callable[[Session], None] | None = None
        # Tests only (set by tests/conftest.py, never by configuration): the harness inspects
        # the database of a locked laptop, as an administrator with the key would.
        self.keep_database_key_for_tests = KEEP_DATABASE_KEY_FOR_TESTS
        self.settle_heap = SETTLE_HEAP_AT_UNLOCK
        self._frozen = False

    # ── state ──────────────────────────────────────────────────────────────
    @property
    def is_unlocked(self) -> bool:
        return self._ring.is_unlocked

    def touch(self) -> None:
        """Note activity, postponing the idle lock."""
        self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity

    def _master(self) -> bytes:
        if not self._ring.is_unlocked:
            raise Locked()
        return self._ring.master_key

    def lock(self) -> None:
        """Forget every key and the in-memory name index; a laptop's database closes. A memo
        value with a ``before_lock(vault)`` method is told first, while the keys are here."""
        self._before_lock()
        with self._lock:
            if self.keep_database_key_for_tests and self._ring.is_unlocked and self.keystore_dir:
                _KEPT_FOR_TESTS[str(self.keystore_dir)] = self.database_key()
            self._ring.lock()
            self._index_key = None
            self._person_keys.clear()
            self._subkeys.clear()
            self._fuzzy = None
            self._memos.clear()
            for callback in self.on_lock:
                callback()
        if self._frozen:  # what the unlock set aside may be collected again (build_name_index)
            self._frozen = False
            gc.unfreeze()

    def _before_lock(self) -> None:
        if not self._ring.is_unlocked:
            return
        with self._lock:
            held = [value for memo in self._memos.values() for value in memo.values()]
        for value in held:
            hook = getattr(value, "before_lock", None)
            if callable(hook):
                try:
                    hook(self)
                except (OSError, crypto.CryptoError):  # the lock happens whatever the hook met
                    log.exception("before lock: %s failed", type(value).__name__)

    def _unlocked(self) -> None:
        """Run what the master key's arrival opens; on failure the vault locks again."""
        if self.keep_database_key_for_tests and self.keystore_dir:
            _KEPT_FOR_TESTS[str(self.keystore_dir)] = self.database_key()
        try:
            for callback in self.on_unlock:
                callback()
        except BaseException:
            self.lock()
            raise

    def database_key(self) -> bytes:
        """The SQLCipher key of a laptop's database, derived from the master key (raises
        :class:`Locked` while locked)."""
        if not self._ring.is_unlocked and self.keep_database_key_for_tests:
            kept = _KEPT_FOR_TESTS.get(str(self.keystore_dir))
            if kept is not None:
                return kept
        return self._subkey("sqlcipher")

    def keystore(self) -> Keystore | None:
        """The laptop's keystore, when its database is under SQLCipher and the keystore exists."""
        if self.keystore_dir is None:
            return None
        from contigo.keystore import Keystore

        found = Keystore.load(self.keystore_dir)
        return found if found.exists else None

    # ── set-up and unlock ──────────────────────────────────────────────────
    def initialise(self) -> None:
        """Create a fresh master key (``contigo init``) and hold it unlocked."""
        with self._lock:
            self._ring.unlock(crypto.new_key())
        self._unlocked()

    def unlock_with_key(self, key: bytes) -> None:
        """Hold ``key`` as the master key (the central server, unlocked from its key file)."""
        with self._lock:
            self._ring.unlock(key)
        self._unlocked()

    def wrap_master_for(self, password: str) -> bytes:
        """The master key wrapped under ``password`` (a new user's copy)."""
        params = crypto.KdfParams(n=self.scrypt_n)
        return crypto.wrap_with_password(password, self._master(), params=params).to_bytes()

    def unlock(self, wrapped: bytes, password: str) -> bool:
        """Unwrap ``wrapped`` with ``password``. When already unlocked, the password must still
        open the same master key (so one user cannot act under another's session)."""
        try:
            key = crypto.unwrap_with_password(password, crypto.WrappedKey.from_bytes(wrapped))
        except crypto.WrongPassword:
            return False
        return self.hold(key)

    def hold(self, key: bytes) -> bool:
        """Unlock with a master key a user's copy opened to; when already unlocked, ``key`` must
        be the same master key (so one user cannot act under another's session)."""
        with self._lock:
            if self._ring.is_unlocked:
                return crypto.constant_time_equal(key, self._ring.master_key)
            self._ring.unlock(key)
        self._unlocked()
        self.touch()
        return True

    def master_for_sealing(self) -> bytes:
        """The master key, for sealing a user's copy to their public key (unlocked only)."""
        return self._master()

    def load_index_key(self, s: Session) -> None:
        """Unwrap (or on first use create) the blind-index key stored under the master key.

        Raises :class:`~contigo.errors.UnlockDamaged` and locks the vault again when the stored
        key record does not open."""
        from contigo.auth.models import KeyEntry

        entry = s.get(KeyEntry, INDEX_KEY_NAME)
        if entry is None:
            key = crypto.new_key()
            s.add(
                KeyEntry(
                    name=INDEX_KEY_NAME,
                    blob=crypto.wrap_key(self._master(), key, INDEX_KEY_NAME.encode()),
                )
            )
        else:
            try:
                key = crypto.unwrap_key(self._master(), entry.blob, INDEX_KEY_NAME.encode())
            except crypto.KeyUnwrapError as exc:
                # All or nothing: a laptop whose lookups cannot work must not stay half-unlocked
                # (names readable, searches failing), so the master key is dropped again.
                log.error("unlock refused: the %s key record is damaged", INDEX_KEY_NAME)
                self.lock()
                raise UnlockDamaged() from exc
        self._index_key = key

    def build_name_index(self, s: Session) -> None:
        """Decrypt every person's names into the in-memory fuzzy index (unlock time)."""
        from contigo.persons.models import Person

        fuzzy = FuzzyNameIndex()
        rows = s.execute(
            select(
                Person.id, Person.data_key_wrapped, Person.given_names_enc, Person.family_names_enc
            ).where(Person.lifecycle == "active")
        )
        damaged: list[str] = []
        for pid, wrapped, given, family in rows:
            names = self._names_of(pid, wrapped, given, family)
            if names is None:
                damaged.append(pid)
            else:
                fuzzy.add(pid, names)
        if damaged:
            log.warning(
                "name index: %d records could not be decrypted: %s",
                len(damaged),
                ",".join(damaged[:20]),
            )
        self._fuzzy = fuzzy
        # The index and the unwrapped keys are some hundred thousand objects made at once and
        # kept until the lock: collect now and set everything alive aside from the cyclic
        # collector, or its next full pass (0.1–0.2 s at 20,000 persons) lands on the first
        # page after the unlock, the one a worker waits for. The lock hands them back.
        if self.settle_heap:
            gc.collect()
            gc.freeze()
            self._frozen = True

    def _names_of(self, pid: str, wrapped: bytes | None, given: bytes, family: bytes) -> str | None:
        """A person's names in one string, or ``None`` for a record that does not decrypt. One
        tampered or shredded record must not keep everyone out of the laptop: it is left out of
        name search, named (by id only) in the log, and still refuses to decrypt wherever it is
        opened."""
        try:
            key = self._unwrap_person(pid, wrapped)
            return (
                f"{self.decrypt_with(key, 'persons', pid, 'given_names', given)} "
                f"{self.decrypt_with(key, 'persons', pid, 'family_names', family)}"
            )
        except crypto.CryptoError:
            return None

    def refresh_names(self, rows: Iterable[Sequence[Any]], gone: Iterable[str] = ()) -> None:
        """Bring the name index up to date for persons another process changed: ``rows`` are
        ``(id, lifecycle, data_key_wrapped, given_names_enc, family_names_enc)``; an active
        person is (re)indexed, any other one, or one of ``gone`` (no longer stored), dropped."""
        fuzzy = self._fuzzy
        if fuzzy is None:
            return
        for pid, lifecycle, wrapped, given, family in rows:
            names = self._names_of(pid, wrapped, given, family) if lifecycle == "active" else None
            if names is None:
                fuzzy.remove(pid)
            else:
                fuzzy.add(pid, names)
        for pid in gone:
            fuzzy.remove(pid)

    def memo(self, name: str) -> dict[Any, Any]:
        """A dictionary that lives while the vault is unlocked and in memory only: what was
        decrypted once and cannot change (an encounter's assessment) is kept there so that a
        page need not decrypt it again; locking forgets it with the keys. A value with a
        ``forget(person_id)`` method is told when a person's key is shredded."""
        self._master()
        with self._lock:
            return self._memos.setdefault(name, {})

    # ── per-person keys and values ─────────────────────────────────────────
    def new_person_key(self, person_id: str) -> tuple[bytes, bytes]:
        """A fresh data key for a new person, and its copy wrapped by the master key."""
        key = crypto.new_key()
        wrapped = crypto.wrap_key(self._master(), key, f"person:{person_id}".encode())
        self._person_keys[person_id] = key
        return key, wrapped

    def _unwrap_person(self, person_id: str, wrapped: bytes | None) -> bytes:
        cached = self._person_keys.get(person_id)
        if cached is not None:
            return cached
        if wrapped is None:
            raise crypto.TamperedCiphertext("person key shredded")
        key = crypto.unwrap_key(self._master(), wrapped, f"person:{person_id}".encode())
        self._person_keys[person_id] = key
        return key

    def person_key(self, person: Any) -> bytes:
        """The data key of ``person`` (a :class:`~contigo.persons.models.Person`)."""
        return self._unwrap_person(person.id, person.data_key_wrapped)

    def encrypt_with(self, key: bytes, table: str, pk: str, column: str, value: Any) -> bytes:
        """Encrypt a JSON value bound to ``table:pk:column``."""
        aad = f"{table}:{pk}:{column}"
        return crypto.encrypt_value(key, KEY_ID, fastjson.dumps(value), aad)

    def decrypt_with(self, key: bytes, table: str, pk: str, column: str, blob: bytes) -> Any:
        """Decrypt a value; a moved or altered ciphertext raises, it is never returned as data."""
        aad = f"{table}:{pk}:{column}"
        return json.loads(crypto.decrypt_value(key, blob, aad))

    def _subkey(self, label: str) -> bytes:
        """The subkey ``label`` of the master key, derived once while unlocked (every synced
        op and change is sealed or opened with one)."""
        master = self._master()
        found = self._subkeys.get(label)
        if found is None or found[0] != master:  # a key ring unlocked with another key
            found = self._subkeys[label] = (master, crypto.derive_subkey(master, label))
        return found[1]

    def outbox_encrypter(self) -> Callable[[str, bytes], bytes]:
        """Encrypts outbox payloads under a key derived from the master key."""
        key = self._subkey("outbox")

        def encrypt(op_id: str, data: bytes) -> bytes:
            return crypto.encrypt_value(key, KEY_ID, data, f"sync_outbox:{op_id}:payload")

        return encrypt

    def outbox_decrypt(self, op_id: str, blob: bytes) -> bytes:
        key = self._subkey("outbox")
        return crypto.decrypt_value(key, blob, f"sync_outbox:{op_id}:payload")

    def outbox_decrypter(self) -> Callable[[str, bytes], bytes]:
        """:meth:`outbox_decrypt` with the key bound, for opening many payloads in a row."""
        decrypt = crypto.decrypter(self._subkey("outbox"))

        def open_(op_id: str, blob: bytes) -> bytes:
            return decrypt(blob, f"sync_outbox:{op_id}:payload")

        return open_

    def shred(self, person_id: str) -> None:
        """Forget a person's cached key (the caller deletes its wrapped copy), and whatever the
        memos hold of that person."""
        self._person_keys.pop(person_id, None)
        with self._lock:
            held = [value for memo in self._memos.values() for value in memo.values()]
        for value in held:
            forget = getattr(value, "forget", None)
            if callable(forget):
                forget(person_id)

    def seal(self, label: str, data: bytes) -> bytes:
        """Encrypt ``data`` under the master key's subkey ``label``, for a file of this
        installation's own (never a person's value alone: those use the person's key)."""
        return crypto.encrypt_value(self._subkey(label), KEY_ID, data, f"sealed:{label}")

    def unseal(self, label: str, blob: bytes) -> bytes:
        """Open what :meth:`seal` made with the same ``label``; altered data raises."""
        return crypto.decrypt_value(self._subkey(label), blob, f"sealed:{label}")

    # ── search ─────────────────────────────────────────────────────────────
    def bidx(self, field: str, value: str) -> str:
        """A blind index of ``value`` for ``field``."""
        if self._index_key is None:
            raise Locked()
        normalise = crypto.normalise_identifier if field == "doc" else crypto.normalise_name
        return crypto.blind_index(self._index_key, value, field=field, normalise=normalise)

    @staticmethod
    def name_tokens(names: str) -> list[str]:
        return crypto.name_tokens(names)

    def index_person(self, person_id: str, given: str, family: str) -> None:
        if self._fuzzy is not None:
            self._fuzzy.add(person_id, f"{given} {family}")

    def unindex_person(self, person_id: str) -> None:
        """Drop a person from the in-memory name index (purged, shredded or out of scope), so
        a later search cannot name it; a locked vault has no index and nothing to drop."""
        if self._fuzzy is not None:
            self._fuzzy.remove(person_id)

    def fuzzy_search(self, query: str, limit: int = 20, *, s: Session | None = None) -> list[str]:
        """The ids of the ``limit`` persons whose names come closest to ``query``. Given the
        caller's session ``s``, the index first catches up with what other processes sharing
        the database wrote (a central's workers: :attr:`name_source`)."""
        if self._fuzzy is None:
            raise Locked()
        if s is not None and self.name_source is not None:
            self.name_source(s)
        return [pid for pid, _score in self._fuzzy.search(query, limit=limit)]


def get_vault(app: Flask | None = None) -> Vault:
    """The vault of ``app`` (or the current app)."""
    vault: Vault = (app or current_app).extensions["contigo.vault"]
    return vault


def _idle_watch(app: Flask, vault: Vault) -> None:
    limit = float(app.config["IDLE_LOCK_SECONDS"])
    while True:
        time.sleep(max(1.0, min(15.0, limit / 4)))
        if vault.is_unlocked and vault.idle_for() > limit:
            vault.lock()


def init_app(app: Flask) -> None:
    """Give ``app`` a locked vault, and a watcher thread that locks it after idle time."""
    vault = Vault(scrypt_n=int(app.config["SCRYPT_N"]))
    app.extensions["contigo.vault"] = vault
    if app.config.get("IDLE_WATCH", True) and app.config["CONTIGO_MODE"] != "central":
        threading.Thread(target=_idle_watch, args=(app, vault), daemon=True).start()
