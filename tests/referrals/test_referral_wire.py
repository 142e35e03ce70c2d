"""Referrals on the wire: schema 4 added them, so a schema-3 client can neither push one
(upcasting refuses it) nor be sent one (downcasting leaves it out), and they reach the glue
through the declared hook only."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from contigo.auth.models import User
from contigo.auth.views import unlock_session
from contigo.db import session_scope
from contigo.exchange.extensions import extensions
from contigo.exchange.handlers import build_registry
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.referrals import services as referrals
from contigo.referrals.models import Referral, ReferralEvent
from contigo.sites.services import add_site
from contigo.vault import Vault, get_vault
from sync.client import scope as client_scope
from sync.handlers import InvalidOp
from sync.protocol import Op, OpType
from sync.schema import added_between
from sync.server.upcast import upcast_3_to_4
from tests.conftest import PASSWORD
from tests.factories import CHILD

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


def test_a_person_leaving_the_laptop_takes_their_referrals_along(app: Flask) -> None:
    """The purge of a person out of scope (a visit that ended) removes their referrals and
    events first (their rows point at the person), then the person and their data key."""
    with app.test_request_context(), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
    with app.test_request_context(), session_scope(app) as s:
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        v = get_vault(app)
        unit = add_site(s, code="EC-TUL", name="Tulcán", country="EC")
        pid = persons.register(s, v, actor, actor.home_site_id, dict(CHILD)).id
        form = {"to": f"site:{unit.id}", "reason": "moving", "urgency": "routine"}
        rid = referrals.create(s, v, actor, pid, actor.home_site_id, form).id
        referrals.record_event(s, v, actor, rid, "cancelled", site_id=actor.home_site_id)
    with app.test_request_context(), session_scope(app) as s:
        purge = client_scope.hooks(build_registry(get_vault(app))).purge_person
        assert purge is not None
        purge(s, pid)
    with session_scope(app) as s:
        assert s.get(Person, pid) is None
        assert s.scalar(select(func.count()).select_from(Referral)) == 0
        assert s.scalar(select(func.count()).select_from(ReferralEvent)) == 0
