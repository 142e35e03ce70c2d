"""A supervisor's pages and the printed summary on the demo instance, in a real browser at
1366×768, in Spanish and Portuguese (issue 15, items 5 and 6): the review queue in the menu,
transfers out beside transfers in, sites by name, a destination nobody pre-chose, and a summary
that names who, where and what. Screenshots go to test-artifacts/e2e."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Instance, _env, contigo_command
from tests.e2e.test_field_day import post

if TYPE_CHECKING:
    from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
DEMO_PASSWORD = "contigo-demo"
SUPERVISOR = "necocli.sup"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A small demo instance (four sites in two countries), served."""
    folder = tmp_path_factory.mktemp("contigo-demo")
    result = subprocess.run(
        [*contigo_command(), "--instance", str(folder), "demo", "--persons", "20", "--women", "6"],
        capture_output=True, text=True, env=_env({}), timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr or result.stdout
    holder = Instance(folder)
    server = holder.serve()
    server.password = DEMO_PASSWORD
    yield server
    server.stop()


def sign_in(page: Page, server: Server, username: str, lang: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()
    page.click(f".lang-switch button[value={lang}]")
    expect(page.locator("html")).to_have_attribute("lang", lang)


def a_child(page: Page, server: Server, given: str, **extra: str) -> str:
    born = (date.today() - timedelta(days=400)).isoformat()
    return post(page, f"{server.url}/persons/new", {
        "kind": "child", "given_names": given, "family_names": "Arango Mejía", "birth_date": born,
        "birth_date_precision": "exact", "sex": "M", "nationality": "CO",
        "population_type": "host_community", "confirm": "register_anyway", **extra})  # fmt: skip


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_a_supervisor_sees_the_queue_and_transfers_both_ways_by_site_name(
    page: Page, demo: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, demo, SUPERVISOR, lang)
    review = page.locator("nav #nav-review")
    expect(review).to_have_text(re.compile("Revisión" if lang == "es" else "Revisão"))
    person = a_child(page, demo, f"Tomás {lang.upper()}")
    page.goto(f"{demo.url}{person}")
    page.click("#transfer-link")
    destination = page.locator("#to_site_id")
    expect(destination).to_have_value("")
    expect(destination.locator("option").nth(1)).not_to_have_text(re.compile(r"^[A-Z]{2}-"))
    reason = "La familia se muda a Tulcán" if lang == "es" else "A família vai morar em Tulcán"
    page.fill("#reason", reason)
    shot(page, f"transfer-form-{lang}")
    page.click("#transfer-form button[type=submit]")
    expect(page.locator("#to_site_id-error")).to_be_visible()
    expect(page.locator("#reason")).to_have_value(reason)
    shot(page, f"transfer-empty-destination-{lang}")
    tulcan = destination.locator("option", has_text="Tulcán").get_attribute("value") or ""
    page.select_option("#to_site_id", tulcan)
    page.click("#transfer-form button[type=submit]")
    banner = page.locator("#transfer-pending-banner")
    expect(banner).to_contain_text("Tulcán")
    expect(banner).not_to_contain_text("EC-TUL")
    shot(page, f"transfer-requested-{lang}")
    page.click("nav #nav-transfers")
    outgoing = page.locator("#outgoing-transfers")
    expect(page.locator("#incoming-transfers")).to_be_visible()
    row = outgoing.locator("tr", has_text=f"Tomás {lang.upper()}")
    expect(row).to_contain_text("Tulcán")
    expect(row).to_contain_text(reason)
    expect(outgoing.locator("h2")).to_contain_text(
        "Transferencias enviadas" if lang == "es" else "Transferências enviadas"
    )
    shot(page, f"transfers-both-ways-{lang}")
    review.click()
    expect(page.locator("#review-items")).to_be_visible()
    shot(page, f"review-queue-{lang}")


def a_visit(page: Page, server: Server, person: str, ago: int, weight: str, **extra: str) -> None:
    on = (date.today() - timedelta(days=ago)).isoformat()
    post(page, f"{server.url}{person}/encounters/new", {
        "occurred_on": on, "weight_kg": weight, "lenhei_cm": "76.0", "measure": "l",
        "muac_mm": "121", "oedema_grade": "0", "referral": "none", **extra})  # fmt: skip


@pytest.mark.parametrize("lang", ["es", "pt"])
def test_the_printed_summary_names_the_family_the_findings_and_the_worker(
    page: Page, demo: Server, shot: Shot, lang: str
) -> None:
    sign_in(page, demo, "necocli.hw", lang)
    mother = post(page, f"{demo.url}/persons/new", {
        "kind": "woman", "given_names": f"Yuleidy {lang.upper()}", "family_names": "Arango Mejía",
        "birth_date": "1998-07-14", "birth_date_precision": "exact", "sex": "F",
        "nationality": "VE", "population_type": "in_transit", "phone": "+57 311 222 3344",
        "address": "Vereda El Totumo, casa 4", "confirm": "register_anyway"})  # fmt: skip
    child = a_child(page, demo, f"Samuel {lang.upper()}", mother_id=mother.rsplit("/", 1)[-1])
    for days_ago, weight in ((120, "7.9"), (90, "8.0"), (60, "8.1")):
        a_visit(page, demo, child, days_ago, weight)
    a_visit(page, demo, child, 2, "8.2", appetite_test="fail", danger_signs="1",
            notes="Diarrea hace dos días; vomita todo", referral="inpatient")  # fmt: skip
    page.goto(f"{demo.url}/referrals/persons/{child.rsplit('/', 1)[-1]}/new")
    tulcan = page.locator("#to option", has_text="Tulcán").first.get_attribute("value") or ""
    post(page, f"{demo.url}/referrals/persons/{child.rsplit('/', 1)[-1]}/new",
         {"to": tulcan, "reason": "sam_complicated", "urgency": "emergency"})  # fmt: skip
    page.goto(f"{demo.url}{child}/print")
    expect(page.locator("#print-caregiver")).to_contain_text(f"Yuleidy {lang.upper()} Arango Mejía")
    expect(page.locator("#print-phone")).to_have_text("+57 311 222 3344")
    expect(page.locator("#print-address")).to_have_text("Vereda El Totumo, casa 4")
    failed = "No pasa" if lang == "es" else "Não passou"
    expect(page.locator("#print-appetite")).to_have_text(failed)
    expect(page.locator("#print-danger")).to_contain_text("Sí" if lang == "es" else "Sim")
    expect(page.locator("#print-notes")).to_have_text("Diarrea hace dos días; vomita todo")
    expect(page.locator("#print-referrals")).to_contain_text("Tulcán")
    expect(page.locator("#print-recent tbody tr")).to_have_count(3)
    expect(page.locator("#print-seen-by")).to_contain_text("Luis Alberto Mena")
    expect(page.locator("#print-printed")).to_contain_text("Luis Alberto Mena")
    expect(page.locator("article.summary")).not_to_contain_text("necocli.hw")
    shot(page, f"printed-summary-{lang}")
    page.emulate_media(media="print")
    shot(page, f"printed-summary-print-{lang}")
