"""Bringing stored blind-index entries up to the current folding rules, once, at unlock.

Blind indexes are keyed HMACs: a migration cannot recompute them (it has no key). When the rule
that makes an entry changes (version 2: document numbers fold every spelling to one, phone
numbers are indexed), the entries written under the old rule would no longer meet lookups under
the new one. So the first unlock after an update decrypts each person in memory and rewrites
its entries, then records the version in ``sync_state``; later unlocks only read that marker.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from contigo.crypto import CryptoError
from contigo.persons.models import Person, PersonIndex
from contigo.persons.services import decrypt, index_keys, index_view
from contigo.vault import Vault
from sync.outbox import get_state, set_state

log = logging.getLogger(__name__)

INDEX_VERSION = "2"
VERSION_KEY = "person_index_version"
_LOCK_ID = 0x636F6E746967  # one refresh at a time across a central's workers (PostgreSQL)
_CHUNK = 500


def refresh_index(s: Session, v: Vault) -> int:
    """Rewrite every person's blind-index entries unless they are at :data:`INDEX_VERSION`;
    returns how many persons were rewritten. The vault must hold the index key.

    Keeps: idempotent, and in the caller's transaction (a crash leaves the old entries and the
    old marker, so the next unlock does it again). A record that no longer decrypts (shredded,
    damaged) keeps the entries it had.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    if get_state(s, VERSION_KEY) == INDEX_VERSION:
        return 0
    ids = list(s.scalars(select(Person.id).order_by(Person.id)))
    done = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for person in s.scalars(select(Person).where(Person.id.in_(chunk))):
            try:
                view = decrypt(v, person)
            except CryptoError:
                continue
            finally:
                s.expunge(person)  # a central holds many: keep none in the session
            s.execute(delete(PersonIndex).where(PersonIndex.person_id == person.id))
            rows = [
                {"person_id": person.id, "field": f, "bidx": b}
                for f, b in index_keys(v, index_view(view))
            ]
            s.execute(insert(PersonIndex), rows)
            done += 1
    set_state(s, VERSION_KEY, INDEX_VERSION)
    log.info("blind indexes refreshed to version %s for %d persons", INDEX_VERSION, done)
    return done
