"""Checks against the child's own history (issue 11.5): the visit form shows the previous
values and the change, and an implausible change since the last visit asks for a re-measure
before anything is saved; recording oedema sets the oedema-history risk flag (11.7)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.encounters.models import Encounter
from contigo.persons import risk_flags
from contigo.persons.models import Person
from contigo.vault import get_vault
from tests.test_pages import Pages, today, visit

FIRST = {"weight_kg": "9.1", "lenhei_cm": "84.7", "measure": "l", "muac_mm": "135"}


def _ago(days: int) -> str:
    return (today() - timedelta(days=days)).isoformat()


def _count(app: Flask, pid: str) -> int:
    with session_scope(app) as s:
        query = select(func.count()).select_from(Encounter).where(Encounter.person_id == pid)
        return int(s.scalar(query) or 0)


def test_the_form_shows_the_previous_values_and_the_change(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **{**FIRST, "occurred_on": _ago(7)}).status_code == 302
    form = pages.text(pages.get(f"/persons/{pid}/encounters/new"))
    assert 'id="previous-visit"' in form
    assert 'data-previous-for="weight_kg" data-previous-value="9.1"' in form
    assert 'data-previous-for="lenhei_cm" data-previous-value="84.7"' in form
    assert "previous.js" in form
    # The confirmation step renders the typed change beside the previous value.
    step = pages.post(
        f"/persons/{pid}/encounters/new",
        {**FIRST, "weight_kg": "12.5", "occurred_on": today().isoformat(), "oedema_grade": "0",
         "referral": "none"},
    )  # fmt: skip
    assert '<span class="delta">+3.4</span>' in pages.text(step)


def test_a_shrinking_length_asks_for_a_remeasure_before_saving(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **{**FIRST, "occurred_on": _ago(7)}).status_code == 302
    second = {**FIRST, "lenhei_cm": "80.0", "weight_kg": "9.2"}
    asked = visit(pages, pid, **second)
    html = pages.text(asked)
    assert asked.status_code == 200 and 'id="confirm-box"' in html
    assert 'data-warning="history_length_shrank"' in html
    assert _count(app, pid) == 1  # nothing saved yet
    assert visit(pages, pid, confirm="checked", **second).status_code == 302
    assert _count(app, pid) == 2


def test_an_extreme_weight_change_for_the_interval_asks_for_a_reweigh(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **{**FIRST, "occurred_on": _ago(7)}).status_code == 302
    asked = visit(pages, pid, **{**FIRST, "weight_kg": "12.5"})
    assert 'data-warning="history_weight_jump"' in pages.text(asked)
    assert _count(app, pid) == 1
    # A plausible week: no question asked.
    assert visit(pages, pid, **{**FIRST, "weight_kg": "9.3"}).status_code == 302


def test_a_second_visit_the_same_day_asks_first_but_a_correction_does_not(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **FIRST).status_code == 302
    asked = visit(pages, pid, **FIRST)
    assert 'data-warning="history_same_day"' in pages.text(asked)
    assert _count(app, pid) == 1
    with session_scope(app) as s:
        old = s.scalar(select(Encounter.id).where(Encounter.person_id == pid))
    assert (
        visit(pages, pid, supersedes_id=str(old), **{**FIRST, "muac_mm": "136"}).status_code == 302
    )


def test_the_preview_warns_too(pages: Pages, register: Callable[..., str]) -> None:
    pid = register()
    assert visit(pages, pid, **{**FIRST, "occurred_on": _ago(7)}).status_code == 302
    data = {**FIRST, "lenhei_cm": "80.0", "occurred_on": today().isoformat(),
            "oedema_grade": "0", "referral": "none"}  # fmt: skip
    answer = pages.post(f"/persons/{pid}/encounters/preview", data).get_json()
    assert "history_length_shrank" in answer["assessment"]["warnings"]


def test_recording_oedema_sets_the_oedema_history_flag(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    name = "risk_flags.oedema_history"

    def flag() -> object:
        with app.test_request_context(), session_scope(app) as s:
            person = s.get(Person, pid)
            assert person is not None
            return risk_flags.read(get_vault(app), person)[name]

    assert visit(pages, pid, **{**FIRST, "occurred_on": _ago(14)}).status_code == 302
    assert flag() is None
    oedema = {**FIRST, "oedema_grade": "2", "occurred_on": _ago(7), "confirm": "checked"}
    assert visit(pages, pid, **oedema).status_code == 302
    assert flag() == "current"
    assert visit(pages, pid, **FIRST, confirm="checked").status_code == 302
    assert flag() == "past"
