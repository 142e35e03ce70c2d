"""Upcasters, downcast and the schema gates, as pure functions (SYNC.md §2.12)."""

from __future__ import annotations

from typing import Any

import pytest

from contigo.exchange.handlers import build_registry
from contigo.vault import Vault
from sync.cursor import Cursor, encode_cursor
from sync.handlers import HandlerRegistry, InvalidOp
from sync.protocol import SCHEMA_VERSION, ErrorCode, Op, OpType, ProtocolError, parse_hello
from sync.schema import added_between, downcast_change
from sync.server.upcast import (
    UPCASTERS,
    negotiate,
    oldest_upcastable,
    refuse_below,
    upcast,
    upcast_1_to_2,
)

KEY = b"k" * 32
HLC = "1767225600000-00000-d1"


@pytest.fixture(scope="module")
def registry() -> HandlerRegistry:
    return build_registry(Vault())


def _op(data: dict[str, Any], base: dict[str, Any] | None = None, kind: str = "person.patch") -> Op:
    return Op(
        op_id="o1",
        type=OpType(kind),
        entity_type=kind.split(".")[0],
        entity_id="p1",
        person_id="p1",
        hlc=HLC,
        base=base or {k: None for k in data},
        data=data,
    )


def test_every_step_from_the_oldest_accepted_schema_has_an_upcaster() -> None:
    assert set(UPCASTERS) == set(range(oldest_upcastable(), SCHEMA_VERSION))
    assert oldest_upcastable() == 1


def test_upcaster_1_to_2_keeps_a_schema_1_patch_and_create_as_they_are() -> None:
    patch = _op({"phone": "+57 300"})
    assert upcast_1_to_2(patch) == patch
    create = _op({"given_names": "Ana", "kind": "child"}, {}, "person.create")
    assert upcast_1_to_2(create).data == create.data


@pytest.mark.parametrize("where", ["data", "base"])
def test_upcaster_1_to_2_refuses_a_risk_flag_in_a_schema_1_op(where: str) -> None:
    op = (
        _op({"risk_flags.hiv_exposed": True})
        if where == "data"
        else _op({"phone": "1"}, {"phone": None, "risk_flags.disability": None})
    )
    with pytest.raises(InvalidOp) as info:
        upcast_1_to_2(op)
    assert any(k.startswith("risk_flags.") for k in info.value.errors)


def test_upcast_runs_the_chain_and_leaves_current_ops_alone(registry: HandlerRegistry) -> None:
    op = _op({"phone": "+57 300"})
    assert upcast(registry, op, SCHEMA_VERSION) is op
    calls: list[int] = []

    def step(version: int) -> Any:
        return lambda o: calls.append(version) or o

    chain = {1: step(1), 2: step(2)}
    upcast(registry, op, 1, chain, target=3)
    assert calls == [1, 2]


def test_upcast_without_a_step_or_with_a_newer_field_rejects(registry: HandlerRegistry) -> None:
    with pytest.raises(InvalidOp) as info:
        upcast(registry, _op({"phone": "1"}), 1, {})
    assert info.value.errors == {"schema_version": ["no upcaster from 1"]}
    with pytest.raises(InvalidOp) as info:
        upcast(registry, _op({"phone": "1"}), 0)  # no op type existed before schema 1
    assert "type" in info.value.errors
    with pytest.raises(InvalidOp) as info:
        upcast(registry, _op({"risk_flags.oedema_history": "past"}), 1)
    assert info.value.errors == {"risk_flags.oedema_history": ["not part of wire schema 1"]}
    assert upcast(registry, _op({"risk_flags.oedema_history": "past"}), 2).data


def test_refuse_below_is_the_stable_upgrade_code() -> None:
    refuse_below(1, 1)
    with pytest.raises(ProtocolError) as info:
        refuse_below(2, 1)
    assert info.value.code is ErrorCode.UPGRADE_REQUIRED and info.value.http_status == 426


def _hello(schema: int, cursor: str | None) -> Any:
    return parse_hello(
        {
            "device_id": "d1",
            "app_version": "1",
            "protocol": 1,
            "schema_version": schema,
            "device_time_ms": 1,
            "hlc": HLC,
            "pull_cursor": cursor,
        }
    )


def test_hello_asks_for_an_upgrade_below_either_minimum(registry: HandlerRegistry) -> None:
    ok = negotiate(registry, _hello(1, None), KEY, min_push_schema=1, min_pull_schema=1)
    assert ok["control"] is None and ok["backfill"] == []
    old = negotiate(registry, _hello(1, None), KEY, min_push_schema=2, min_pull_schema=1)
    assert old["control"] == "upgrade_required" and old["min_push_schema"] == 2
    pull = negotiate(registry, _hello(1, None), KEY, min_push_schema=1, min_pull_schema=2)
    assert pull["control"] == "upgrade_required"


def test_hello_returns_backfill_when_the_cursor_was_served_older(
    registry: HandlerRegistry,
) -> None:
    old_cursor = encode_cursor(Cursor(seq=9, scope="s", schema=1), KEY)
    reply = negotiate(registry, _hello(2, old_cursor), KEY, min_push_schema=1, min_pull_schema=1)
    assert reply["backfill"] == added_between(registry, 1, 2) != []
    assert "user" in reply["backfill"] and "person.risk_flags.hiv_exposed" in reply["backfill"]
    same = negotiate(registry, _hello(1, old_cursor), KEY, min_push_schema=1, min_pull_schema=1)
    assert same["backfill"] == []
    forged = negotiate(registry, _hello(2, "x.y"), KEY, min_push_schema=1, min_pull_schema=1)
    assert forged["backfill"] == []


def _fields_change(fields: dict[str, Any], kind: str = "fields") -> dict[str, Any]:
    return {
        "seq": 5,
        "kind": kind,
        "entity_type": "person",
        "entity_id": "p1",
        "data": {"body": {"kind": "child", **{k: v["value"] for k, v in fields.items()}}},
        "fields": fields,
    }


def test_downcast_omits_newer_fields_and_changes_with_nothing_left(
    registry: HandlerRegistry,
) -> None:
    flag = {"value": True, "version_seq": 5, "last_op_id": "o1"}
    phone = {"value": "1", "version_seq": 5, "last_op_id": "o1"}
    mixed = _fields_change({"risk_flags.hiv_exposed": flag, "phone": phone}, "insert")
    down = downcast_change(registry, mixed, 1)
    assert down is not None and set(down["fields"]) == {"phone"}
    assert down["data"]["body"] == {"kind": "child", "phone": "1"}
    assert downcast_change(registry, mixed, 2) == mixed
    assert downcast_change(registry, _fields_change({"risk_flags.hiv_exposed": flag}), 1) is None
    unknown = mixed | {"entity_type": "referral"}
    assert downcast_change(registry, unknown, 2) is None
