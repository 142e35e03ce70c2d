"""Sync from a laptop's pages in Chromium, against a real central server.

The central is gunicorn over PostgreSQL (:func:`tests.sync.live.central_server`); the laptop is
made with ``contigo init``, enrolled with ``contigo enrol`` and served by ``contigo serve`` in
its own process, as in the field. A health worker registers a child, sees the record pending,
presses "Sync now", watches the progress, and sees the record synced and on the central.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from contigo.persons.models import Person
from sync.models import SyncOp
from tests.e2e.conftest import Server, _wait_until_up, contigo_command, free_port
from tests.e2e.test_flow import months_ago, register
from tests.sync.live import FAST, PASSWORD, Central, central_server, enrolled_laptops

pytestmark = pytest.mark.e2e

SITE = "CO-UM-77"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    with central_server(tmp_path_factory.mktemp("sync-browser")) as running:
        yield running


def serve(instance: Path) -> Server:
    """``contigo serve`` over an enrolled laptop's folder; automatic sync off, so only the
    button syncs."""
    port = free_port()
    log = instance.parent / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTIGO_")}
    env |= FAST | {"CONTIGO_AUTO_SYNC_SECONDS": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*contigo_command(), "--instance", str(instance), "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    server = Server(instance, port, process, log, username="sup", password=PASSWORD)
    _wait_until_up(server)
    return server


def test_sync_now_sends_a_new_record_with_progress_and_marks_it_synced(
    page: Page, central: Central, tmp_path: Path
) -> None:
    with enrolled_laptops(tmp_path, central) as make:
        laptop = make("field", SITE)
        server = serve(laptop.instance)
        try:
            page.goto(f"{server.url}/login")
            page.fill("#username", "sup")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit].primary")
            expect(page.locator(".lock-form button")).to_be_visible()

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
