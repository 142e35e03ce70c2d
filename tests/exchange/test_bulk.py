"""Rows held and written together (sync.bulk): before any read or flush, once each, never
those of a rolled-back op."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.persons.models import Person, PersonIndex
from contigo.vault import get_vault
from sync import bulk
from sync.models import PersonSiteAccess, SyncChange
from tests.factories import CHILD


def _change_row(seq: int) -> dict[str, object]:
    return {
        "server_seq": seq,
        "person_id": "p1",
        "site_id": None,
        "entity_type": "encounter",
        "entity_id": f"e{seq}",
        "kind": "insert",
        "fields": None,
        "payload_enc": b"x",
        "origin_op_id": f"op{seq}",
        "origin_device_id": "d",
        "hlc": "h",
        "committed_at": "2026",
    }


def _seqs(s: Session) -> list[int]:
    return list(s.scalars(select(SyncChange.server_seq).order_by(SyncChange.server_seq)))


def test_held_rows_are_written_before_any_query(central: Flask) -> None:
    with session_scope(central) as s:
        start = _seqs(s)
        assert not bulk.pend(s, SyncChange, _change_row(2000))  # no block: the caller inserts
        bulk.begin(s)
        assert bulk.pend(s, SyncChange, _change_row(2001))
        bulk.pend(s, SyncChange, _change_row(2002))
        # A read sees the held rows, like the ORM's autoflush: one insert for both.
        assert _seqs(s) == [*start, 2001, 2002] and s.info[bulk.KEY] == {}
        bulk.pend(s, SyncChange, _change_row(2003))
        s.add(PersonSiteAccess(person_id="p9", site_id="A", role="owner", granted_seq=2003))
        s.flush()  # the ORM's own flush leaves held rows alone
        assert s.info[bulk.KEY] == {SyncChange: [_change_row(2003)]}
        assert _seqs(s) == [*start, 2001, 2002, 2003]
        bulk.pend(s, SyncChange, _change_row(2004))
        bulk.discard(s)  # a rolled-back op's rows are never written
        bulk.end(s)
        assert not bulk.active(s)
        assert _seqs(s) == [*start, 2001, 2002, 2003]
        s.rollback()


def test_a_block_writes_its_rows_when_it_ends_and_drops_them_when_it_raises(
    central: Flask,
) -> None:
    with session_scope(central) as s:
        start = _seqs(s)
        with pytest.raises(RuntimeError), bulk.rows(s):
            bulk.pend(s, SyncChange, _change_row(3001))
            raise RuntimeError("op failed")
        with bulk.rows(s):
            bulk.pend(s, SyncChange, _change_row(3002))
            with pytest.raises(RuntimeError):
                bulk.begin(s)  # one block per session
        assert _seqs(s) == [*start, 3002]
        s.rollback()


@pytest.mark.parametrize("parent", ["added to the session", "held"])
def test_a_held_row_is_written_after_what_it_refers_to(laptop: Any, parent: str) -> None:
    app = laptop("a")
    with app.test_request_context(), session_scope(app) as s:
        actor = s.scalars(select(User).where(User.username == "sup")).one()
        pid = persons.register(s, get_vault(app), actor, actor.home_site_id, dict(CHILD)).id
        person = s.get(Person, pid)
        assert person is not None
        row = {c.key: getattr(person, c.key) for c in Person.__table__.columns}
        row |= {"id": "p-new", "contigo_id": "ZZZZZZZZZ"}
        with bulk.rows(s):
            # Held first: a row of a table that refers to persons, to a person not yet written.
            bulk.pend(s, PersonIndex, {"person_id": "p-new", "field": "name", "bidx": "b"})
            if parent == "held":
                bulk.pend(s, Person, row)  # a parent table held after its child's row
            else:
                s.add(Person(**row))  # an object only added: flushed before held rows
        assert s.scalar(select(PersonIndex.bidx).where(PersonIndex.person_id == "p-new")) == "b"
        s.rollback()
