"""Issue 11 in a real browser, in Spanish and Portuguese, at a Colombian site: a visit typed with
decimal commas saves the right values; MUAC 109 mm at 16 months shows the red danger sign with
the referral pre-selected by the live preview; a pregnant woman whose weeks are unknown saves."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import PASSWORD, USERNAME, Instance, Server, _env, contigo_command

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
LANGS = ["es", "pt"]


@pytest.fixture(scope="module")
def co_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A Colombian mobile unit (the profile where MUAC does not define the national label)."""
    folder = tmp_path_factory.mktemp("contigo-co")
    secret = folder.parent / "password-co.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    secret.chmod(0o600)
    result = subprocess.run(
        [*contigo_command(), "--instance", str(folder), "init", "--site-code", "CO-NEC",
         "--site-name", "Necoclí", "--country", "CO", "--elevation", "5",
         "--username", USERNAME, "--display-name", "Ana Supervisora", "--language", "es",
         "--password-file", str(secret)],
        capture_output=True, text=True, env=_env({}), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr or result.stdout
    holder = Instance(folder)
    yield holder.serve()
    for server in holder.servers:
        server.stop()


def sign_in(page: Page, server: Server, lang: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#username", server.username)
    page.fill("#password", server.password)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()
    page.click(f".lang-switch button[value={lang}]")
    expect(page.locator("html")).to_have_attribute("lang", lang)


FAMILY = {"es": "Pérez Gómez", "pt": "Silva Oliveira"}


def register(page: Page, server: Server, kind: str, given: str, born: date) -> str:
    """Register a person; names and dates differ per test so none looks like a duplicate."""
    lang = page.locator("html").get_attribute("lang") or "es"
    family = FAMILY[lang]
    born = born - timedelta(days=LANGS.index(lang) * 40)
    page.goto(f"{server.url}/persons/new")
    page.check(f"input[name=kind][value={kind}]")
    page.fill("#given_names", given)
    page.fill("#family_names", family)
    page.fill("#birth_date", born.isoformat())
    page.check("input[name=sex][value=F]")
    page.select_option("#nationality", "VE")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text(f"{given} {family}")
    return page.url


@pytest.mark.parametrize("lang", LANGS)
def test_a_visit_typed_with_decimal_commas_saves_the_right_values(
    page: Page, co_server: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, co_server, lang)
    url = register(
        page,
        co_server,
        "child",
        "Julia" if lang == "es" else "Beatriz",
        date.today() - timedelta(days=600),
    )
    page.click("#new-visit")
    page.fill("#weight_kg", "8,5")
    page.fill("#lenhei_cm", "76,0")
    page.fill("#muac_mm", "131")
    page.fill("#headc_cm", "45,5")
    page.fill("#hb_g_l", "118,5")
    expect(page.locator("#preview [data-indicator=whz]")).to_be_visible()
    expect(page.locator(".field-error")).to_have_count(0)
    shot(page, f"commas-{lang}")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(url)
    expect(page.locator(".flash.success")).to_be_visible()
    weight = page.locator("svg.chart-wfa circle.point")
    expect(weight).to_have_count(1)
    assert float(weight.get_attribute("data-y") or 0) == 8.5
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("8,5")
    expect(row).to_contain_text("76,0")
    expect(page.locator("#hb-reading")).to_contain_text("118,5")

    # Two separators are refused next to the field, naming it.
    page.click("#new-visit")
    page.fill("#weight_kg", "1.234,5")
    page.click("button[type=submit].primary")
    expect(page.locator("#weight_kg")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#weight_kg-error")).to_contain_text("Peso")
    expect(page.locator("#weight_kg-error")).to_contain_text("8,5")


@pytest.mark.parametrize("lang", LANGS)
def test_muac_109_at_a_colombian_site_is_a_red_danger_sign_with_referral(
    page: Page, co_server: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, co_server, lang)
    url = register(
        page,
        co_server,
        "child",
        "Mateo" if lang == "es" else "Thiago",
        date.today() - timedelta(days=487),
    )
    page.click("#new-visit")
    page.fill("#weight_kg", "9,4")
    page.fill("#lenhei_cm", "76,0")
    page.fill("#muac_mm", "109")
    sign = page.locator("#preview .badge.sam[data-code='sign.muac_lt_115']")
    expect(sign).to_be_visible()
    expect(sign).to_have_text(
        "PB < 11,5 cm: remitir" if lang == "es" else "PB < 11,5 cm: encaminhar"
    )
    expect(page.locator("#preview [data-code='acute.none']")).to_have_count(0)
    expect(page.locator("#preview .badge.ok")).to_have_count(0)
    expect(page.locator("#referral")).to_have_value("health_facility")
    expect(page.locator("#preview #verify-notes")).to_be_visible()
    shot(page, f"danger-{lang}")

    # Correcting the MUAC takes the pre-selection back; a referral chosen by hand is kept.
    page.fill("#muac_mm", "135")
    expect(page.locator("#preview [data-code='sign.muac_lt_115']")).to_have_count(0)
    expect(page.locator("#referral")).to_have_value("none")
    page.fill("#muac_mm", "109")
    expect(page.locator("#referral")).to_have_value("health_facility")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(url)
    expect(page.locator("#current .badge.sam[data-code='sign.muac_lt_115']")).to_be_visible()
    expect(page.locator("#current [data-code='acute.none']")).to_have_count(0)


@pytest.mark.parametrize("lang", LANGS)
def test_a_pregnant_woman_with_unknown_weeks_saves(
    page: Page, co_server: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, co_server, lang)
    url = register(
        page, co_server, "woman", "Carmen" if lang == "es" else "Rosângela", date(1998, 7, 1)
    )
    page.click("#new-visit")
    page.select_option("#pregnancy_status", "pregnant")
    page.fill("#weight_kg", "61,5")
    page.fill("#height_cm", "156,0")
    page.fill("#muac_mm", "245")
    page.fill("#hb_g_l", "107,0")
    unknown = "Trimestre desconocido" if lang == "es" else "Trimestre desconhecido"
    expect(page.locator("#preview #gestation")).to_contain_text(unknown)
    expect(page.locator("#preview [data-code='anaemia.mild']")).to_be_visible()
    shot(page, f"pregnant-unknown-{lang}")
    page.click("button[type=submit].primary")
    expect(page).to_have_url(url)
    expect(page.locator(".flash.success")).to_be_visible()
    expect(page.locator("#current #gestation")).to_contain_text(unknown)
    expect(page.locator("#current #hb-trimester-unknown")).to_be_visible()

    # Her height was asked once: the next visit's form already has it.
    page.click("#new-visit")
    expect(page.locator("#height_cm")).to_have_value(re.compile(r"^156(\.0)?$"))
