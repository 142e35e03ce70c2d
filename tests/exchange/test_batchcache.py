"""The push batch cache answers as the database does, and stops answering once it may not."""

from __future__ import annotations

from flask import Flask

from contigo.db import session_scope
from sync.models import PersonSiteAccess
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


def test_a_person_create_records_its_owner_row(central: Flask) -> None:
    with session_scope(central) as s:
        create = _op(OpType.PERSON_CREATE, "p3", "p3")
        cache = batchcache.begin(s, [create, _op(OpType.ENCOUNTER_CREATE, "e3", "p3")])
        assert cache.access_of("p3") == ()
        cache.granted("p3", ("A", "owner", None))
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
