"""In a real browser over ``contigo serve``: registering "Sara Chacón Ochoa" a second time, a month
off and without the accent, warns of the first record before anything is saved; registering
anyway needs the explicit confirmation."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_flow import register, unlock

if TYPE_CHECKING:
    from tests.e2e.conftest import Instance, Server

pytestmark = pytest.mark.e2e

Shot = Callable[[Page, str], None]
BORN = date.today() - timedelta(days=420)


@pytest.fixture(scope="module")
def server(instance: Instance) -> Server:
    return instance.serve()


def test_sara_chacon_ochoa_registered_a_month_off_is_warned_of(
    page: Page, server: Server, shot: Shot
) -> None:
    unlock(page, server)
    page.goto(f"{server.url}/persons/new")
    first = register(page, "child", ("Sara", "Chacón Ochoa"), BORN, "F")

    page.goto(f"{server.url}/persons/new")
    page.check("input[name=kind][value=child]")
    page.fill("#given_names", "Sara")
    page.fill("#family_names", "Chacon Ochoa")
    page.fill("#birth_date", (BORN + timedelta(days=31)).isoformat())
    page.check("input[name=sex][value=F]")
    page.select_option("#nationality", "VE")
    page.click("button[type=submit].primary")

    warning = page.locator("#duplicates")
    expect(warning).to_be_visible()
    shot(page, "warned")
    link = warning.locator("a").first
    expect(link).to_contain_text("Sara Chacón Ochoa")
    assert first.endswith(str(link.get_attribute("href")))
    page.click("button[type=submit].primary")  # without the confirmation: still only a warning
    expect(page.locator("#duplicates")).to_be_visible()
    page.check("#confirm")
    page.click("button[type=submit].primary")
    expect(page.locator("h1")).to_have_text("Sara Chacon Ochoa")
    assert re.search(r"/persons/[0-9a-f]+$", page.url) and page.url != first
