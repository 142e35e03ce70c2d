"""The field workflow in a real browser over the real server: unlock, register a mother and her
child, record a SAM visit, see the alert and the chart point, admit to outpatient care, find the
follow-up on the home page, switch language, lock by hand and by idle time."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Page, expect

from contigo.nutrition.profiles import get_profile

if TYPE_CHECKING:
    from e2e.conftest import Instance, Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
MOTHER = ("María José", "Pérez Gómez")
CHILD = ("Sofía Valentina", "Pérez")
PERSONAL = [*MOTHER, *CHILD, "Pérez", "Sofía", "María"]


def months_ago(months: int) -> date:
    return date.today() - timedelta(days=round(months * 30.4375))


def unlock(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.fill("#username", server.username)
    page.fill("#password", server.password)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()
    if page.locator("html").get_attribute("lang") != "es":  # an earlier test chose another
        page.click(".lang-switch button[value=es]")
    expect(page.locator("h1")).to_have_text("Trabajo de hoy")


def register(page: Page, kind: str, names: tuple[str, str], born: date, sex: str) -> str:
    """Fill the registration form (already open) and return the new person's page URL."""
    if kind:
        page.check(f"input[name=kind][value={kind}]")
    page.fill("#given_names", names[0])
    page.fill("#family_names", names[1])
    page.fill("#birth_date", born.isoformat())
    page.check(f"input[name=sex][value={sex}]")
    page.select_option("#nationality", "VE")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text(f"{names[0]} {names[1]}")
    return page.url


@pytest.fixture(scope="module")
def server(instance: Instance) -> Server:
    return instance.serve()


def test_field_workflow(page: Page, server: Server, shot: Shot) -> None:
    urls: list[str] = []
    console_errors: list[str] = []
    page.on("request", lambda request: urls.append(unquote(request.url)))
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    # Unlock.
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("#username")).to_be_focused()
    shot(page, "locked")
    unlock(page, server)
    shot(page, "home-empty")

    # Register the mother, then her child from the mother's page.
    page.click("nav >> text=Registrar")
    register(page, "woman", MOTHER, date(1996, 4, 12), "F")
    mother_id = page.locator(".page-head .contigo-id").inner_text()
    shot(page, "mother")
    page.click("text=Registrar hija o hijo")
    expect(page.locator("text=Madre:")).to_be_visible()
    child_url = register(page, "", CHILD, months_ago(18), "F")
    expect(page.locator("a", has_text=" ".join(MOTHER))).to_be_visible()
    shot(page, "child")

    # A SAM visit one follow-up interval ago: MUAC 110 mm at 18 months.
    interval = get_profile("PE").follow_up.sam_days
    visit_on = date.today() - timedelta(days=interval)
    page.click("#new-visit")
    expect(page.locator("#weight_kg")).to_be_focused()
    page.fill("#occurred_on", visit_on.isoformat())
    page.fill("#weight_kg", "8.1")
    page.fill("#lenhei_cm", "78.5")
    page.fill("#muac_mm", "110")
    preview = page.locator("#preview [data-code='acute.sam']")
    expect(preview).to_be_visible()
    shot(page, "visit-preview")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(child_url)
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page.locator("#current [data-code='acute.sam']")).to_be_visible()
    point = page.locator("svg.chart-muac circle.point")
    expect(point).to_have_count(1)
    assert float(point.get_attribute("data-y") or 0) == 110
    expect(page.locator("svg.chart-wfa circle.point")).to_have_count(1)
    shot(page, "child-sam")

    # Admit: the programme and the criterion come pre-filled from the assessment.
    page.click("#admit")
    expect(page.locator("input[name=programme][value=sam_otp]")).to_be_checked()
    expect(page.locator("input[name=criteria][value=muac_lt_115]")).to_be_checked()
    page.fill("#admitted_on", visit_on.isoformat())
    shot(page, "admit")
    page.click("button[type=submit].primary")
    expect(page.locator("#schedule")).to_be_visible()
    shot(page, "episode")

    # Home: admission closed the SAM alert (the programme follows the child); today's
    # follow-up visit is due.
    page.click("nav >> text=Inicio")
    expect(page.locator("#alerts-list li", has_text=CHILD[0])).to_have_count(0)
    expect(page.locator("#due-list li", has_text=CHILD[0]).first).to_be_visible()
    shot(page, "home-follow-up")

    # Search is a POST: the name never lands in a URL.
    page.click("nav >> text=Buscar")
    page.fill("#q", "sofia perez")
    page.click("button[type=submit].primary")
    expect(page.locator("#results a", has_text=CHILD[0])).to_be_visible()
    page.fill("#q", mother_id)
    page.click("button[type=submit].primary")
    expect(page.locator("#results a", has_text=MOTHER[0])).to_be_visible()
    shot(page, "search")

    # Language: es → pt → en, remembered across pages.
    page.click("nav >> text=Inicio")
    page.click(".lang-switch button[value=pt]")
    expect(page.locator("h1")).to_have_text("Trabalho de hoje")
    expect(page.locator("html")).to_have_attribute("lang", "pt")
    shot(page, "home-pt")
    page.click(".lang-switch button[value=en]")
    expect(page.locator("h1")).to_have_text("Today's work")
    page.goto(child_url)
    expect(page.locator("#current-h")).to_have_text("Current classification")
    expect(page.locator("svg.chart-wfa .x-label")).to_have_text("Age (months)")
    shot(page, "child-en")

    # Lock by hand: the next page is the unlock page again.
    page.click(".lock-form button")
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(child_url)
    expect(page).to_have_url(re.compile(r"/login"))
    shot(page, "locked-again")

    leaked = [u for u in urls if any(word in u for word in PERSONAL)]
    assert not leaked, f"personal data in URLs: {leaked}"
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors


