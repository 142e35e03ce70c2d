"""Card test helpers: laptops at sites of two countries enrolled at one central, a child with
visits, and a QR code rendered to PNG and read back by a real decoder (zxing-cpp)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import segno
import zxingcpp
from flask import Flask
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.exchange.laptop.client import enrol_laptop
from contigo.persons import services as persons
from contigo.setup import initialise
from contigo.sites.services import add_site, by_code
from contigo.vault import get_vault
from tests.exchange.conftest import PASSWORD, enrolment_code
from tests.factories import CHILD, VISIT

BR_SITE = "BR-BV"


def add_central_site(central: Flask, code: str, name: str, country: str) -> None:
    with session_scope(central) as s:
        if by_code(s, code) is None:
            add_site(s, code=code, name=name, country=country)


def make_laptop(folder: Path, site_code: str, site_name: str, country: str) -> Flask:
    """An initialised laptop at ``site_code``, unlocked by user "sup" (language English)."""
    app = create_app(
        {"INSTANCE_PATH": str(folder), "SCRYPT_N": 2**10, "IDLE_WATCH": False, "TESTING": True}
    )
    initialise(
        app,
        site_code=site_code,
        site_name=site_name,
        country=country,
        elevation_m=5,
        username="sup",
        display_name="Sup",
        language="en",
        password=PASSWORD,
    )
    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
        get_vault(app).load_index_key(s)
        get_vault(app).build_name_index(s)
    return app


def enrol(field: Flask, central: Flask, site_code: str) -> None:
    """Enrol ``field`` at ``site_code`` through central's test client."""
    client = central.test_client()

    def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = client.post("/sync/v1/enrol", json=body, base_url="http://localhost")
        return resp.status_code, resp.get_json(silent=True)

    code = enrolment_code(central, site_code)
    enrol_laptop(field, central_url="http://localhost", code=code, post=post)


@contextmanager
def as_sup(app: Flask) -> Iterator[tuple[Session, User]]:
    """A session (committed at the end) and the laptop's user "sup", in a request context."""
    with app.test_request_context(), session_scope(app) as s:
        user = s.scalar(select(User).where(User.username == "sup"))
        assert user is not None
        yield s, user


def child_with_visits(app: Flask, visits: int, *, every_days: int = 20) -> str:
    """A child registered at the laptop's site with ``visits`` visits, the last yesterday."""
    span = every_days * visits + 30
    with as_sup(app) as (s, user):
        born = date.today() - timedelta(days=span)
        pid = persons.register(
            s, get_vault(app), user, user.home_site_id, {**CHILD, "birth_date": born}
        ).id
    for i in range(visits):
        on = date.today() - timedelta(days=1 + every_days * (visits - 1 - i))
        months = (on - born).days / 30.4
        first, after = min(months, 12), max(months - 12, 0)
        data = {
            **VISIT,
            "occurred_on": on,
            "weight_kg": round(3.4 + 0.45 * first + 0.18 * after, 1),
            "lenhei_cm": round(50 + 2.0 * first + 0.8 * after, 1),
            "measure": "l" if months < 24 else "h",
            "muac_mm": 120 + i % 20 if months >= 6 else None,
            "hb_g_l": 100.0 + i % 15 if months >= 6 else None,
        }
        with as_sup(app) as (s, user):
            encounters.record(s, get_vault(app), user, pid, user.home_site_id, data)
    return pid


def qr_png(text: str, scale: int = 4) -> bytes:
    """The card's QR code as PNG bytes (segno, level M, quiet zone of 4 modules)."""
    buf = io.BytesIO()
    segno.make(text, error="m", micro=False, boost_error=False).save(
        buf, kind="png", scale=scale, border=4
    )
    return buf.getvalue()


def decode_png(png: bytes) -> str:
    """The text of the one QR code in ``png``, read by zxing-cpp."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1 and found[0].format == zxingcpp.BarcodeFormat.QRCode
    return str(found[0].text)
