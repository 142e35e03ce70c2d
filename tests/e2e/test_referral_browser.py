"""A referral across the border in Chromium, on the pages of two laptops served by ``contigo
serve`` and synced with a real central server (gunicorn over PostgreSQL).

Colombia: the person page after a complicated-SAM visit offers "Refer"; the form comes
pre-filled with an emergency to the nearest inpatient facility; the health worker sends the
child to the unit in Ecuador instead, prints the slip (A5 and A4, rendered by Chromium in print
media and checked to fit one page). Ecuador, after its sync: the referral in its inbox, the
child's history, the arrival visit recorded on the visit form, then "Arrived and attended" from
the person page. Colombia, after its next sync: the trail shows the referral attended, and the
home page's list of referrals not received is empty. Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.referrals.models import Referral
from contigo.vault import get_vault
from tests.e2e.conftest import ARTIFACTS, Instance, Server
from tests.e2e.test_sync_browser import sign_in
from tests.exchange.live import (
    FAST,
    PASSWORD,
    Central,
    Laptop,
    _sup,
    central_server,
    enrolled_laptops,
    register_child,
)
from tests.factories import VISIT

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
#: A5 and A4 at CSS pixels (96 per inch).
PAGES = {"a5": (559, 794), "a4": (794, 1123)}


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with central_server(tmp_path_factory.mktemp("referral-browser")) as running:
        yield running


def synced(laptop: Laptop) -> None:
    result = laptop.sync()
    assert result.exit_code == 0, result.output


def serve_now(laptop: Laptop) -> Server:
    """``contigo serve`` over the laptop's folder, with automatic sync off and the home page
    listing referrals not received from the day they are sent."""
    server = Instance(laptop.instance).serve(
        CONTIGO_AUTO_SYNC_SECONDS="0", CONTIGO_REFERRAL_WAIT_DAYS="0", **FAST
    )
    server.username, server.password = "sup", PASSWORD
    return server


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """The size in points of each page of a PDF Chromium wrote (its page objects' MediaBox)."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]


def slip_fits_one_page(page: Page, url: str, size: str, name: str) -> None:
    """Render the slip as it prints (print media, the paper's size) to PNG, and check that the
    referral and its counter-referral part fit one sheet, QR codes included."""
    width, height = PAGES[size]
    page.set_viewport_size({"width": width, "height": height})
    page.emulate_media(media="print")
    page.goto(url)
    page.screenshot(path=str(ARTIFACTS / f"referral-slip-{name}-{size}.png"), full_page=True)
    box = page.locator("#referral-slip").bounding_box()
    assert box is not None and box["height"] <= height, (size, box)
    for qr in page.locator("svg.qr").all():
        square = qr.bounding_box()
        assert square is not None and square["width"] >= 80  # ≥ 21 mm: a phone reads it
    expect(page.locator("#slip-counter")).to_be_visible()
    pdf = page.pdf(prefer_css_page_size=True)
    (ARTIFACTS / f"referral-slip-{name}-{size}.pdf").write_bytes(pdf)
    points = {"a5": (419.5, 595.3), "a4": (595.3, 841.9)}[size]
    pages = pdf_pages(pdf)
    assert len(pages) == 1, pages  # one sheet, at the paper size of the print stylesheet
    assert all(abs(a - b) < 1.5 for a, b in zip(pages[0], points, strict=True)), pages
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1366, "height": 768})


