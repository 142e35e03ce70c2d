"""The visitor rows of the access table (sync.server.visitors), over a real migrated SQLite
file: a stronger access is never weakened and a visitor's expiry only moves later."""

from __future__ import annotations

from flask import Flask

from contigo.db import session_scope
from sync.models import PersonSiteAccess, SyncCounter
from sync.server.visitors import grant_visitor

LATER = "2027-01-02T00:00:00.000000+00:00"
EARLIER = "2027-01-01T00:00:00.000000+00:00"


def test_a_visitor_row_takes_a_fresh_seq_and_only_extends(central: Flask) -> None:
    with session_scope(central) as s:
        first = grant_visitor(s, "p1", "site-c", EARLIER)
        assert (first.role, first.expires_at) == ("visitor", EARLIER)
        seq = first.granted_seq
        assert grant_visitor(s, "p1", "site-c", LATER).granted_seq > seq
    with session_scope(central) as s:
        again = grant_visitor(s, "p1", "site-c", EARLIER)
        assert again.expires_at == LATER
        counter = s.get(SyncCounter, "server_seq")
        assert counter is not None and counter.value == again.granted_seq


def test_an_owner_is_never_turned_into_a_visitor(central: Flask) -> None:
    with session_scope(central) as s:
        s.add(PersonSiteAccess(person_id="p2", site_id="site-a", role="owner", granted_seq=1))
        s.flush()
        row = grant_visitor(s, "p2", "site-a", LATER)
        assert (row.role, row.expires_at) == ("owner", None)
