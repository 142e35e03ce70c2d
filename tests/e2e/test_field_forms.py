"""Registration, the supervisor's pages and the printed summary in a real browser at 1366×768,
in Spanish and Portuguese (issue 15, items 3, 5 and 6). Screenshots go to test-artifacts/e2e."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import USERNAME
from tests.e2e.test_field_day import post, sign_in

if TYPE_CHECKING:
    from tests.e2e.conftest import Instance, Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
MOTHER = {
    "kind": "woman", "family_names": "Quispe Mamani", "birth_date": "1996-03-01", "sex": "F",
    "birth_date_precision": "exact", "nationality": "PE", "population_type": "pendular",
    "phone": "+51 912 345 678", "address": "Jr. Los Pinos 120, Tumbes",
    "confirm": "register_anyway",
}  # fmt: skip


@pytest.fixture(scope="module")
def server(instance: Instance) -> Server:
    return instance.serve()


def a_mother(page: Page, server: Server, given: str) -> str:
    """A woman registered with a phone and an address; the path of her page."""
    return post(page, f"{server.url}/persons/new", {**MOTHER, "given_names": given})


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_register_a_child_from_the_mother_and_find_her_inside_the_form(
    page: Page, server: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, server, USERNAME, lang)
    mother = a_mother(page, server, f"Rosa {lang.upper()}")
    page.goto(f"{server.url}{mother}")
    expect(page.locator("#person-address")).to_have_text("Jr. Los Pinos 120, Tumbes")
    expect(page.locator("#person-phone")).to_have_text("+51 912 345 678")
    page.click(f"a[href='/persons/new?mother={mother.rsplit('/', 1)[-1]}']")
    expect(page.locator("#mother-linked")).to_contain_text(f"Rosa {lang.upper()}")
    expect(page.locator("#family_names")).to_have_value("Quispe Mamani")
    expect(page.locator("#address")).to_have_value("Jr. Los Pinos 120, Tumbes")
    expect(page.locator("#phone")).to_have_value("+51 912 345 678")
    expect(page.locator("#nationality")).to_have_value("PE")
    expect(page.locator("#population_type")).to_have_value("pendular")
    expect(page.locator("input[name=kind][value=child]")).to_be_checked()
    shot(page, f"register-from-mother-{lang}")
    page.fill("#given_names", "Luz" if lang == "es" else "Iara")
    page.fill("#birth_date", (date.today() - timedelta(days=200)).strftime("%d/%m/%Y"))
    page.check("input[name=sex][value=F]")
    page.click("button[type=submit].primary")
    expect(page.locator("#person-address")).to_have_text("Jr. Los Pinos 120, Tumbes")
    expect(page.locator(".contigo-id").first).not_to_contain_text("*")
    shot(page, f"child-registered-{lang}")

    # From the menu: the mother is found by name, and what was typed stays.
    page.goto(f"{server.url}/persons/new")
    page.check("input[name=kind][value=child]")
    page.fill("#given_names", "Sol")
    page.fill("#mother_query", f"rosa {lang} quispe")
    page.locator("#mother_query").press("Enter")
    candidates = page.locator("#mother-candidates li")
    expect(candidates.first).to_contain_text(f"Rosa {lang.upper()} Quispe Mamani")
    expect(page.locator("#given_names")).to_have_value("Sol")
    shot(page, f"mother-found-{lang}")
    candidates.first.locator("button").click()
    expect(page.locator("#mother-linked")).to_contain_text(f"Rosa {lang.upper()}")
    expect(page.locator("#given_names")).to_have_value("Sol")
    expect(page.locator("#family_names")).to_have_value("Quispe Mamani")
    expect(page.locator("#address")).to_have_value("Jr. Los Pinos 120, Tumbes")
    shot(page, f"mother-chosen-{lang}")
