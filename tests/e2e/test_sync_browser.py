"""Sync from a laptop's pages in Chromium, against a real central server.

The central is gunicorn over PostgreSQL (:func:`tests.exchange.live.central_server`); the laptop is
made with ``contigo init``, enrolled with ``contigo enrol`` and served by ``contigo serve`` in
its own process, as in the field. A health worker registers a child, sees the record pending,
presses "Sync now", watches the progress, and sees the record synced and on the central.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.models import SyncOp
from tests.e2e.conftest import Instance, Server
from tests.e2e.test_flow import months_ago, register
from tests.exchange.live import (
    FAST,
    PASSWORD,
    Central,
    Laptop,
    central_server,
    enrolled_laptops,
    register_child,
)

pytestmark = pytest.mark.e2e

SITE = "CO-UM-77"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with central_server(tmp_path_factory.mktemp("sync-browser")) as running:
        yield running


def serve(instance: Path) -> Server:
    """``contigo serve`` over an enrolled laptop's folder; automatic sync off, so only the
    button syncs."""
    server = Instance(instance).serve(CONTIGO_AUTO_SYNC_SECONDS="0", **FAST)
    server.username, server.password = "sup", PASSWORD  # the laptop's supervisor
    return server


def test_sync_now_sends_a_new_record_with_progress_and_marks_it_synced(
    page: Page, central: Central, tmp_path: Path
) -> None:
    with enrolled_laptops(tmp_path, central) as make:
        laptop = make("field", SITE)
        server = serve(laptop.instance)
        try:
            sign_in(page, server)
            page.goto(f"{server.url}/persons/new")
            person_url = register(page, "child", ("Lucía", "Mora Ríos"), months_ago(20), "F")
            found = re.search(r"/persons/([0-9a-f]+)$", person_url)
            assert found is not None, person_url
            person_id = found.group(1)
            expect(page.locator("#sync-badge")).to_have_attribute("data-sync-status", "pending")
            assert central.count(Person, Person.id == person_id) == 0

            page.goto(f"{server.url}/synchronisation/")
            expect(page.locator("#waiting-count")).not_to_have_text("0")
            page.click("#sync-button")
            # The page polls the run and reloads when it ends.
            phase = page.locator("[data-field=phase_text]")
            expect(phase).to_have_text("Sync finished", timeout=60_000)
            expect(page.locator("#waiting-count")).to_have_text("0", timeout=30_000)
            progress = page.locator("[data-field=progress_text]").inner_text()
            assert re.search(r"Batches sent: [1-9]", progress), progress
            expect(page.locator("#attention-count")).to_have_text("0")

            page.goto(person_url)
            expect(page.locator("#sync-badge")).to_have_attribute("data-sync-status", "synced")
            assert central.count(Person, Person.id == person_id) == 1
            assert central.count(SyncOp, SyncOp.person_id == person_id) >= 1
            assert "Lucía" not in server.log.read_text(errors="replace")  # nor in its log
        finally:
            server.stop()


def sign_in(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#username", server.username)
    page.fill("#password", server.password)
    page.click("button[type=submit].primary")
    expect(page.locator(".lock-form button")).to_be_visible()


def rename(laptop: Laptop, person_id: str, given: str) -> None:
    """Edit a REVIEW field (the given names) through the service, as the person page does."""
    with laptop.app.test_request_context(), session_scope(laptop.app) as s:
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        persons.update(s, get_vault(laptop.app), actor, person_id, {"given_names": given})


def given_names(laptop: Laptop, person_id: str) -> str:
    with session_scope(laptop.app) as s:
        person = s.get(Person, person_id)
        assert person is not None
        return persons.decrypt(get_vault(laptop.app), person).given_names


def test_a_supervisor_resolves_a_concurrent_edit_side_by_side_and_it_syncs(
    page: Page, central: Central, tmp_path: Path
) -> None:
    """Two laptops of one unit rename the same child offline: the second push opens a review
    item instead of overwriting; the supervisor compares both in Chromium, picks one, and the
    choice reaches the central and the other laptop."""
    with enrolled_laptops(tmp_path, central) as make:
        first, second = make("first", "CO-UM-78"), make("second", "CO-UM-78")
        person_id = register_child(first.app)
        assert first.sync().exit_code == 0 and second.sync().exit_code == 0
        rename(first, person_id, "Valentina")
        rename(second, person_id, "Valeria")
        for laptop in (first, second, first):
            assert laptop.sync().exit_code == 0
        server = serve(first.instance)
        try:
            sign_in(page, server)
            page.goto(f"{server.url}/review/")
            row = page.locator("#review-items tr", has_text="Given names")
            expect(row).to_contain_text("Conflicting edits")
            row.locator("a").click()
            candidates = page.locator("#candidates article.candidate")
            expect(candidates).to_have_count(2)
            expect(candidates.nth(0)).to_contain_text("Valentina")
            expect(candidates.nth(1)).to_contain_text("Valeria")
            for i in range(2):  # who, where and when, for each side
                expect(candidates.nth(i)).to_contain_text("CO-UM-78")
                expect(candidates.nth(i)).to_contain_text("UTC")
            candidates.filter(has_text="Valeria").locator("button[type=submit]").click()
            expect(page.locator(".flash.success")).to_be_visible()

            page.goto(f"{server.url}/synchronisation/")
            page.click("#sync-button")
            expect(page.locator("[data-field=phase_text]")).to_have_text(
                "Sync finished", timeout=60_000
            )
            expect(page.locator("#waiting-count")).to_have_text("0", timeout=30_000)
        finally:
            server.stop()
        assert second.sync().exit_code == 0
        assert given_names(first, person_id) == given_names(second, person_id) == "Valeria"
        with session_scope(central.app) as s:
            on_central = s.get(Person, person_id)
            assert on_central is not None
            assert persons.decrypt(get_vault(central.app), on_central).given_names == "Valeria"
