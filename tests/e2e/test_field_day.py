"""A field day without friction, in a real browser at 1366×768, in Spanish and Portuguese
(issue 15): work lists that count everything and page the rest, search results that say who and
how many, and a nutrition lead offered nothing to write. Screenshots go to test-artifacts/e2e."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD, USERNAME, _env, contigo_command

if TYPE_CHECKING:
    from tests.e2e.conftest import Instance, Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
LEAD = "luisa.lider"
MAM = {"weight_kg": "7.9", "lenhei_cm": "78.5", "measure": "l", "muac_mm": "120"}


@pytest.fixture(scope="module")
def server(instance: Instance) -> Server:
    """The instance with a nutrition lead added through the command line, then served."""
    secret = instance.path.parent / "password.txt"
    result = subprocess.run(
        [*contigo_command(), "--instance", str(instance.path), "user", "add", "--username", LEAD,
         "--display-name", "Luisa Líder", "--role", "nutrition_lead", "--country", "PE",
         "--site", "PE-UM-01", "--password-file", str(secret), "--as", USERNAME,
         "--as-password-file", str(secret)],
        capture_output=True, text=True, env=_env({}), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr or result.stdout
    return instance.serve()


def sign_in(page: Page, server: Server, username: str, lang: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()
    page.click(f".lang-switch button[value={lang}]")
    expect(page.locator("html")).to_have_attribute("lang", lang)


def post(page: Page, url: str, form: dict[str, str]) -> str:
    """Post a form as the signed-in page would (its CSRF token); returns where it led."""
    token = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    response = page.request.post(url, form={**form, "csrf_token": token}, max_redirects=0)
    assert response.status == 302, response.text()[-800:]
    return response.headers["location"]


def children_with_missed_visits(page: Page, server: Server, n: int) -> None:
    """``n`` children seen with MAM 20 to 20+n days ago: each one's follow-up is now missed."""
    born = (date.today() - timedelta(days=548)).isoformat()
    for i in range(n):
        where = post(page, f"{server.url}/persons/new", {
            "kind": "child", "given_names": f"Luz {chr(65 + i)}", "family_names": "Rojas Díaz",
            "birth_date": born, "birth_date_precision": "exact", "sex": "F", "nationality": "VE",
            "population_type": "in_transit", "confirm": "register_anyway"})  # fmt: skip
        on = (date.today() - timedelta(days=20 + i)).isoformat()
        post(page, f"{server.url}{where}/encounters/new",
             {**MAM, "occurred_on": on, "oedema_grade": "0", "referral": "none"})  # fmt: skip


def test_work_lists_count_everyone_and_page_the_rest(
    page: Page, server: Server, shot: Shot
) -> None:
    sign_in(page, server, USERNAME, "es")
    children_with_missed_visits(page, server, 12)
    page.goto(f"{server.url}/work/today")  # shows (and so clears) the set-up's messages
    page.goto(f"{server.url}/")
    overdue = page.locator("#overdue-h .count")
    total = int(overdue.get_attribute("data-total") or 0)
    assert total > 8  # more than the home page shows: the rest is one click away
    expect(page.locator("#overdue-list li")).to_have_count(8)
    expect(page.locator("#overdue-list li").first).to_contain_text("Femenino")
    expect(page.locator("#overdue-list li").first).to_contain_text("días de atraso")
    expect(page.locator("#alerts-h .count")).to_have_text(re.compile(r"\d+"))
    shot(page, "home-es")
    page.click("#overdue-panel a[data-action=see-all]")
    expect(page.locator("#shown")).to_have_text(f"1–{total} de {total}")
    expect(page.locator("#overdue-list li")).to_have_count(total)
    shot(page, "overdue-es")
    page.click(".lang-switch button[value=pt]")
    expect(page.locator("h1")).to_contain_text("Consultas atrasadas")
    expect(page.locator("#overdue-list li").first).to_contain_text("dias de atraso")
    shot(page, "overdue-pt")
    page.goto(f"{server.url}/")
    expect(page.locator("#week-h")).to_contain_text("Próximos 7 dias")
    shot(page, "home-pt")