def test_a_referral_from_colombia_reaches_ecuador_and_comes_back_attended(
    browser: Browser, central: Central, tmp_path: Path, shot: Shot, request: pytest.FixtureRequest
) -> None:
    tag = hashlib.sha256(request.node.name.encode()).hexdigest()[:6].upper()
    co_code, ec_code = f"CO-{tag}", f"EC-{tag}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with enrolled_laptops(tmp_path, central) as make:
        co, ec = make("co", co_code, "CO"), make("ec", ec_code, "EC")
        added = central.cli(
            *("facility", "add", "--code", f"H-{tag}", "--country", "CO", "--inpatient"),
            *("--name", "Hospital San Rafael", "--kind", "hospital", "--serves", co_code),
        )
        assert added.exit_code == 0, added.output
        synced(co)
        synced(ec)
        pid = register_child(co.app)
        with co.app.test_request_context(), session_scope(co.app) as s:
            actor = _sup(s)
            yesterday = date.today() - timedelta(days=1)
            data = {**VISIT, "muac_mm": 108, "danger_signs": True, "occurred_on": yesterday}
            encounters.record(s, get_vault(co.app), actor, pid, actor.home_site_id, data)
        servers: list[Server] = []
        try:
            co_server = serve_now(co)
            servers.append(co_server)
            co_page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            sign_in(co_page, co_server)
            co_page.goto(f"{co_server.url}/persons/{pid}")
            expect(co_page.locator("#referral-trail")).to_be_visible()
            shot(co_page, "co-person")
            co_page.click("#refer-link")
            expect(co_page.locator("#referral-emergency")).to_be_visible()
            selected = co_page.locator("#to option:checked")
            expect(selected).to_contain_text("Hospital San Rafael")
            expect(co_page.locator("#urgency option:checked")).to_have_text("Emergency")
            shot(co_page, "co-form-emergency")
            co_page.select_option("#to", label=f"{ec_code} (EC)")
            co_page.select_option("#reason", "sam")
            co_page.select_option("#urgency", "priority")
            co_page.fill("#notes", "La familia sigue hacia Tulcán")
            co_page.click("#send-referral")
            expect(co_page.locator("#referral-state")).to_have_attribute("data-state", "sent")
            expect(co_page.locator("#referral-to")).to_contain_text(f"{ec_code} (EC)")
            shot(co_page, "co-referral-sent")
            co_page.goto(f"{co_server.url}/")
            expect(co_page.locator("#referrals-waiting-list li")).to_have_count(1)
            shot(co_page, "co-home-not-received")
            co_page.go_back()
            slip_url = co_page.locator("#slip-a5").get_attribute("href")
            assert slip_url is not None
            slip_fits_one_page(co_page, co_server.url + slip_url, "a5", "co")
            slip_fits_one_page(co_page, co_server.url + slip_url + "?size=a4", "a4", "co")
            co_server.stop()
            synced(co)
            synced(ec)

            ec_server = serve_now(ec)
            servers.append(ec_server)
            ec_page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            sign_in(ec_page, ec_server)
            expect(ec_page.locator("#nav-referrals-count")).to_have_text("1")
            ec_page.click("#nav-referrals")
            row = ec_page.locator("#incoming-referrals tr[data-referral]")
            expect(row).to_have_count(1)
            expect(row).to_contain_text(f"{co_code} (CO)")
            shot(ec_page, "ec-inbox")
            row.locator("a").first.click()
            expect(ec_page.locator("[data-referral-arrival]")).to_be_visible()
            shot(ec_page, "ec-person-history")
            ec_page.click("#new-visit")
            expect(ec_page.locator("[data-referral-waiting]")).to_be_visible()
            ec_page.fill("#weight_kg", "7.4")
            ec_page.fill("#lenhei_cm", "74")
            ec_page.fill("#muac_mm", "112")
            ec_page.click("button[type=submit].primary")
            expect(ec_page.locator(".flash.success")).to_be_visible()
            arrive = ec_page.locator("[data-action=referral-arrive]")
            expect(arrive).to_be_visible()
            shot(ec_page, "ec-visit-offers-arrival")
            arrive.click()
            expect(ec_page.locator("[data-referral-arrival]")).to_have_count(0)
            attended = ec_page.locator("#referral-trail li[data-state=attended]")
            expect(attended).to_have_count(1)
            shot(ec_page, "ec-attended")
            ec_server.stop()
            synced(ec)
            synced(co)

            co_server = serve_now(co)
            servers.append(co_server)
            sign_in(co_page, co_server)
            expect(co_page.locator("#referrals-waiting-list")).to_have_count(0)
            co_page.goto(f"{co_server.url}/persons/{pid}")
            trail = co_page.locator("#referral-trail li[data-state=attended]")
            expect(trail).to_have_count(1)
            expect(trail).to_contain_text(ec_code)
            shot(co_page, "co-trail-attended")
            with session_scope(co.app) as s:
                assert s.scalar(select(Referral.code).where(Referral.person_id == pid))
            assert "Tulcán" not in co_server.log.read_text(errors="replace")
            assert re.search(r"sigue hacia", ec_server.log.read_text(errors="replace")) is None
        finally:
            for server in servers:
                server.stop()
