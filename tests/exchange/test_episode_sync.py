"""Care episodes travel with the person: admission, the visit schedule a visit moves, and exit."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask

from contigo.db import session_scope
from contigo.episodes import services as episodes
from contigo.episodes.models import CareEpisode
from contigo.exchange.laptop.client import run_sync
from contigo.vault import get_vault
from tests.exchange.conftest import enrol_in_process
from tests.exchange.test_server_apply import _sup, record_visit, register_child


def _admit(app: Flask, pid: str) -> str:
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        episode = episodes.admit(
            s,
            get_vault(app),
            actor,
            pid,
            actor.home_site_id,
            programme="sam_otp",
            admitted_on=date.today() - timedelta(days=8),
            criteria=["muac_lt_115"],
        )
        return episode.id


def _next_visit(app: Flask, episode_id: str) -> Any:
    with session_scope(app) as s:
        episode = s.get(CareEpisode, episode_id)
        return None if episode is None else (episode.status, episode.next_visit_on)


def test_a_visit_that_moves_the_schedule_reaches_the_other_laptop(
    central: Flask, laptop: Any
) -> None:
    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    eid = _admit(a, pid)
    run_sync(a, ta)
    run_sync(b, tb)
    assert _next_visit(b, eid) == _next_visit(a, eid)
    record_visit(a, pid, 1)  # the weekly visit: next visit moves a week on
    moved = _next_visit(a, eid)
    assert moved[1] == date.today() - timedelta(days=1) + timedelta(days=7)
    run_sync(a, ta)
    run_sync(b, tb)
    assert _next_visit(b, eid) == moved == _next_visit(central, eid)
