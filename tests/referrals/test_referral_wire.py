"""Referrals on the wire: schema 4 added them, so a schema-3 client can neither push one
(upcasting refuses it) nor be sent one (downcasting leaves it out), and they reach the glue
through the declared hook only."""

from __future__ import annotations

import pytest

from contigo.exchange.extensions import extensions
from contigo.exchange.handlers import build_registry
from contigo.vault import Vault
from sync.handlers import InvalidOp
from sync.protocol import Op, OpType
from sync.schema import added_between
from sync.server.upcast import upcast_3_to_4

HLC = "1767225600000-00000-d1"


def _op(kind: str, entity_type: str) -> Op:
    return Op(
        op_id="o1",
        type=OpType(kind),
        entity_type=entity_type,
        entity_id="r1",
        person_id="p1",
        hlc=HLC,
        base={},
        data={"reason": "sam"},
    )


def test_a_schema_3_client_cannot_smuggle_a_referral_in() -> None:
    with pytest.raises(InvalidOp):
        upcast_3_to_4(_op("referral.create", "referral"))
    with pytest.raises(InvalidOp):
        upcast_3_to_4(_op("referral_event.record", "referral_event"))
    visit = _op("encounter.create", "encounter")
    assert upcast_3_to_4(visit) == visit


def test_referrals_are_declared_through_the_hook_at_schema_4() -> None:
    assert "referrals" in {e.name for e in extensions()}
    registry = build_registry(Vault())
    assert set(added_between(registry, 3, 4)) == {
        "referral",
        "referral.create",
        "referral_event",
        "referral_event.record",
        "facility",
    }
