"""Bringing stored blind-index entries up to the current folding rules, once, at unlock.

Blind indexes are keyed HMACs: a migration cannot recompute them (it has no key). When the rule
that makes an entry changes (version 2: document numbers fold every spelling to one, phone
numbers are indexed), the entries written under the old rule would no longer meet lookups under
the new one. So the first unlock after an update decrypts each person's documents and phone in
memory and rewrites those entries, then records the version in ``sync_state``; later unlocks
only read that marker. A new instance is marked current when it is initialised.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from contigo.crypto import CryptoError
from contigo.names import normalise_phone
from contigo.persons.models import Person, PersonIndex
from contigo.vault import Vault
from sync.outbox import get_state, set_state

log = logging.getLogger(__name__)

INDEX_VERSION = "2"
VERSION_KEY = "person_index_version"
_LOCK_ID = 0x636F6E746967  # one refresh at a time across a central's workers (PostgreSQL)
_CHUNK = 500


REFRESHED = ("doc", "phone")
"""The entry fields whose rule changed in version 2 (names and dates of birth did not)."""


def refresh_index(s: Session, v: Vault) -> int:
    """Rewrite every person's document and phone entries unless the entries are at
    :data:`INDEX_VERSION`; returns how many persons were read. The vault must hold the index
    key.

    Keeps: idempotent, and in the caller's transaction (a crash leaves the old entries and the
    old marker, so the next unlock does it again). A record that no longer decrypts (shredded,
    damaged) is left without document and phone entries: it cannot be shown anyway.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    if get_state(s, VERSION_KEY) == INDEX_VERSION:
        return 0
    s.execute(delete(PersonIndex).where(PersonIndex.field.in_(REFRESHED)))
    done, rows = 0, []
    people = s.execute(
        select(Person.id, Person.data_key_wrapped, Person.documents_enc, Person.phone_enc)
    ).all()
    for pid, wrapped, documents_enc, phone_enc in people:
        if documents_enc is None and phone_enc is None:
            continue
        try:
            key = v.person_key(_Keyed(pid, wrapped))  # cached since the name index was built
            documents = _open(v, key, pid, "documents", documents_enc) or []
            phone = _open(v, key, pid, "phone", phone_enc)
        except CryptoError:
            continue
        keys = [("doc", v.bidx("doc", d["number"])) for d in documents]
        folded = normalise_phone(str(phone or ""))
        if folded:
            keys.append(("phone", v.bidx("phone", folded)))
        rows += [{"person_id": pid, "field": f, "bidx": b} for f, b in dict.fromkeys(keys)]
        done += 1
        if len(rows) >= _CHUNK:
            s.execute(insert(PersonIndex), rows)
            rows = []
    if rows:
        s.execute(insert(PersonIndex), rows)
    set_state(s, VERSION_KEY, INDEX_VERSION)
    log.info("blind indexes refreshed to version %s for %d persons", INDEX_VERSION, done)
    return done


class _Keyed(NamedTuple):
    id: str
    data_key_wrapped: bytes | None


def _open(v: Vault, key: bytes, pid: str, name: str, blob: bytes | None) -> Any:
    return v.decrypt_with(key, "persons", pid, name, blob) if blob is not None else None
