"""Reading a family card with the laptop's camera: Chromium's fake capture device is fed the
printed card's QR code (a Y4M video made from the PNG), the page's vendored jsQR decodes it,
and the server verifies the card; no network beyond the laptop itself."""

from __future__ import annotations

import io
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from PIL import Image
from playwright.sync_api import expect, sync_playwright
from waitress.server import create_server

from contigo.vault import get_vault
from tests.card.helpers import (
    BR_SITE,
    add_central_site,
    child_with_visits,
    enrol,
    make_laptop,
    qr_png,
)
from tests.card.test_card import issue
from tests.e2e.conftest import CHROMIUM_ARGS, free_port
from tests.exchange.conftest import PASSWORD, SITE, central

pytestmark = pytest.mark.e2e
__all__ = ["central"]


def y4m_from_png(png: bytes, path: Path, width: int = 640, height: int = 480) -> None:
    """A two-frame 4:2:0 Y4M video of the image centred on white (what the fake camera plays)."""
    image = Image.open(io.BytesIO(png)).convert("L")
    frame = Image.new("L", (width, height), 255)
    frame.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    chroma = bytes([128]) * (width // 2) * (height // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(2):
            out.write(b"FRAME\n" + frame.tobytes() + chroma + chroma)


@pytest.fixture
def served_reader(central: Flask, tmp_path: Path) -> Iterator[tuple[Flask, Flask, str]]:
    """Laptop ``co`` (issues), and laptop ``br`` served over real HTTP (reads)."""
    add_central_site(central, BR_SITE, "Boa Vista", "BR")
    co = make_laptop(tmp_path / "co", SITE, "Necoclí", "CO")
    br = make_laptop(tmp_path / "br", BR_SITE, "Boa Vista", "BR")
    enrol(co, central, SITE)
    enrol(br, central, BR_SITE)
    port = free_port()
    server = create_server(br, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield co, br, f"http://127.0.0.1:{port}"
    server.close()
    thread.join(timeout=10)
    for app in (co, br):
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def test_a_card_is_read_from_the_camera(
    served_reader: tuple[Flask, Flask, str], tmp_path: Path
) -> None:
    co, _br, url = served_reader
    card = issue(co, child_with_visits(co, 8), "es")
    video = tmp_path / "card.y4m"
    y4m_from_png(qr_png(card.text, scale=3), video)
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=args)
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en")
        context.grant_permissions(["camera"], origin=url)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto(f"{url}/login")
        page.fill("#username", "sup")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.click("#nav-card-read")
        expect(page).to_have_url(re.compile(r"/cards/read"))
        page.click("#card-camera")
        expect(page.locator("#card-verified")).to_be_visible()  # decoded, posted, verified
        expect(page.locator("#card-verified")).to_contain_text("Necoclí")
        expect(page.locator(".card-name")).to_contain_text(card.claims.given_names)
        page.click("#card-create")
        expect(page.locator("#card-visits")).to_contain_text("from the family's card")
        browser.close()
