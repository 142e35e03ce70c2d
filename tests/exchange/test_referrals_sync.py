"""Referrals through the real engine, in process: two laptops of one site mark the same
referral offline with contradicting events; after they sync, every side holds both events and
derives the same state (arrival is a fact that "not arrived" does not undo), with the
contradiction marked and nothing lost. A facility saved on central reaches the laptops."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.referrals.directory import save_facility
from contigo.referrals.models import Facility
from tests.exchange.world import new_device, visible_state


def test_concurrent_marks_of_one_referral_converge_with_both_events_kept(
    central: Flask, laptop: Callable[[str], Flask]
) -> None:
    with central.app_context(), session_scope(central) as s:
        save_facility(
            s,
            {"code": "CO-HSR", "country": "CO", "name": "Hospital San Rafael",
             "kind": "hospital", "inpatient": True},
            actor_id=None,
        )  # fmt: skip
    a, b = new_device(central, laptop, "a"), new_device(central, laptop, "b")
    pid = a.register()
    a.sync()
    b.sync()
    with session_scope(b.app) as s:
        assert s.scalar(select(Facility.name).where(Facility.code == "CO-HSR"))
    rid = a.refer(pid, "HQ")
    assert rid is not None
    a.sync()
    b.sync()
    a.mark(rid, "not_arrived")  # offline, each laptop records what it was told
    b.mark(rid, "closed")  # the counter-referral came back: the child was seen
    for dev in (a, b, a, b):
        dev.sync()
    server = visible_state(central)
    derived = server["referrals"][rid][1]
    assert (derived.state, derived.arrived, derived.contested) == ("closed", True, True)
    assert sorted(state for _r, state, _h in server["referral_events"].values()) == [
        "closed",
        "not_arrived",
    ]
    assert visible_state(a.app) == visible_state(b.app) == server
