"""Growth charts as WHO Anthro users expect them (issue 15.7), in a real browser at 1366×768, in
Spanish and Portuguese: the page opens on the child's own age range, the other ranges and the
z-score view are one click away, head circumference and BMI are drawn, MUAC starts at 3 months,
and tooltips give dates as dd/mm/aaaa even in a browser set to American English. Screenshots go
to test-artifacts/e2e."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import USERNAME
from tests.e2e.test_field_day import post, sign_in

if TYPE_CHECKING:
    from tests.e2e.conftest import Instance, Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]


@pytest.fixture(scope="module")
def server(instance: Instance) -> Server:
    return instance.serve()


@pytest.fixture
def us_page(browser: Browser) -> Iterator[Page]:
    """A browser whose own locale would write dates month first (en-US)."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def dmy(on: date) -> str:
    return on.strftime("%d/%m/%Y")


def a_baby_seen_three_times(page: Page, server: Server) -> tuple[str, date]:
    """A boy born 140 days ago, seen at 30, 95 and 135 days (head circumference each time)."""
    born = date.today() - timedelta(days=140)
    where = post(page, f"{server.url}/persons/new", {
        "kind": "child", "given_names": "Mateo", "family_names": "Quispe Lima",
        "birth_date": born.isoformat(), "birth_date_precision": "exact", "sex": "M",
        "nationality": "PE", "population_type": "host_community",
        "confirm": "register_anyway"})  # fmt: skip
    visits = ((30, "4.3", "54.0", "37.2", ""), (95, "5.9", "60.5", "40.0", "128"),
              (135, "6.6", "63.0", "41.4", "132"))  # fmt: skip
    for days, weight, length, headc, muac in visits:
        form = {"occurred_on": (born + timedelta(days=days)).isoformat(), "weight_kg": weight,
                "lenhei_cm": length, "measure": "l", "headc_cm": headc, "muac_mm": muac,
                "oedema_grade": "0", "referral": "none"}  # fmt: skip
        post(page, f"{server.url}{where}/encounters/new", form)
    return where, born


def test_charts_open_on_the_child_s_range_in_spanish(
    page: Page, server: Server, shot: Shot
) -> None:
    sign_in(page, server, USERNAME, "es")
    where, born = a_baby_seen_three_times(page, server)
    page.goto(f"{server.url}{where}")
    nav = page.locator("nav.chart-views")
    expect(nav.locator("a[aria-current=page]")).to_contain_text("0 a 6 meses")
    expect(nav.locator("a[aria-current=page]")).to_contain_text("su edad")
    charts = page.locator(".charts svg.growth-chart")
    expect(charts).to_have_count(6)
    head = page.locator("svg.chart-hcfa")
    expect(head).to_have_attribute("aria-label", "Perímetro cefálico para la edad, niños")
    expect(head.locator("g.measurement")).to_have_count(3)
    expect(head.locator("g.measurement title").last).to_have_text(
        f"{dmy(born + timedelta(days=135))}: 41,4 cm a los 4,4 meses"
    )
    expect(page.locator("svg.chart-bfa g.measurement")).to_have_count(3)
    muac = page.locator("svg.chart-muac")
    expect(muac).to_have_attribute("data-x-min", "91")
    expect(muac.locator("text.x-tick").first).to_have_text("3")
    expect(muac.locator("g.measurement")).to_have_count(2)
    page.locator("#charts-h").scroll_into_view_if_needed()
    head.locator("circle.point").last.hover()
    shot(page, "charts-0-6m-es")

    nav.locator("a[data-view='0-2y']").click()
    expect(page.locator("nav.chart-views a[aria-current=page]")).to_contain_text("0 a 2 años")
    expect(page.locator("svg.chart-wfa")).to_have_attribute("data-range", "0-2y")
    expect(page.locator("svg.chart-wfa text.x-tick").last).to_have_text("24")
    shot(page, "charts-0-2y-es")

    page.locator("nav.chart-views a[data-view='z']").click()
    trend = page.locator("svg.chart-z")
    expect(trend).to_have_attribute("aria-label", "Puntuaciones z en el tiempo")
    expect(trend.locator("g.legend-item")).to_have_count(6)
    expect(trend.locator("g.zseries[data-indicator=hcz] g.measurement")).to_have_count(3)
    expect(trend.locator("g.zseries[data-indicator=muacz] g.measurement")).to_have_count(2)
    first = trend.locator("g.zseries[data-indicator=waz] g.measurement title").first
    expect(first).to_contain_text(f"{dmy(born + timedelta(days=30))}: Peso/edad ")
    shot(page, "charts-z-es")


def test_portuguese_dates_do_not_follow_an_american_browser(
    us_page: Page, server: Server, shot: Shot
) -> None:
    page = us_page
    sign_in(page, server, USERNAME, "pt")
    where, born = a_baby_seen_three_times(page, server)
    page.goto(f"{server.url}{where}")
    expect(page.locator("nav.chart-views a[aria-current=page]")).to_contain_text("0 a 6 meses")
    head = page.locator("svg.chart-hcfa")
    expect(head).to_have_attribute("aria-label", "Perímetro cefálico para idade, meninos")
    expect(head.locator("g.measurement title").first).to_have_text(
        f"{dmy(born + timedelta(days=30))}: 37,2 cm com 1 mês"
    )
    expect(page.locator("svg.chart-bfa")).to_have_attribute("aria-label", "IMC para idade, meninos")
    page.locator("#charts-h").scroll_into_view_if_needed()
    shot(page, "charts-0-6m-pt")
    page.locator("nav.chart-views a[data-view='2-5y']").click()
    expect(page.locator("svg.chart-wfh")).to_have_count(1)
    expect(page.locator("svg.chart-wfa g.measurement")).to_have_count(0)
    shot(page, "charts-2-5y-pt")
    page.locator("nav.chart-views a[data-view='z']").click()
    trend = page.locator("svg.chart-z")
    expect(trend).to_have_attribute("aria-label", "Escores z ao longo do tempo")
    expect(trend.locator("g.legend-item").first).to_contain_text("Peso/idade")
    shot(page, "charts-z-pt")
