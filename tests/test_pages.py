"""The HTML pages over a real app and database: what a health worker sees and what a rejected
form gives back. (The browser-level workflow is in ``tests/e2e``.)"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from contigo.db import session_scope
from contigo.encounters.models import Encounter


def today() -> date:
    """Read at each use, not at import: a run that crosses midnight keeps its dates true."""
    return date.today()


@dataclass
class Pages:
    """A signed-in browser session: GET and POST with the session's CSRF token."""

    client: FlaskClient

    @property
    def token(self) -> str:
        with self.client.session_transaction() as sess:
            if "csrf" not in sess:
                self.client.get("/login")
        with self.client.session_transaction() as sess:
            return str(sess["csrf"])

    def get(self, url: str) -> TestResponse:
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any], **kw: Any) -> TestResponse:
        return self.client.post(url, data={"csrf_token": self.token, **data}, **kw)

    def text(self, response: TestResponse) -> str:
        return response.get_data(as_text=True)


@pytest.fixture
def pages(login: Callable[..., FlaskClient]) -> Pages:
    client = login()
    client.get("/")  # a fresh session after unlocking: create its CSRF token
    return Pages(client)


def months_ago(months: int) -> date:
    return today() - timedelta(days=round(months * 30.4375))


@pytest.fixture
def register(pages: Pages) -> Callable[..., str]:
    """Register through the page; returns the new person's id."""

    def _register(**overrides: Any) -> str:
        data = {"kind": "child", "given_names": "Sofía", "family_names": "Pérez Gómez",
                "birth_date": months_ago(18).isoformat(), "sex": "F", "nationality": "VE",
                "population_type": "in_transit", "birth_date_precision": "exact"}  # fmt: skip
        data.update(overrides)
        response = pages.post("/persons/new", data)
        assert response.status_code == 302, pages.text(response)[-1500:]
        return response.headers["Location"].rsplit("/", 1)[1]

    return _register


SAM_VISIT = {"weight_kg": "7.0", "lenhei_cm": "78.5", "measure": "l", "muac_mm": "110"}


def visit(pages: Pages, person_id: str, **values: str) -> TestResponse:
    data = {"occurred_on": today().isoformat(), "oedema_grade": "0", "referral": "none", **values}
    return pages.post(f"/persons/{person_id}/encounters/new", data)


def encounter_count(app: Flask) -> int:
    with session_scope(app) as s:
        return int(s.scalar(select(func.count()).select_from(Encounter)) or 0)


# ── access and page hygiene ────────────────────────────────────────────────────


@pytest.mark.parametrize("url", ["/", "/persons/search", "/persons/new", "/persons/abc"])
def test_pages_send_a_locked_browser_to_the_unlock_page(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_pages_have_no_inline_script_or_style(pages: Pages, register: Callable[..., str]) -> None:
    pid = register()
    assert visit(pages, pid, **SAM_VISIT).status_code == 302
    for url in ("/", "/persons/search", "/persons/new", f"/persons/{pid}",
                f"/persons/{pid}/encounters/new", f"/persons/{pid}/print"):  # fmt: skip
        html = pages.text(pages.get(url))
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), url
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), url
        assert 'href="http' not in html and 'src="http' not in html, url
        assert 'class="skip-link"' in html and "<h1" in html, url


# ── search ─────────────────────────────────────────────────────────────────────


