"""Visitor access: a site that may receive a person it does not own, until an expiry
(SYNC.md §2.3, §2.10). The application decides *whether* to grant (a reason, a matching date of
birth, the user's role); this module only keeps the access table right.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from sync.models import PersonSiteAccess
from sync.server import integrity
from sync.server.apply import lock_counter


def grant_visitor(s: Session, person_id: str, site_id: str, expires_at: str) -> PersonSiteAccess:
    """Give ``site_id`` visitor access to ``person_id`` until ``expires_at`` (ISO UTC text, as
    :func:`sync.server.iso` writes it), in the caller's transaction.

    Keeps: an owner or previous-owner row is never turned into a visitor row (a site's stronger
    access is not weakened); a visitor row's expiry only moves later; every new or extended
    row takes a fresh ``granted_seq`` from the server counter, so grants are ordered with the
    change feed.
    """
    row = s.get(PersonSiteAccess, (person_id, site_id))
    tampered = (
        row is not None
        and integrity.has_key(s)
        and not integrity.access_row_ok(integrity.session_key(s), row)
    )
    if tampered:
        assert row is not None
        # The seq lock before any access row is written, as a push takes it: the rows' triggers
        # then lock the site's access generation after it, in every transaction alike.
        lock_counter(s)
        s.delete(row)  # a tampered row grants nothing: the visit is granted afresh
        s.flush()
        row = None
    if row is not None and row.role != "visitor":
        return row
    if row is not None and row.expires_at is not None and row.expires_at >= expires_at:
        return row
    counter = lock_counter(s)
    counter.value += 1
    if row is None:
        row = PersonSiteAccess(person_id=person_id, site_id=site_id, role="visitor")
        s.add(row)
    row.granted_seq = counter.value
    row.expires_at = expires_at
    s.flush()
    return row