def test_warnings_are_shown_before_saving(page: Page, server: Server, shot: Shot) -> None:
    unlock(page, server)
    page.click("nav >> text=Registrar")
    register(page, "child", ("Lucía", "Ramírez Soto"), months_ago(5), "F")
    page.click("#new-visit")
    page.fill("#weight_kg", "6.4")
    page.fill("#lenhei_cm", "62.0")
    page.check("input[name=measure][value=h]")  # standing at 5 months
    expect(page.locator("#preview [data-warning='standing_under_9_months']")).to_be_visible()
    shot(page, "warning-preview")
    page.click("button[type=submit].primary")
    expect(page.locator("#confirm-box")).to_be_visible()
    expect(page.locator("#lenhei_cm")).to_have_value("62.0")
    shot(page, "warning-confirm")
    page.check("#confirm")
    page.click("button[type=submit].primary")
    expect(page.locator(".flash.success")).to_be_visible()

    # A unit mistake is refused next to its field, with what was typed kept.
    page.click("#new-visit")
    page.fill("#muac_mm", "11.5")
    page.click("button[type=submit].primary")
    expect(page.locator("#muac_mm")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#muac_mm")).to_have_value("11.5")
    expect(page.locator("#muac_mm-error")).to_be_visible()
    shot(page, "field-error")


def test_idle_lock(browser: Browser, instance: Instance, server: Server, shot: Shot) -> None:
    server.stop()
    idle = 4
    short = instance.serve(CONTIGO_IDLE_LOCK_SECONDS=str(idle))
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        unlock(page, short)
        page.click("nav >> text=Buscar")
        expect(page.locator("#q")).to_be_focused()
        page.wait_for_timeout((idle + 3) * 1000)
        page.goto(f"{short.url}/persons/search")
        expect(page).to_have_url(re.compile(r"/login"))
        expect(page.locator(".lock-state .badge")).to_have_text("Bloqueado")
        shot(page, "idle-locked")
    finally:
        context.close()
        short.stop()
