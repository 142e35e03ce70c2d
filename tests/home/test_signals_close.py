"""Safety signals close their loop (issue 11.7): admission or an outcome recorded by a user
closes an alert; a visit missed past the defaulter threshold moves to the list to trace, which
an outcome closes."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters.models import ImmutableRecord
from contigo.episodes.models import FollowUpOutcome
from sync.models import OutboxOp
from tests.test_pages import SAM_VISIT, Pages, today, visit

MAM_VISIT = {**SAM_VISIT, "weight_kg": "7.9", "muac_mm": "120"}


def _section(html: str, list_id: str) -> str:
    found = re.search(rf'<ul [^>]*id="{list_id}">(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


def test_admission_closes_the_alert_and_a_later_mam_reading_stays_closed(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    week_ago = (today() - timedelta(days=7)).isoformat()
    assert visit(pages, pid, **{**SAM_VISIT, "occurred_on": week_ago}).status_code == 302
    assert pid in _section(pages.text(pages.get("/")), "alerts-list")
    admitted = pages.post(
        f"/persons/{pid}/episodes/new",
        {"programme": "sam_otp", "criteria": "whz_lt_-3", "admitted_on": week_ago},
    )
    assert admitted.status_code == 302
    assert pid not in _section(pages.text(pages.get("/")), "alerts-list")
    # In SAM treatment and improving: the MAM reading is not a new finding.
    assert visit(pages, pid, **MAM_VISIT).status_code == 302
    assert pid not in _section(pages.text(pages.get("/")), "alerts-list")


def test_an_outcome_with_a_reason_closes_an_alert(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    week_ago = (today() - timedelta(days=7)).isoformat()
    assert visit(pages, pid, **{**MAM_VISIT, "occurred_on": week_ago}).status_code == 302
    home = pages.text(pages.get("/"))
    link = re.search(rf'href="(/persons/{pid}/follow-up/alert/[0-9-]+)"', home)
    assert link is not None
    form = pages.text(pages.get(link.group(1)))
    assert 'id="outcome"' in form and 'id="reason"' in form
    missing = pages.post(link.group(1), {"outcome": "traced"})
    assert missing.status_code == 422 and 'id="reason-error"' in pages.text(missing)
    bad = pages.post(link.group(1), {"outcome": "vanished", "reason": "Called the mother"})
    assert bad.status_code == 422 and 'id="outcome-error"' in pages.text(bad)
    done = pages.post(link.group(1), {"outcome": "moved_on", "reason": "Family went to Quito"})
    assert done.status_code == 302
    assert pid not in _section(pages.text(pages.get("/")), "alerts-list")
    with session_scope(app) as s:
        row = s.scalar(select(FollowUpOutcome).where(FollowUpOutcome.person_id == pid))
        assert row is not None and row.outcome == "moved_on" and b"Quito" not in row.reason_enc
        op = s.scalar(select(OutboxOp).where(OutboxOp.op_type == "follow_up_outcome.record"))
        assert op is not None and op.entity_id == row.id
    # A later visit that finds MAM again raises a new alert.
    assert visit(pages, pid, **{**MAM_VISIT, "weight_kg": "7.95"}).status_code == 302
    assert pid in _section(pages.text(pages.get("/")), "alerts-list")


def test_a_visit_missed_for_months_moves_to_the_list_to_trace(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    long_ago = (today() - timedelta(days=200)).isoformat()
    assert visit(pages, pid, **{**MAM_VISIT, "occurred_on": long_ago}).status_code == 302
    home = pages.text(pages.get("/"))
    assert pid not in _section(home, "overdue-list")
    assert pid in _section(home, "trace-list")
    link = re.search(rf'href="(/persons/{pid}/follow-up/trace/[0-9-]+)"', home)
    assert link is not None
    done = pages.post(link.group(1), {"outcome": "lost", "reason": "No phone, not at the shelter"})
    assert done.status_code == 302
    home = pages.text(pages.get("/"))
    assert pid not in _section(home, "trace-list") and pid not in _section(home, "overdue-list")


def test_a_recently_missed_visit_stays_overdue(pages: Pages, register: Callable[..., str]) -> None:
    pid = register()
    # A MAM follow-up is booked a fortnight on (Colombia): 20 days ago -> 6 days overdue.
    recent = (today() - timedelta(days=20)).isoformat()
    assert visit(pages, pid, **{**MAM_VISIT, "occurred_on": recent}).status_code == 302
    home = pages.text(pages.get("/"))
    assert pid in _section(home, "overdue-list") and pid not in _section(home, "trace-list")


def test_a_recorded_outcome_is_append_only(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, **MAM_VISIT).status_code == 302
    url = f"/persons/{pid}/follow-up/alert/{today().isoformat()}"
    assert pages.post(url, {"outcome": "traced", "reason": "Seen at home"}).status_code == 302
    with pytest.raises(ImmutableRecord), session_scope(app) as s:
        row = s.scalar(select(FollowUpOutcome).where(FollowUpOutcome.person_id == pid))
        assert row is not None
        row.outcome = "lost"
        s.flush()
