"""Fewer round trips per pushed op and per pulled change, with the same results.

The server holds a batch's rows in the session while it applies the batch, and the device a
pull page's (:func:`sync.identity.rows_held`), so a repeated primary-key lookup is answered from
the identity map; the device reads a pulled entity's field versions and pending fields once.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session

from sync.client.apply import pending_fields, pending_touches
from sync.identity import rows_held
from sync.models import OutboxOp, SyncBase, SyncCounter
from sync.server.identity import ledger_rows


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://")
    SyncBase.metadata.create_all(eng)
    with Session(eng) as s, s.begin():
        s.add(SyncCounter(name="server_seq", value=7))
    yield eng
    eng.dispose()


def _selects(eng: Engine) -> list[str]:
    seen: list[str] = []

    def count(_c: object, _cur: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(eng, "before_cursor_execute", count)
    return seen


def _get_twice(s: Session) -> None:
    for _ in range(2):
        row = s.get(SyncCounter, "server_seq")
        assert row is not None and row.value == 7
        del row
        gc.collect()


def test_a_dropped_row_is_queried_again_outside_a_batch(engine: Engine) -> None:
    seen = _selects(engine)
    with Session(engine) as s:
        _get_twice(s)
    assert len(seen) == 2


def test_rows_held_answers_a_repeated_get_from_the_session(engine: Engine) -> None:
    seen = _selects(engine)
    with Session(engine) as s, rows_held(s) as kept:
        _get_twice(s)
        assert len(kept) == 1
    assert len(seen) == 1


def test_rows_held_stops_holding_after_the_block(engine: Engine) -> None:
    seen = _selects(engine)
    with Session(engine) as s:
        with rows_held(s):
            pass
        _get_twice(s)
    assert len(seen) == 2


def test_ledger_rows_returns_only_known_ops(engine: Engine) -> None:
    with Session(engine) as s:
        assert ledger_rows(s, ["o-1", "o-2"]) == {}


def _op(s: Session, n: int, base: dict[str, None], state: str = "pending") -> None:
    s.add(
        OutboxOp(
            op_id=f"o-{n}",
            op_type="person.patch",
            entity_type="person",
            entity_id="p-1",
            person_id="p-1",
            base=json.dumps(base),
            payload_enc=b"x",
            hlc=f"{n}",
            schema_version=1,
            created_at="2026-01-01T00:00:00+00:00",
            clock_suspect=False,
            state=state,
            attempts=0,
        )
    )


def test_pending_fields_unions_every_unaccepted_op(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        _op(s, 1, {"phone": None})
        _op(s, 2, {"address": None}, state="deferred")
        _op(s, 3, {"given_names": None}, state="rejected")
        s.flush()
        assert pending_fields(s, "person", "p-1") == {"phone", "address"}
        assert pending_touches(s, "person", "p-1", "address")
        assert not pending_touches(s, "person", "p-1", "given_names")
        assert pending_fields(s, "person", "p-2") == set()
