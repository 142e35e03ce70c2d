"""The push batch cache answers as the database does, and stops answering once it may not."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.db import session_scope
from sync.models import PersonSiteAccess, SyncChange
from sync.protocol import Op, OpType
from sync.server import batchcache


def _op(op_type: OpType, entity_id: str, person_id: str | None) -> Op:
    entity = op_type.value.split(".")[0]
    return Op(f"op-{entity_id}-{op_type.value}", op_type, entity, entity_id, person_id, "", {}, {})


def test_access_rows_are_read_once_and_match_the_table(central: Flask) -> None:
    with session_scope(central) as s:
        s.add(PersonSiteAccess(person_id="p1", site_id="A", role="owner", granted_seq=1))
        s.add(
            PersonSiteAccess(
                person_id="p1", site_id="B", role="visitor", granted_seq=2, expires_at="2030"
            )
        )
        s.flush()
        ops = [_op(OpType.ENCOUNTER_CREATE, "e1", "p1"), _op(OpType.ENCOUNTER_CREATE, "e2", "p2")]
        cache = batchcache.begin(s, ops)
        assert sorted(cache.access_of("p1")) == [("A", "owner", None), ("B", "visitor", "2030")]
        assert cache.access_of("p2") == ()
        assert cache.entity_ids == {"e1", "e2"} and cache.person_ids == {"p1", "p2"}
        batchcache.end(s)
        assert batchcache.current(s) is None


def test_a_person_create_rereads_its_access(central: Flask) -> None:
    with session_scope(central) as s:
        create = _op(OpType.PERSON_CREATE, "p3", "p3")
        cache = batchcache.begin(s, [create, _op(OpType.ENCOUNTER_CREATE, "e3", "p3")])
        assert cache.access_of("p3") == ()
        s.add(PersonSiteAccess(person_id="p3", site_id="A", role="owner", granted_seq=3))
        s.flush()
        batchcache.after_op(s, create, rolled_back=False)
        assert batchcache.current(s) is cache
        assert cache.access_of("p3") == (("A", "owner", None),)
        batchcache.end(s)


def test_an_unsafe_or_rolled_back_op_drops_the_cache(central: Flask) -> None:
    with session_scope(central) as s:
        for op, rolled_back in [
            (_op(OpType.TRANSFER_DECIDE, "t1", "p1"), False),
            (_op(OpType.PERSON_MERGE, "p1", "p1"), False),
            (_op(OpType.CONFLICT_RESOLVE, "c1", "p1"), False),
            (_op(OpType.ENCOUNTER_CREATE, "e1", "p1"), True),
        ]:
            cache = batchcache.begin(s, [op])
            cache.memo("x", dict)
            batchcache.after_op(s, op, rolled_back=rolled_back)
            assert batchcache.current(s) is None, op.type
        safe = _op(OpType.ENCOUNTER_CREATE, "e1", "p1")
        cache = batchcache.begin(s, [safe])
        batchcache.after_op(s, safe, rolled_back=False)
        assert batchcache.current(s) is cache
        batchcache.end(s)


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


def test_pending_rows_wait_for_one_insert_and_a_rolled_back_ops_are_never_written(
    central: Flask,
) -> None:
    with session_scope(central) as s:
        start = _seqs(s)
        ok, bad = _op(OpType.ENCOUNTER_CREATE, "e1", "p1"), _op(OpType.ENCOUNTER_CREATE, "e2", "p1")
        cache = batchcache.begin(s, [ok, bad, _op(OpType.TRANSFER_DECIDE, "t", "p1")])
        batchcache.before_op(s, ok)
        cache.pend(SyncChange, _change_row(1001))
        batchcache.after_op(s, ok, rolled_back=False)
        assert cache.pending == {SyncChange: [_change_row(1001)]}  # not yet written
        batchcache.before_op(s, bad)
        cache.pend(SyncChange, _change_row(1002))
        batchcache.after_op(s, bad, rolled_back=True)
        assert batchcache.current(s) is None and cache.pending == {}
        assert _seqs(s) == start  # a rolled-back op's rows, and those with them, never written

        cache = batchcache.begin(s, [ok])
        cache.pend(SyncChange, _change_row(1003))
        batchcache.before_op(s, _op(OpType.PERSON_MERGE, "p1", "p1"))
        assert batchcache.current(s) is None  # an unsafe op runs on the database alone
        assert _seqs(s) == [*start, 1003]
        s.rollback()


def test_pending_rows_are_written_before_any_query_or_flush(central: Flask) -> None:
    op = _op(OpType.ENCOUNTER_CREATE, "e1", "p1")
    with session_scope(central) as s:
        start = _seqs(s)
        cache = batchcache.begin(s, [op])
        cache.pend(SyncChange, _change_row(2001))
        cache.pend(SyncChange, _change_row(2002))
        # A read sees the batch's rows, like the ORM's autoflush: one insert for both.
        assert _seqs(s) == [*start, 2001, 2002] and cache.pending == {}
        cache.pend(SyncChange, _change_row(2003))
        s.add(PersonSiteAccess(person_id="p9", site_id="A", role="owner", granted_seq=2003))
        s.flush()  # a flushed object never points at a row still pending
        assert cache.pending == {}
        batchcache.end(s)
        cache.pend(SyncChange, _change_row(2004))  # a dropped cache writes nothing more
        assert _seqs(s) == [*start, 2001, 2002, 2003]
        s.rollback()