def test_search_says_who_and_how_many(page: Page, server: Server, shot: Shot) -> None:
    sign_in(page, server, USERNAME, "pt")
    page.goto(f"{server.url}/persons/search")
    page.fill("#q", "luz rojas")
    page.click("form[role=search] button[type=submit]")
    expect(page.locator("#results-h")).to_contain_text("12")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(12)
    expect(rows.first).to_contain_text("Feminino")
    shot(page, "search-pt")


def test_a_nutrition_lead_reads_and_is_offered_nothing_to_write(
    page: Page, server: Server, shot: Shot
) -> None:
    sign_in(page, server, LEAD, "es")
    expect(page.locator("nav a[href='/persons/new']")).to_have_count(0)
    page.goto(f"{server.url}/work/overdue")
    page.locator("#overdue-list li a").first.click()
    expect(page.locator("#person-sex")).to_be_visible()
    for action in ("#new-visit", "#edit-person", "#admit"):
        expect(page.locator(action)).to_have_count(0)
    shot(page, "lead-person-es")
    page.goto(page.url + "/encounters/new")
    expect(page.locator("h1")).to_have_text("Esto no está permitido para su función")
    expect(page.locator("#error-detail")).to_contain_text("E301_forbidden")
    shot(page, "lead-refused-es")
    page.click(".lang-switch button[value=pt]")
    page.goto(page.url)
    expect(page.locator("h1")).to_have_text("Isto não é permitido para a sua função")
    shot(page, "lead-refused-pt")


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_the_idle_lock_warns_then_gives_the_form_back(
    instance: Instance, server: Server, page: Page, shot: Shot, lang: str
) -> None:
    idle = 16  # the countdown shows for the last 8 s
    short = instance.serve(CONTIGO_IDLE_LOCK_SECONDS=str(idle))
    try:
        sign_in(page, short, USERNAME, lang)
        page.goto(f"{short.url}/work/overdue")
        page.locator("#overdue-list li a").first.click()
        page.click("#new-visit")
        form_url = page.url
        page.fill("#weight_kg", "8.4")
        page.fill("#notes", "Madre refiere diarrea hace dos días")
        # Typing is activity: the lock keeps away while someone types.
        for _ in range(3):
            page.wait_for_timeout(6000)
            page.locator("#notes").press("End")
            page.locator("#notes").type(".")
        expect(page.locator("#idle-warning")).to_be_hidden()
        warning = page.locator("#idle-warning")
        expect(warning).to_be_visible(timeout=(idle + 5) * 1000)
        expect(warning).to_contain_text(re.compile(r"\d+ s"))
        shot(page, f"idle-warning-{lang}")
        expect(page).to_have_url(re.compile(r"/login"), timeout=(idle + 5) * 1000)
        shot(page, f"idle-locked-{lang}")
        page.fill("#username", USERNAME)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        expect(page).to_have_url(form_url)
        expect(page.locator("#form-restored")).to_be_visible()
        expect(page.locator("#weight_kg")).to_have_value("8.4")
        expect(page.locator("#notes")).to_have_value("Madre refiere diarrea hace dos días...")
        shot(page, f"idle-restored-{lang}")
    finally:
        short.stop()


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_dates_are_typed_day_first_whatever_the_browser(
    page: Page, server: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, server, USERNAME, lang)  # the browser itself is es-CO: its own order is m/d
    page.goto(f"{server.url}/persons/new")
    box = page.locator("#birth_date")
    expect(box).to_have_attribute("placeholder", "dd/mm/aaaa")
    expect(box).to_have_attribute("type", "text")
    page.check("input[name=kind][value=child]")
    page.fill("#given_names", "Dora" if lang == "es" else "Dóris")
    page.fill("#family_names", "Quintero Luna")
    box.fill("05/03/2025")
    page.check("input[name=sex][value=F]")
    page.select_option("#nationality", "VE")
    shot(page, f"date-typed-{lang}")
    page.click("button[type=submit].primary")
    expect(page.locator("#person-birth-date")).to_contain_text("5 mar")
    expect(page.locator("#person-birth-date")).to_contain_text("2025")
    shot(page, f"date-shown-{lang}")