def test_search_is_a_post_and_finds_by_name_and_id(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert 'method="post"' in pages.text(pages.get("/persons/search"))
    found = pages.post("/persons/search", {"q": "sofia perez"})
    assert found.status_code == 200
    assert f"/persons/{pid}" in pages.text(found)
    page = pages.text(pages.get(f"/persons/{pid}"))
    cid = re.search(r'class="contigo-id"[^>]*>([^<]+)<', page)
    assert cid is not None
    by_id = pages.post("/persons/search", {"q": cid.group(1).lower()})
    assert f"/persons/{pid}" in pages.text(by_id)


def test_a_bad_search_date_is_shown_next_to_its_field(pages: Pages) -> None:
    response = pages.post("/persons/search", {"q": "x", "birth_date": "31/02/2020"})
    assert response.status_code == 422
    assert 'id="birth_date-error"' in pages.text(response)
    assert 'value="31/02/2020"' in pages.text(response)


# ── registration ───────────────────────────────────────────────────────────────


def test_a_rejected_registration_keeps_what_was_typed(pages: Pages) -> None:
    response = pages.post("/persons/new", {"kind": "child", "given_names": "Sofía",
                                           "birth_date": "2010-01-01", "sex": "F"})  # fmt: skip
    html = pages.text(response)
    assert response.status_code == 422
    assert 'value="Sofía"' in html
    assert 'id="family_names-error"' in html
    assert 'aria-invalid="true"' in html
    too_old = pages.post("/persons/new", {"kind": "child", "given_names": "Sofía",
                                          "family_names": "Pérez", "birth_date": "2010-01-01",
                                          "sex": "F"})  # fmt: skip
    assert too_old.status_code == 422
    assert 'id="birth_date-error"' in pages.text(too_old)


def test_likely_duplicates_need_an_explicit_confirmation(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    first = register()
    data = {"kind": "child", "given_names": "Sofia", "family_names": "Perez",
            "birth_date": months_ago(18).isoformat(), "sex": "F"}  # fmt: skip
    warned = pages.post("/persons/new", data)
    html = pages.text(warned)
    assert warned.status_code == 200
    assert 'id="duplicates"' in html and f"/persons/{first}" in html
    assert 'name="confirm" value="register_anyway"' in html
    again = pages.post("/persons/new", data)  # not confirmed: still only a warning
    assert again.status_code == 200
    confirmed = pages.post("/persons/new", {**data, "confirm": "register_anyway"})
    assert confirmed.status_code == 302


def test_a_child_is_linked_to_a_mother_by_contigo_id(
    pages: Pages, register: Callable[..., str]
) -> None:
    mother = register(kind="woman", given_names="María José", birth_date="1995-03-02")
    page = pages.text(pages.get(f"/persons/{mother}"))
    cid = re.search(r'class="contigo-id"[^>]*>([^<]+)<', page)
    assert cid is not None
    assert f"/persons/new?mother={mother}" in page
    child = register(mother_contigo_id=cid.group(1))
    assert "María José" in pages.text(pages.get(f"/persons/{child}"))
    assert "Sofía" in pages.text(pages.get(f"/persons/{mother}"))
    wrong = pages.post("/persons/new", {"kind": "child", "given_names": "Ana",
                                        "family_names": "Ruiz", "sex": "F",
                                        "birth_date": months_ago(6).isoformat(),
                                        "mother_contigo_id": "0000-0000-0"})  # fmt: skip
    assert wrong.status_code == 422
    assert 'id="mother_contigo_id-error"' in pages.text(wrong)


# ── visits ─────────────────────────────────────────────────────────────────────


def test_a_sam_visit_shows_the_alert_and_the_chart_point(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    assert visit(pages, pid, supplements="rutf", **SAM_VISIT).status_code == 302
    html = pages.text(pages.get(f"/persons/{pid}"))
    assert 'data-code="acute.sam"' in html
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 6  # the child's own age range: six WHO charts
    muac = next(ET.fromstring(svg) for svg in svgs if "chart-muac" in svg)
    points = muac.findall(".//{http://www.w3.org/2000/svg}circle")
    assert [p.get("data-y") for p in points] == ["110.0"]
    home = pages.text(pages.get("/"))
    assert 'id="alerts-list"' in home and 'data-code="acute.sam"' in home


def test_standing_under_nine_months_is_confirmed_before_saving(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register(birth_date=months_ago(5).isoformat())
    values = {"weight_kg": "6.4", "lenhei_cm": "62.0", "measure": "h"}
    first = visit(pages, pid, **values)
    html = pages.text(first)
    assert first.status_code == 200
    assert 'id="confirm-box"' in html and 'value="62.0"' in html
    assert encounter_count(app) == 0
    saved = visit(pages, pid, confirm="checked", **values)
    assert saved.status_code == 302
    assert encounter_count(app) == 1


def test_a_unit_mistake_is_refused_next_to_its_field(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    response = visit(pages, pid, muac_mm="11.5")
    assert response.status_code == 422
    html = pages.text(response)
    assert 'id="muac_mm-error"' in html and 'value="11.5"' in html
    assert encounter_count(app) == 0


def test_the_preview_classifies_without_saving(
    app: Flask, pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    data = {"occurred_on": today().isoformat(), **SAM_VISIT}
    response = pages.client.post(f"/persons/{pid}/encounters/preview", data=data,
                                 headers={"X-CSRF-Token": pages.token})  # fmt: skip
    assert response.status_code == 200
    body = response.get_json()
    assert "acute.sam" in body["assessment"]["alerts"]
    assert 'data-code="acute.sam"' in body["html"]
    assert encounter_count(app) == 0
    bad = pages.client.post(f"/persons/{pid}/encounters/preview",
                            data={**data, "weight_kg": "abc"},
                            headers={"X-CSRF-Token": pages.token})  # fmt: skip
    assert bad.status_code == 422
    assert "weight_kg" in bad.get_json()["error"]["fields"]
    no_token = pages.client.post(f"/persons/{pid}/encounters/preview", data=data)
    assert no_token.status_code == 400


def test_a_voided_visit_stays_struck_through_with_its_reason(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    visit(pages, pid, **SAM_VISIT)
    html = pages.text(pages.get(f"/persons/{pid}"))
    enc_id = re.search(r'id="enc-([0-9a-f]{32})" class="active"', html)
    assert enc_id is not None
    url = f"/persons/{pid}/encounters/{enc_id.group(1)}/void"
    empty = pages.post(url, {"reason": ""})
    assert empty.status_code == 422 and 'id="reason-error"' in pages.text(empty)
    assert pages.post(url, {"reason": "Persona equivocada"}).status_code == 302
    html = pages.text(pages.get(f"/persons/{pid}"))
    assert f'id="enc-{enc_id.group(1)}" class="inactive"' in html
    assert "Persona equivocada" in html
    assert "circle" not in re.search(r"<svg[^>]*chart-muac.*?</svg>", html, re.S).group(0)  # type: ignore[union-attr]


def test_a_correction_supersedes_the_earlier_visit(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    visit(pages, pid, **SAM_VISIT)
    html = pages.text(pages.get(f"/persons/{pid}"))
    old = re.search(r'id="enc-([0-9a-f]{32})"', html).group(1)  # type: ignore[union-attr]
    form = pages.text(pages.get(f"/persons/{pid}/encounters/new?supersedes={old}"))
    assert f'name="supersedes_id" value="{old}"' in form and 'value="110"' in form
    assert (
        visit(pages, pid, supersedes_id=old, **{**SAM_VISIT, "muac_mm": "118"}).status_code == 302
    )
    html = pages.text(pages.get(f"/persons/{pid}"))
    assert f'id="enc-{old}" class="inactive"' in html


# ── episodes ───────────────────────────────────────────────────────────────────


def test_admission_is_prefilled_and_the_exit_closes_it(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    visit(pages, pid, **SAM_VISIT)
    form = pages.text(pages.get(f"/persons/{pid}/episodes/new"))
    assert re.search(r'value="sam_otp" checked', form)
    assert re.search(r'name="criteria" value="whz_lt_-3" checked', form)
    admitted = pages.post(
        f"/persons/{pid}/episodes/new",
        {"programme": "sam_otp", "criteria": "whz_lt_-3", "admitted_on": today().isoformat()},
    )
    assert admitted.status_code == 302
    episode_url = admitted.headers["Location"]
    schedule = pages.text(pages.get(episode_url))
    assert 'id="schedule"' in schedule
    bad_exit = pages.post(f"{episode_url}/exit", {"outcome": "", "exit_on": today().isoformat()})
    assert bad_exit.status_code == 422 and 'id="outcome-error"' in pages.text(bad_exit)
    # Cured on the admission day (WHZ < -3): the criteria are not met; the supervisor may
    # record it only as an override with a reason.
    early = {"outcome": "cured", "exit_on": today().isoformat()}
    refused = pages.post(f"{episode_url}/exit", early)
    assert refused.status_code == 422 and 'id="outcome-error"' in pages.text(refused)
    done = pages.post(f"{episode_url}/exit", {**early, "override_reason": "Family moves on"})
    assert done.status_code == 302
    assert 'id="admit"' in pages.text(pages.get(f"/persons/{pid}"))


def test_the_print_summary_has_the_last_visit(pages: Pages, register: Callable[..., str]) -> None:
    pid = register()
    visit(pages, pid, referral="otp", **SAM_VISIT)
    html = pages.text(pages.get(f"/persons/{pid}/print"))
    assert 'data-code="acute.sam"' in html and 'data-action="print"' in html


# ── language ───────────────────────────────────────────────────────────────────


def test_the_language_switch_changes_the_pages(pages: Pages) -> None:
    for lang, heading in (("es", "Trabajo de hoy"), ("pt", "Trabalho de hoje"),
                          ("en", "Today&#39;s work")):  # fmt: skip
        response = pages.post("/language", {"lang": lang, "next": "/"})
        assert response.status_code == 302
        html = pages.text(pages.get("/"))
        assert f'<html lang="{lang}">' in html and heading in html


def test_a_pregnant_womans_visit(pages: Pages, register: Callable[..., str]) -> None:
    pid = register(kind="woman", given_names="Carmen", birth_date="1998-07-01")
    form = pages.text(pages.get(f"/persons/{pid}/encounters/new"))
    assert 'name="pregnancy_status"' in form and 'name="lenhei_cm"' not in form
    saved = pages.post(
        f"/persons/{pid}/encounters/new",
        {
            "occurred_on": today().isoformat(),
            "muac_mm": "205",
            "hb_g_l": "95",
            "pregnancy_status": "pregnant",
            "gestational_weeks": "20",
            "supplements": "ifa",
        },
    )
    assert saved.status_code == 302, pages.text(saved)[-800:]
    html = pages.text(pages.get(f"/persons/{pid}"))
    assert 'data-code="plw.acute"' in html  # MUAC 205 mm < 230 mm (Colombia)
    assert "<svg" not in html  # growth charts are for children


def test_home_lists_a_person_once_per_day(pages: Pages, register: Callable[..., str]) -> None:
    pid = register()
    week_ago = (today() - timedelta(days=7)).isoformat()
    visit(pages, pid, **{**SAM_VISIT, "occurred_on": week_ago})
    pages.post(
        f"/persons/{pid}/episodes/new",
        {"programme": "sam_otp", "criteria": "whz_lt_-3", "admitted_on": week_ago},
    )
    home = pages.text(pages.get("/"))
    due = re.search(r'id="due-list">(.*?)</ul>', home, re.S)
    assert due is not None
    assert due.group(1).count(f"/persons/{pid}") == 1


def test_the_exit_form_proposes_what_the_visit_log_says(
    pages: Pages, register: Callable[..., str]
) -> None:
    pid = register()
    month_ago = (today() - timedelta(days=30)).isoformat()
    visit(pages, pid, **{**SAM_VISIT, "occurred_on": month_ago})
    admitted = pages.post(
        f"/persons/{pid}/episodes/new",
        {"programme": "sam_otp", "criteria": "whz_lt_-3", "admitted_on": month_ago},
    )
    episode_url = admitted.headers["Location"]
    assert 'data-state="defaulted"' in pages.text(pages.get(episode_url))
    form = pages.text(pages.get(f"{episode_url}/exit"))
    assert 'id="log-status"' in form
    assert re.search(r'<option value="defaulted" selected>', form)
