"""Work lists that tell the truth (issue 15.1): every list counts all it holds and pages the
rest, most urgent then most recently missed first; the coming week is listed; each row says
who the person is (sex, age, site when the user has several) and why they are listed."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.auth.models import User, UserSite
from contigo.db import session_scope
from contigo.home import services
from contigo.sites.services import add_site
from tests.test_pages import SAM_VISIT, Pages, today, visit

MAM_VISIT = {**SAM_VISIT, "weight_kg": "7.9", "muac_mm": "120"}


def _rows(html: str, list_id: str) -> list[str]:
    found = re.search(rf'<ul [^>]*id="{list_id}">(.*?)</ul>', html, re.S)
    return re.findall(r'<li data-person="([0-9a-f]+)"', found.group(1)) if found else []


def _row(html: str, list_id: str, pid: str) -> str:
    found = re.search(rf'<ul [^>]*id="{list_id}">.*?<li data-person="{pid}">(.*?)</li>', html, re.S)
    assert found is not None, (list_id, pid)
    return found.group(1)


def _total(html: str, name: str) -> int:
    found = re.search(rf'id="{name}-h">[^<]*<span class="count" data-total="(\d+)"', html)
    assert found is not None, name
    return int(found.group(1))


def _missed(pages: Pages, register: Callable[..., str], days_ago: int, **who: str) -> str:
    """A child whose MAM follow-up (booked a fortnight on, Colombia) is now missed."""
    pid = register(confirm="register_anyway", **who)
    on = (today() - timedelta(days=days_ago)).isoformat()
    assert visit(pages, pid, **{**MAM_VISIT, "occurred_on": on}).status_code == 302
    return pid


def test_counts_are_totals_and_the_rest_is_paged_most_urgent_then_latest_missed_first(
    pages: Pages, register: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "PAGE_SIZE", 4)
    # 6 to 15 days overdue: the most recently missed (6 days) comes first.
    late = [_missed(pages, register, 20 + i, given_names=f"Niña {i}") for i in range(10)]
    # A child in SAM treatment who missed a weekly visit 3 days ago: the most urgent.
    sam = register(given_names="Urgente", confirm="register_anyway")
    admitted = (today() - timedelta(days=10)).isoformat()
    assert visit(pages, sam, **{**SAM_VISIT, "occurred_on": admitted}).status_code == 302
    episode = pages.post(
        f"/persons/{sam}/episodes/new",
        {"programme": "sam_otp", "criteria": "whz_lt_-3", "admitted_on": admitted},
    )
    assert episode.status_code == 302
    home = pages.text(pages.get("/"))
    assert _total(home, "overdue") == 11
    shown = _rows(home, "overdue-list")
    assert len(shown) == services.HOME_ROWS and shown[0] == sam
    assert shown[1:] == late[: services.HOME_ROWS - 1]
    assert 'href="/work/overdue"' in home
    everyone: list[str] = []
    for number in (1, 2, 3):
        page = pages.text(pages.get(f"/work/overdue?page={number}"))
        assert _total(page, "list") == 11
        everyone += _rows(page, "overdue-list")
    assert everyone == [sam, *late]
    last = pages.text(pages.get("/work/overdue?page=3"))
    assert "9–11" in last and 'rel="prev"' in last and 'rel="next"' not in last
    assert pages.get("/work/nothing").status_code == 404


def test_the_coming_week_is_listed_and_each_row_says_who_and_why(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    # Seen 10 days ago with MAM: the follow-up a fortnight on is due in 4 days.
    soon = _missed(pages, register, 10, given_names="Pronto")
    home = pages.text(pages.get("/"))
    assert _rows(home, "week-list") == [soon] and _total(home, "week") == 1
    row = _row(home, "week-list", soon)
    assert "Female · 18 months" in row and "in 4 days" in row and "Follow-up" in row
    assert 'class="site"' not in row  # one site: no site named on each row
    with session_scope(app) as s:
        other = add_site(s, code="CO-APA", name="Apartadó", country="CO")
        sup = s.scalar(select(User).where(User.username == "sup"))
        assert sup is not None
        sup.sites.append(UserSite(site_id=other.id))
    row = _row(pages.text(pages.get("/")), "week-list", soon)
    assert '<span class="site">Necoclí</span>' in row


def test_an_alert_row_says_what_was_found_and_when(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = _missed(pages, register, 3)
    home = pages.text(pages.get("/"))
    assert _rows(home, "alerts-list") == [pid] and _total(home, "alerts") == 1
    assert 'data-code="acute.mam"' in _row(home, "alerts-list", pid)


def test_search_results_say_who_and_how_many_were_found_in_all(
    app: Flask, pages: Pages, register: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from contigo.persons import services as persons

    mother = register(kind="woman", given_names="Marta", family_names="Rojas Díaz",
                      birth_date="1995-04-02", confirm="register_anyway")  # fmt: skip
    cid = re.search(
        r'class="contigo-id"[^>]*>([^<]+)<', pages.text(pages.get(f"/persons/{mother}"))
    )
    assert cid is not None
    kids = [
        register(
            given_names=f"Luz {n}",
            family_names="Rojas Díaz",
            mother_contigo_id=cid.group(1),
            confirm="register_anyway",
        )
        for n in ("Ana", "Eva", "Ida")
    ]
    real = persons.search_page
    monkeypatch.setattr(persons, "search_page", lambda *a, **k: real(*a, **{**k, "limit": 2}))
    html = pages.text(pages.post("/persons/search", {"q": "luz rojas"}))
    assert "Showing 2 of 4." in html  # the three children and their mother
    shown = re.findall(r'<a href="/persons/([0-9a-f]+)">', html.split('id="results"')[1])
    assert len(shown) == 2 and set(shown) <= {*kids, mother}
    assert '<td class="mother">Marta Rojas Díaz</td>' in html
    assert "<td>Female</td>" in html and "<td>Necoclí</td>" in html
