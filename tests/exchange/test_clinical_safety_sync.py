"""A supervisor's override of the discharge rule and the outcome recorded for an alert reach
central and the site's other laptop as ordinary synced changes (wire schema 3)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.episodes import followup, services, treatment
from contigo.episodes.models import CareEpisode, FollowUpOutcome
from contigo.errors import ValidationFailed
from contigo.exchange.handlers import build_registry
from contigo.exchange.laptop.client import run_sync
from contigo.persons.models import Person
from contigo.vault import Vault, get_vault
from sync.handlers import InvalidOp
from sync.protocol import Op, OpType
from sync.server.upcast import upcast_2_to_3
from tests.exchange.conftest import enrol_in_process
from tests.exchange.test_episode_sync import _admit
from tests.exchange.test_server_apply import _sup, record_visit, register_child


def _override(app: Flask, eid: str) -> str | None:
    with app.test_request_context(), session_scope(app) as s:
        episode = s.get(CareEpisode, eid)
        assert episode is not None and episode.status == "closed"
        person = s.get(Person, episode.person_id)
        assert person is not None
        return services.override_of(get_vault(app), person, episode)


def _outcomes(app: Flask, pid: str) -> list[tuple[str, date, str]]:
    with session_scope(app) as s:
        rows = s.scalars(select(FollowUpOutcome).where(FollowUpOutcome.person_id == pid))
        return [(r.kind, r.subject_on, r.outcome) for r in rows]


def test_override_and_follow_up_outcome_reach_central_and_the_other_laptop(
    central: Flask, laptop: Any
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    record_visit(a, pid, 8)
    eid = _admit(a, pid)
    with a.test_request_context(), session_scope(a) as s:
        actor = _sup(s)
        try:  # a cure eight days in is refused without a reason
            treatment.exit_episode(s, get_vault(a), actor, eid, outcome="cured",
                                   exit_on=date.today())  # fmt: skip
        except ValidationFailed as exc:
            assert "outcome" in exc.fields
        else:
            raise AssertionError("the cure was accepted")
    with a.test_request_context(), session_scope(a) as s:
        actor = _sup(s)
        treatment.exit_episode(s, get_vault(a), actor, eid, outcome="cured", exit_on=date.today(),
                               override_reason="Family crossing to Panama")  # fmt: skip
        followup.record_outcome(s, get_vault(a), actor, pid, actor.home_site_id, kind="alert",
                                subject_on=date.today() - timedelta(days=8), outcome="moved_on",
                                reason="Crossing the border")  # fmt: skip
    report = run_sync(a, ta)
    assert report.rejected == 0
    run_sync(b, tb)
    for app in (central, b):
        assert _override(app, eid) == "Family crossing to Panama"
        assert _outcomes(app, pid) == [("alert", date.today() - timedelta(days=8), "moved_on")]
        with session_scope(app) as s:
            sealed = s.scalar(select(FollowUpOutcome.reason_enc))
            assert sealed is not None and b"border" not in sealed


def _wire_op(kind: str, data: dict[str, Any], base: dict[str, Any] | None = None) -> Op:
    return Op(
        op_id="o1",
        type=OpType(kind),
        entity_type=kind.split(".")[0],
        entity_id="e1",
        person_id="p1",
        hlc="1767225600000-00000-d1",
        base=base or {},
        data=data,
    )


def test_a_schema_2_op_cannot_smuggle_an_override_or_an_outcome() -> None:
    close = _wire_op("care_episode.close", {"outcome": "cured", "exit_on": "2026-01-01"})
    assert upcast_2_to_3(close) == close
    with pytest.raises(InvalidOp):
        upcast_2_to_3(_wire_op("care_episode.close", {**close.data, "override": {"reason": "x"}}))
    with pytest.raises(InvalidOp):
        upcast_2_to_3(_wire_op("follow_up_outcome.record", {"kind": "alert"}))


def test_an_override_without_a_reason_is_rejected_by_the_handler() -> None:
    handler = build_registry(Vault()).for_op("care_episode.close")
    assert handler is not None
    data = {"outcome": "cured", "exit_on": "2026-01-01"}
    assert "exit_override" not in handler[0].field_writes("care_episode.close", data)
    writes = handler[0].field_writes(
        "care_episode.close", data | {"override": {"reason": " okay "}}
    )
    assert writes["exit_override"] == {"reason": "okay"}
    with pytest.raises(InvalidOp):
        handler[0].field_writes("care_episode.close", data | {"override": {"reason": ""}})
