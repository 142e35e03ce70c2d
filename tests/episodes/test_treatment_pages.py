"""Care episodes follow the protocol (issue 11.4): a cure is accepted only when the discharge
criteria are met on the recorded visits and the minimum stay is over; anything else is a
supervisor's override with a reason, recorded, audited, synced and shown on the treatment card."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.auth.services import add_user
from contigo.db import session_scope
from contigo.episodes.models import CareEpisode
from contigo.vault import get_vault
from sync.models import OutboxOp
from tests.conftest import PASSWORD
from tests.test_pages import SAM_VISIT, Pages, today, visit


def _admit(pages: Pages, pid: str, days_ago: int) -> str:
    on = (today() - timedelta(days=days_ago)).isoformat()
    admitted = pages.post(
        f"/persons/{pid}/episodes/new",
        {"programme": "sam_otp", "criteria": "whz_lt_-3", "admitted_on": on},
    )
    assert admitted.status_code == 302
    return admitted.headers["Location"]


def _ago(days: int) -> str:
    return (today() - timedelta(days=days)).isoformat()


def test_cure_on_the_admission_day_is_refused_then_recorded_as_an_override(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **SAM_VISIT).status_code == 302
    episode_url = _admit(pages, pid, 0)
    exit_url = f"{episode_url}/exit"
    form = pages.text(pages.get(exit_url))
    assert 'id="override_reason"' in form

    refused = pages.post(exit_url, {"outcome": "cured", "exit_on": today().isoformat()})
    html = pages.text(refused)
    assert refused.status_code == 422
    assert 'id="outcome-error"' in html and 'aria-invalid="true"' in html
    assert "latest visit does not meet the cure criteria" in html
    assert "minimum stay ends on" in html
    too_short = pages.post(exit_url, {"outcome": "cured", "exit_on": today().isoformat(),
                                      "override_reason": "x"})  # fmt: skip
    assert too_short.status_code == 422 and 'id="override_reason-error"' in pages.text(too_short)
    with session_scope(app) as s:
        assert s.get(CareEpisode, episode_url.rsplit("/", 1)[1]).status == "active"  # type: ignore[union-attr]

    done = pages.post(exit_url, {"outcome": "cured", "exit_on": today().isoformat(),
                                 "override_reason": "Family leaves for Lima today"})  # fmt: skip
    assert done.status_code == 302
    card = pages.text(pages.get(episode_url))
    assert 'id="card-override"' in card and "Family leaves for Lima today" in card
    eid = episode_url.rsplit("/", 1)[1]
    with session_scope(app) as s:
        episode = s.get(CareEpisode, eid)
        assert episode is not None and episode.exit_outcome == "cured"
        sealed = episode.exit_override_enc
        assert sealed is not None and b"Lima" not in sealed  # encrypted at rest
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == eid)))
        assert {"exit", "exit_override"} <= actions
        op = s.scalar(select(OutboxOp).where(OutboxOp.op_type == "care_episode.close"))
        assert op is not None and "exit_override" in json.loads(op.base)


def test_a_health_worker_cannot_override(
    app: Flask, pages: Pages, register: Callable[..., str], login: Callable[..., object]
) -> None:
    pid = register()
    assert visit(pages, pid, **SAM_VISIT).status_code == 302
    episode_url = _admit(pages, pid, 0)
    with app.test_request_context(), session_scope(app) as s:
        sup = s.scalar(select(CareEpisode)).site_id  # type: ignore[union-attr]
        add_user(s, get_vault(app), username="hw", display_name="Health worker",
                 role="health_worker", password=PASSWORD, site_id=sup, language="en")  # fmt: skip
    pages.client.post("/logout", data={"csrf_token": pages.token})
    login("hw")
    pages.client.get("/")
    early = {"outcome": "cured", "exit_on": today().isoformat(), "override_reason": "Moving on"}
    refused = pages.post(f"{episode_url}/exit", early)
    assert refused.status_code == 422
    assert 'id="override_reason-error"' in pages.text(refused)
    assert "Only a supervisor" in pages.text(refused)


def test_cure_after_two_weeks_recovered_needs_no_override(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **{**SAM_VISIT, "occurred_on": _ago(42)}).status_code == 302
    episode_url = _admit(pages, pid, 42)
    # Weekly visits, girl of 78.5 cm: 7.9 kg (WHZ -2.5), then 8.7, 8.9, 9.0 kg (WHZ >= -2) with
    # MUAC >= 125 mm: the WHO 2023 rule holds on days 14, 21 and 28 -> cured on day 28.
    for days, weight, muac in ((35, "7.9", "118"), (28, "8.7", "126"), (21, "8.9", "128")):
        step = {**SAM_VISIT, "weight_kg": weight, "muac_mm": muac, "occurred_on": _ago(days)}
        assert visit(pages, pid, **step).status_code == 302
    card = pages.text(pages.get(episode_url))
    assert 'data-met="no"' in card and "two visits over two weeks" in card
    step = {**SAM_VISIT, "weight_kg": "9.0", "muac_mm": "130", "occurred_on": _ago(14)}
    assert visit(pages, pid, **step).status_code == 302
    card = pages.text(pages.get(episode_url))
    assert 'data-met="yes"' in card
    table = card[card.index('id="card-visits"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + 5  # header and the five visits of the episode
    assert 'id="card-days">42<' in card
    # Target: weight-for-length -2 SD for a girl at 78.5 cm.
    assert re.search(r'id="card-target">8.2 kg', card)
    # Gain from the minimum (7.0 kg, day 0) to 9.0 kg on day 28: 2000 / (7 * 28) = 10.2.
    assert re.search(r'id="card-gain">10.2 g/kg/day', card)
    done = pages.post(f"{episode_url}/exit", {"outcome": "cured", "exit_on": today().isoformat()})
    assert done.status_code == 302
    with session_scope(app) as s:
        episode = s.get(CareEpisode, episode_url.rsplit("/", 1)[1])
        assert episode is not None and episode.exit_override_enc is None


def test_a_default_the_log_does_not_show_needs_an_override(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **SAM_VISIT).status_code == 302
    episode_url = _admit(pages, pid, 0)
    refused = pages.post(f"{episode_url}/exit", {"outcome": "defaulted",
                                                 "exit_on": today().isoformat()})  # fmt: skip
    assert refused.status_code == 422 and "does not show this exit" in pages.text(refused)
    died = pages.post(f"{episode_url}/exit", {"outcome": "died", "exit_on": today().isoformat()})
    assert died.status_code == 302


def test_the_card_lists_products_quantities_and_medicines(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    given = {**SAM_VISIT, "supplements": ["rutf", "amoxicillin", "vitamin_a"], "sachets": "14",
             "appetite_test": "pass"}  # fmt: skip
    assert visit(pages, pid, **given).status_code == 302
    episode_url = _admit(pages, pid, 0)
    card = pages.text(pages.get(episode_url))
    row = card[card.index('id="card-visits"') :]
    assert "RUTF" in row and "14 sachets" in row and "Amoxicillin" in row and "Vitamin A" in row
    bad = visit(pages, pid, **{**given, "sachets": "-3"})
    assert bad.status_code == 422 and 'id="sachets-error"' in pages.text(bad)
