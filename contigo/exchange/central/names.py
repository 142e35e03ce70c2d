"""Each central worker's in-memory name index, kept current with what the other workers wrote.

gunicorn runs central in several processes, and each builds its own fuzzy name index when it
starts (:meth:`~contigo.vault.Vault.build_name_index`), then adds only the persons it writes
itself. A child pushed to one worker and registered again on a laptop whose push reaches another
would be missed by name. So before the index answers a search given a session, it reads the
person changes committed since it last looked: the pull log (``sync_changes``) numbers every
change in commit order (seqs are handed out under the ``server_seq`` lock, so the committed ones
are always a prefix), and each changed person is decrypted and (re)indexed, or dropped.

The watermark moves only when the reading transaction commits: a push batch that reads its own
uncommitted changes and then rolls back gives its seqs back to the next batch, which must still
be read. Within one transaction the index catches up once: a push batch holds the ``server_seq``
lock, so no other worker commits a change in the meantime (and a page view that misses one
written a millisecond ago is no different from one that ran a millisecond earlier).
"""

from __future__ import annotations

import threading

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from contigo.persons.models import Person
from contigo.vault import Vault
from sync.models import SyncChange

_CURRENT = "contigo.names_current"
"""``Session.info`` key: the seq this transaction's catch-up read up to."""


class NameFeed:
    """Catches one worker's name index up with the pull log (installed as the vault's
    :attr:`~contigo.vault.Vault.name_source`)."""

    def __init__(self, vault: Vault, seen: int) -> None:
        self.vault = vault
        self.seen = seen
        self._lock = threading.Lock()

    @classmethod
    def start(cls, s: Session, vault: Vault) -> NameFeed:
        """A feed for an index about to be built in ``s``'s transaction: what that build reads
        includes every change up to the current last seq (a change read twice is harmless)."""
        return cls(vault, _last_seq(s, 0) or 0)

    def __call__(self, s: Session) -> None:
        if _CURRENT in s.info:
            return
        run = s.connection().execute
        seen = self.seen
        top = _last_seq(s, seen)
        s.info[_CURRENT] = seen if top is None else top
        event.listen(s, "after_commit", self._committed, once=True)
        event.listen(s, "after_rollback", _forget, once=True)
        if top is None:
            return
        changed = set(
            run(
                select(SyncChange.entity_id).where(
                    SyncChange.server_seq > seen,
                    SyncChange.server_seq <= top,
                    SyncChange.entity_type == "person",
                )
            ).scalars()
        )
        if not changed:
            return
        rows = run(
            select(
                Person.id,
                Person.lifecycle,
                Person.data_key_wrapped,
                Person.given_names_enc,
                Person.family_names_enc,
            ).where(Person.id.in_(sorted(changed)))
        ).all()
        self.vault.refresh_names(rows, gone=changed - {row[0] for row in rows})

    def _committed(self, s: Session) -> None:
        read = s.info.pop(_CURRENT, None)
        if read is not None:
            with self._lock:
                self.seen = max(self.seen, read)


def _forget(s: Session) -> None:
    s.info.pop(_CURRENT, None)


def _last_seq(s: Session, after: int) -> int | None:
    """The last seq in the pull log, if it is past ``after``."""
    top = s.connection().execute(select(func.max(SyncChange.server_seq))).scalar()
    return int(top) if top is not None and top > after else None
