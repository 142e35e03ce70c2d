"""Caseload and reports in Chromium, on a gunicorn + PostgreSQL central filled by real sync
from two laptops in two countries, and on a laptop offline.

Each laptop is made with ``contigo init`` in its country and enrolled with ``contigo enrol``;
its supervisor registers children, admits them to SAM treatment (one long ago, whose visits
stopped: a derived defaulter) and records their visits; ``contigo sync`` pushes them. The
central's reporting table is fed as the pushes are applied. Then:

- Colombia's nutrition lead filters to a site, opens the defaulter from the line list, and
  downloads the line list and the indicators as XLSX, which openpyxl reads with the same rows;
- Ecuador's lead sees none of Colombia's persons, and cannot open one;
- with the central stopped (by the last test), the Colombian laptop's supervisor sees their
  site's caseload.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.cli import main
from contigo.db import session_scope
from contigo.episodes import services as episodes
from contigo.reports.feed import Pseudonymiser, surrogate
from contigo.reports.models import ReportFact, ReportReach
from contigo.sites.models import Site
from contigo.vault import get_vault
from tests.e2e.conftest import Instance
from tests.exchange.live import (
    FAST,
    PASSWORD,
    Central,
    Laptop,
    central_server,
    record_visit,
    register_child,
    secret_file,
)

pytestmark = pytest.mark.e2e
LEAD_PASSWORD = "a lead's long password"
SITES = {"CO": "CO-RPT-1", "EC": "EC-RPT-1"}


@dataclass
class World:
    """What the test module built: the children of each country, by role in the story."""

    folder: Path
    laptops: dict[str, Laptop]
    treated: dict[str, str]
    defaulter: dict[str, str]


def field_laptop(folder: Path, site: str, country: str, central: Central) -> Laptop:
    """``contigo init`` a laptop of ``country`` and enrol it (its site made on central)."""
    pw = secret_file(folder, "pw", PASSWORD)
    inst = folder / "instance"
    env: dict[str, str | None] = {"CONTIGO_DATABASE_URL": None, "CONTIGO_MODE": None, **FAST}
    result = CliRunner().invoke(main, [
        "--instance", str(inst), "init", "--site-code", site, "--site-name", f"Unidad {site}",
        "--country", country, "--username", "sup", "--language", "en", "--password-file", pw,
    ], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    code = central.cli("device", "enrol", "--site", site, "--country", country)
    assert code.exit_code == 0, code.output
    result = CliRunner().invoke(main, [
        "--instance", str(inst), "enrol", "--central", central.url, "--code", code.stdout.strip(),
        "--as", "sup", "--as-password-file", pw,
    ], env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    app = create_app({"INSTANCE_PATH": str(inst), "IDLE_WATCH": False, "TESTING": True})
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
        get_vault(app).load_index_key(s)
        get_vault(app).build_name_index(s)
    return Laptop(instance=inst, password_file=pw, app=app)


def admit_sam(app: Flask, person_id: str, days_ago: int) -> None:
    on = date.today() - timedelta(days=days_ago)
    with app.test_request_context(), session_scope(app) as s:
        sup = s.scalars(select(User).where(User.username == "sup")).one()
        episodes.admit(s, get_vault(app), sup, person_id, sup.home_site_id,
                       programme="sam_otp", admitted_on=on, criteria=["muac"])  # fmt: skip


def add_lead(central: Central, username: str, country: str) -> None:
    with session_scope(central.app) as s:
        site = s.scalars(select(Site).where(Site.code == SITES[country])).one()
        auth.add_user(s, get_vault(central.app), username=username, display_name=username,
                      role="nutrition_lead", password=LEAD_PASSWORD, site_id=site.id,
                      language="en", country=country)  # fmt: skip


@pytest.fixture(scope="module")
def central(
    tmp_path_factory: pytest.TempPathFactory, world_folder: Path
) -> Iterator[tuple[Central, World]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTIGO_SESSION_COOKIE_SECURE", "false")  # plain http on 127.0.0.1
        with central_server(world_folder / "central-world") as running:
            world = World(world_folder, {}, {}, {})
            for country, site in SITES.items():
                laptop = field_laptop(world_folder / country, site, country, running)
                world.laptops[country] = laptop
                treated = register_child(laptop.app)
                admit_sam(laptop.app, treated, 3)
                record_visit(laptop.app, treated, 3)
                gone = register_child(laptop.app)
                admit_sam(laptop.app, gone, 80)
                record_visit(laptop.app, gone, 80)
                world.treated[country], world.defaulter[country] = treated, gone
                sync = laptop.sync()
                assert sync.exit_code == 0, sync.output
                add_lead(running, f"lead.{country.lower()}", country)
            yield running, world
    for laptop in world.laptops.values():
        laptop.close()


@pytest.fixture(scope="module")
def world_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports-world")


def sign_in(page: Page, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()
    if page.locator("html").get_attribute("lang") != "en":
        page.click(".lang-switch button[value=en]")


def table_rows(page: Page, selector: str) -> list[list[str]]:
    rows = page.locator(f"{selector} tbody tr")
    return [
        [c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()]
        for i in range(rows.count())
    ]


def test_central_fed_its_reporting_table_from_the_pushes(central: tuple[Central, World]) -> None:
    """Each child's admission is an episode fact on central, and its visit a screening folded
    into the reach (the month's bit of its person's row), in its country."""
    running, world = central
    pseudo = Pseudonymiser.of(get_vault(running.app))
    with session_scope(running.app) as s:
        episodes = set(s.execute(select(ReportFact.pseudonym, ReportFact.country)).all())
        screened = set(
            s.execute(
                select(ReportReach.person, ReportReach.country, ReportReach.year,
                       ReportReach.months).where(ReportReach.kind == "screen")
            ).all()
        )  # fmt: skip
    want_episodes: set[tuple[str, str]] = set()
    want_screened: set[tuple[int, str, int, int]] = set()
    for country in SITES:
        for child, days_ago in ((world.treated[country], 3), (world.defaulter[country], 80)):
            on = date.today() - timedelta(days=days_ago)
            want_episodes.add((pseudo(child), country))
            want_screened.add((surrogate(pseudo(child)), country, on.year, 1 << (on.month - 1)))
    assert episodes == want_episodes
    assert screened == want_screened


def test_a_lead_filters_opens_a_defaulter_and_exports_xlsx(
    browser: Browser, central: tuple[Central, World], tmp_path: Path
) -> None:
    running, world = central
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    try:
        lead_co_story(context.new_page(), running, world, tmp_path)
    finally:
        context.close()


def lead_co_story(page: Page, running: Central, world: World, tmp_path: Path) -> None:
    sign_in(page, running.url, "lead.co", LEAD_PASSWORD)
    page.goto(f"{running.url}/")
    expect(page).to_have_url(re.compile(r"/caseload/"))
    with session_scope(running.app) as s:
        site_id = s.scalars(select(Site.id).where(Site.code == SITES["CO"])).one()
    page.select_option("select[name=site_id]", value=site_id)
    page.click("#apply-filters")
    page.click("#tab-defaulters")
    expect(page.locator("#list-total")).to_have_text("1")
    row = page.locator(f'tr[data-person="{world.defaulter["CO"]}"]')
    expect(row).to_be_visible()
    with page.expect_download() as download:
        page.click("#export-list-xlsx")
    path = tmp_path / "defaulters.xlsx"
    download.value.save_as(path)
    sheet = load_workbook(path).active
    assert sheet is not None
    exported = [r for r in sheet.iter_rows(min_row=2, values_only=True)]
    shown = table_rows(page, "#line-list")
    assert [r[0] for r in exported] == [re.sub(r"\W", "", s[0])[-9:] for s in shown]
    row.locator("a").first.click()
    expect(page).to_have_url(re.compile(rf"/persons/{world.defaulter['CO']}"))

    page.goto(f"{running.url}/reports/?start={date.today():%Y}-01&end={date.today():%Y-%m}")
    expect(page.locator("#indicators svg, .charts svg").first).to_be_visible()
    with page.expect_download() as download:
        page.click("#export-indicators-xlsx")
    path = tmp_path / "indicators.xlsx"
    download.value.save_as(path)
    sheet = load_workbook(path).active
    assert sheet is not None
    exported_ind = [[str(v) for v in r] for r in sheet.iter_rows(min_row=2, values_only=True)]
    shown_ind = table_rows(page, "#indicators")
    assert len(exported_ind) == len(shown_ind) == 5
    for file_row, page_row in zip(exported_ind, shown_ind, strict=True):
        assert file_row[0] == page_row[0]
        # the file suppresses small cells; the page shows the figures
        for file_cell, page_cell in zip(file_row[1:], page_row[1:], strict=True):
            assert file_cell == page_cell or (file_cell == "<5" and 0 < int(page_cell) < 5)


def test_a_lead_of_another_country_sees_none_of_it(
    browser: Browser, central: tuple[Central, World]
) -> None:
    running, world = central
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        lead_ec_story(context.new_page(), running, world)
    finally:
        context.close()


def lead_ec_story(page: Page, running: Central, world: World) -> None:
    sign_in(page, running.url, "lead.ec", LEAD_PASSWORD)
    seen: set[str] = set()
    for which in ("in_treatment", "defaulters", "overdue"):
        page.goto(f"{running.url}/caseload/?list={which}")
        seen |= {
            page.locator("#line-list tbody tr").nth(i).get_attribute("data-person") or ""
            for i in range(page.locator("#line-list tbody tr").count())
        }
    assert world.defaulter["EC"] in seen
    assert not seen & {world.treated["CO"], world.defaulter["CO"]}
    options = page.locator("select[name=site_id] option").all_inner_texts()
    assert not any(SITES["CO"] in o for o in options)
    response = page.goto(f"{running.url}/persons/{world.defaulter['CO']}")
    assert response is not None and response.status == 403


def stop_central(running: Central) -> None:
    """Stop the central's gunicorn (the module's last test): the laptop is now offline."""
    os.kill(running.pid, signal.SIGTERM)
    for _ in range(300):
        try:
            requests.get(running.url + "/login", timeout=1)
        except requests.ConnectionError:
            return
        except requests.Timeout:
            pass  # shutting down: still listening, no longer answering
        time.sleep(0.1)
    raise AssertionError("the central did not stop")


def test_a_supervisor_on_a_laptop_offline_sees_their_sites_caseload(
    browser: Browser, central: tuple[Central, World]
) -> None:
    running, world = central
    laptop = world.laptops["CO"]
    stop_central(running)
    server = Instance(laptop.instance).serve(CONTIGO_AUTO_SYNC_SECONDS="0", **FAST)
    try:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        page = context.new_page()
        sign_in(page, server.url, "sup", PASSWORD)
        page.goto(f"{server.url}/caseload/")
        expect(page.locator(f'tr[data-person="{world.treated["CO"]}"]')).to_be_visible()
        page.click("#tab-defaulters")
        expect(page.locator(f'tr[data-person="{world.defaulter["CO"]}"]')).to_be_visible()
        expect(page.locator("#referred-not-arrived")).to_be_visible()
        context.close()
    finally:
        server.stop()
