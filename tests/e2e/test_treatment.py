"""Care episodes follow the protocol, in a real browser in Spanish (issue 11.4): a cure before
the discharge criteria are met is refused on the outcome field, then accepted as a
supervisor's override with a reason and shown on the treatment card; the visit form shows the
previous values and asks for a re-measure when the length shrinks (11.5)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:
    from e2e.conftest import Instance, Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]


@pytest.fixture(scope="module")
def server(instance: Instance) -> Server:
    return instance.serve()


def _unlock(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/")
    page.fill("#username", server.username)
    page.fill("#password", server.password)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()
    if page.locator("html").get_attribute("lang") != "es":
        page.click(".lang-switch button[value=es]")
    expect(page.locator("h1")).to_have_text("Trabajo de hoy")


def _register_child(page: Page, names: tuple[str, str], born: date) -> str:
    page.click("nav >> text=Registrar")
    page.check("input[name=kind][value=child]")
    page.fill("#given_names", names[0])
    page.fill("#family_names", names[1])
    page.fill("#birth_date", born.isoformat())
    page.check("input[name=sex][value=M]")
    page.select_option("#nationality", "VE")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text(f"{names[0]} {names[1]}")
    return page.url


def _visit(page: Page, on: date, weight: str, length: str, muac: str) -> None:
    page.click("#new-visit")
    page.fill("#occurred_on", on.isoformat())
    page.fill("#weight_kg", weight)
    page.fill("#lenhei_cm", length)
    page.fill("#muac_mm", muac)


def test_cure_before_the_criteria_is_refused_then_recorded_as_an_override(
    page: Page, server: Server, shot: Shot
) -> None:
    _unlock(page, server)
    child_url = _register_child(page, ("Mateo", "Rangel Díaz"), date.today() - timedelta(days=548))

    # SAM on admission: 7.4 kg at 80.0 cm (WHZ < -3).
    _visit(page, date.today(), "7.4", "80.0", "112")
    expect(page.locator("#preview [data-code='acute.sam']")).to_be_visible()
    page.click("button[type=submit].primary")
    expect(page).to_have_url(child_url)
    page.click("#admit")
    expect(page.locator("input[name=programme][value=sam_otp]")).to_be_checked()
    page.click("button[type=submit].primary")
    expect(page.locator("#treatment-card")).to_be_visible()
    expect(page.locator("#card-discharge")).to_have_attribute("data-met", "no")
    expect(page.locator("#card-target")).to_contain_text("kg")
    shot(page, "card-admission")
    episode_url = page.url

    # Cured on the admission day: refused, on the outcome field, in Spanish.
    page.click("a[href$='/exit']")
    page.select_option("#outcome", "cured")
    page.click("button[type=submit].primary")
    expect(page.locator("#outcome")).to_have_attribute("aria-invalid", "true")
    error = page.locator("#outcome-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("no cumplen los criterios de egreso")
    expect(error).to_contain_text("estancia mínima")
    shot(page, "cure-refused")

    # The supervisor records it as an override with a reason.
    page.fill("#override_reason", "La familia continúa viaje hoy hacia Lima")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(child_url)
    expect(page.locator(".flash.success")).to_be_visible()
    page.goto(episode_url)
    expect(page.locator("#card-override")).to_contain_text("Excepción de supervisión")
    expect(page.locator("#card-override")).to_contain_text("continúa viaje")
    shot(page, "card-override")


def test_the_form_shows_the_previous_visit_and_asks_when_the_length_shrinks(
    page: Page, server: Server, shot: Shot
) -> None:
    _unlock(page, server)
    child_url = _register_child(page, ("Tomás", "Ortega Peña"), date.today() - timedelta(days=700))
    _visit(page, date.today() - timedelta(days=7), "9.1", "84.7", "135")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(child_url)

    _visit(page, date.today(), "9.2", "80.0", "135")
    # The previous value sits beside its field, with the change as typed.
    beside = page.locator(".field [data-previous-for=lenhei_cm]")
    expect(beside).to_be_visible()
    expect(beside.locator(".delta")).to_have_text("-4,7")
    page.click("button[type=submit].primary")
    expect(page.locator("#confirm-box")).to_be_visible()
    expect(page.locator("#confirm-box")).to_contain_text("vuelva a medir")
    shot(page, "length-shrank")
    page.fill("#lenhei_cm", "85.1")
    page.check("#confirm")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(child_url)
