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
