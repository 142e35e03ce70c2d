"""What a laptop knows to check cards: central's card authority key, its own device certificate
and the revoked devices, as central last told it (enrolment, then every ``hello``).

Kept in the laptop's sync state (inside the SQLCipher file): none of it is personal, and only
an unlocked laptop reads or writes it. The device's signing key is the one that signs its sync
requests (the laptop client stores it at enrolment, encrypted under a subkey of the master key).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from contigo.auth.models import KeyEntry
from contigo.vault import Vault
from sync.outbox import get_state, set_state

AUTHORITY_KEY = "card_authority"
CERTIFICATE_KEY = "card_certificate"
REVOKED_KEY = "card_revoked"
DEVICE_KEY_ENTRY = "device_signing_key"
"""The key entry the laptop client writes at enrolment (``contigo.exchange.laptop.client``)."""


class NotCertified(Exception):
    """This laptop cannot issue cards: not enrolled, or central has not certified it yet."""


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        return None


def _seconds(iso: Any) -> int | None:
    try:
        return int(datetime.fromisoformat(str(iso)).timestamp())
    except ValueError:
        return None


def note_trust(s: Session, trust: Any) -> None:
    """Store what an enrolment or ``hello`` answer's ``card_trust`` says (ignored when absent:
    a central of an older version). The revocation list replaces the one held."""
    if not isinstance(trust, dict):
        return
    authority = _b64(trust.get("authority"))
    if authority is not None and len(authority) == 32:
        set_state(s, AUTHORITY_KEY, trust["authority"])
    if _b64(trust.get("certificate")) is not None:
        set_state(s, CERTIFICATE_KEY, trust["certificate"])
    revoked = trust.get("revoked")
    if isinstance(revoked, list):
        found = {}
        for item in revoked:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                when = _seconds(item[1])
                if when is not None:
                    found[item[0][:32]] = when
        set_state(s, REVOKED_KEY, json.dumps(found, sort_keys=True))


def note_hello(s: Session, body: dict[str, Any]) -> None:
    """The ``hello`` reader: the answer's ``card_trust``."""
    note_trust(s, body.get("card_trust"))


def authority(s: Session) -> bytes | None:
    """Central's card authority public key, when central has told this laptop."""
    return _b64(get_state(s, AUTHORITY_KEY))


def certificate(s: Session) -> bytes | None:
    """This laptop's own device certificate."""
    return _b64(get_state(s, CERTIFICATE_KEY))


def revocations(s: Session) -> dict[str, int]:
    """Revoked device ids and when (seconds since the epoch)."""
    raw = get_state(s, REVOKED_KEY)
    found = json.loads(raw) if raw else {}
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


def device_key(s: Session, vault: Vault) -> Ed25519PrivateKey:
    """This laptop's signing key (the vault must be unlocked)."""
    entry = s.get(KeyEntry, DEVICE_KEY_ENTRY)
    if entry is None:
        raise NotCertified("not enrolled")
    return Ed25519PrivateKey.from_private_bytes(vault.outbox_decrypt(DEVICE_KEY_ENTRY, entry.blob))
