"""The recovery copy of a laptop's master key, and what a revoked laptop keeps (DESIGN.md §4).

At enrolment the central server hands the laptop its recovery public key (an X25519 key derived
from central's own master key, so central stores nothing new), and the laptop seals its master
key to it, bound to its device id. Only central's key file opens that copy.

When a laptop learns from sync that central revoked it, it destroys every user's copy of the
master key (password-wrapped and directory-sealed alike) and locks: no password opens it again.
What it keeps is still encrypted: the outbox (ops not yet on central) and the recovery copy, so an
administrator with central's key file can read the unsent ops (``contigo central
recover-outbox``) and no thief with the laptop and a password can.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contigo import crypto
from contigo.keystore import RECOVERY_ENTRY

log = logging.getLogger(__name__)
RECOVERY_LABEL = "recovery"


def central_private_key(central_master: bytes) -> X25519PrivateKey:
    """Central's recovery private key, derived from its master key (never stored)."""
    return X25519PrivateKey.from_private_bytes(crypto.derive_subkey(central_master, RECOVERY_LABEL))


def central_public_key(central_master: bytes) -> str:
    """Central's recovery public key, base64 (URL-safe) as the enrolment answer carries it."""
    raw = (
        central_private_key(central_master)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return base64.urlsafe_b64encode(raw).decode()


def _aad(device_id: str) -> bytes:
    return b"contigo/recovery/v1:" + device_id.encode()


def seal_recovery_copy(master: bytes, central_public: str, device_id: str) -> bytes:
    """The laptop's master key sealed to central's recovery key; raises
    :class:`crypto.MalformedKeyRecord` when the key is not a 32-byte X25519 key."""
    try:
        public = base64.urlsafe_b64decode(central_public.encode())
    except ValueError as exc:
        raise crypto.MalformedKeyRecord("not a recovery key") from exc
    if len(public) != 32:
        raise crypto.MalformedKeyRecord("not a recovery key")
    return crypto.seal_to_public_key(public, master, _aad(device_id))


def open_recovery_copy(central_master: bytes, blob: bytes, device_id: str) -> bytes:
    """The laptop's master key from its recovery copy; raises :class:`crypto.KeyUnwrapError`
    for another central's key, another device's copy or an altered one."""
    return crypto.open_sealed(central_private_key(central_master), blob, _aad(device_id))


def forget_user_keys(s: Session) -> int:
    """Destroy every user's copy of the master key on this laptop (revocation); returns how many
    there were. The recovery copy, the outbox and the other wrapped keys stay."""
    from contigo.auth.models import User

    result = s.execute(
        update(User)
        .where(User.wrapped_master_key.is_not(None))
        .values(wrapped_master_key=None, unlock_public_key=None)
        .execution_options(synchronize_session=False)
    )
    from contigo.keystore import mark_dirty

    mark_dirty(s)  # and from the keystore, when this transaction commits
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.warning("device revoked: %d user key copies destroyed", count)
    return count


@dataclass(frozen=True, slots=True)
class RecoveredOp:
    """One outbox op of a revoked laptop, decrypted with the recovery copy."""

    op_id: str
    op_type: str
    entity_type: str
    entity_id: str
    state: str
    created_at: str
    payload: Any

    def to_json(self) -> str:
        return json.dumps(
            {
                "op_id": self.op_id,
                "op_type": self.op_type,
                "entity_type": self.entity_type,
                "entity_id": self.entity_id,
                "state": self.state,
                "created_at": self.created_at,
                "payload": self.payload,
            },
            sort_keys=True,
            ensure_ascii=False,
        )


def recover_outbox(s: Session, master: bytes) -> Iterator[RecoveredOp]:
    """Every op in a laptop's outbox (``s`` is a session over the laptop's database), opened
    with the laptop's ``master`` key (from its recovery copy)."""
    from sync.models import OutboxOp

    outbox_key = crypto.derive_subkey(master, "outbox")
    for op in s.scalars(select(OutboxOp).order_by(OutboxOp.local_seq)):
        aad = f"sync_outbox:{op.op_id}:payload"
        data = crypto.decrypt_value(outbox_key, op.payload_enc, aad)
        yield RecoveredOp(
            op_id=op.op_id,
            op_type=op.op_type,
            entity_type=op.entity_type,
            entity_id=op.entity_id,
            state=op.state,
            created_at=op.created_at,
            payload=json.loads(data),
        )


@dataclass(frozen=True, slots=True)
class LaptopCopy:
    """A laptop's database (from its instance folder or a copy of it) opened through its
    recovery copy: the laptop's master key, device id, and an engine over the file."""

    master: bytes
    device_id: str
    engine: Engine


def open_laptop(laptop_instance: Path, central_master: bytes) -> LaptopCopy:
    """Open the database of the laptop whose instance folder is ``laptop_instance`` with the
    master key its recovery copy yields to ``central_master``. The caller disposes of the
    engine. Raises ``FileNotFoundError`` without a database, ``crypto.CryptoError`` when the
    copy does not open."""
    from contigo.auth.models import KeyEntry
    from contigo.db import is_plain_sqlite, make_engine
    from contigo.keystore import Keystore
    from sync.outbox import DEVICE_KEY, get_state

    path = laptop_instance / "contigo.sqlite3"
    if not path.is_file():
        raise FileNotFoundError(path)
    url = f"sqlite:///{path.as_posix()}"
    if is_plain_sqlite(path):  # a laptop of an older version: the copy is in the database
        engine = make_engine(url)
        with Session(engine) as s:
            entry, dev = s.get(KeyEntry, RECOVERY_ENTRY), get_state(s, DEVICE_KEY)
            blob = entry.blob if entry is not None else None
        engine.dispose()
    else:  # under SQLCipher: the copy is in the keystore, and the master key opens the file
        keystore = Keystore.load(laptop_instance)
        blob, dev = keystore.recovery, keystore.device_id
    if blob is None or dev is None:
        raise crypto.MalformedKeyRecord("this laptop holds no recovery copy")
    master = open_recovery_copy(central_master, blob, dev)
    key = crypto.derive_subkey(master, "sqlcipher")
    engine = make_engine(url) if is_plain_sqlite(path) else make_engine(url, cipher_key=lambda: key)
    return LaptopCopy(master=master, device_id=dev, engine=engine)


def recover_laptop_outbox(laptop_instance: Path, central_master: bytes) -> list[RecoveredOp]:
    """The outbox of the laptop whose instance folder (or a copy of it) is ``laptop_instance``,
    decrypted through its recovery copy; read only, the folder is left as it is."""
    laptop = open_laptop(laptop_instance, central_master)
    try:
        with Session(laptop.engine) as s:
            ops = list(recover_outbox(s, laptop.master))
            s.rollback()
        return ops
    finally:
        laptop.engine.dispose()
