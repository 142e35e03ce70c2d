"""Sync harness: a central app and field laptops, each over its own real SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from flask.testing import FlaskClient

from contigo import create_app
from contigo.db import session_scope
from contigo.exchange.central.keys import initialise_central
from contigo.exchange.laptop.client import device_clock, enrol_laptop, signing_key
from contigo.setup import initialise
from contigo.sites.services import add_site
from contigo.vault import get_vault
from sync.client.transport import Response, SigningClock, send_signed
from sync.protocol import sign_request
from sync.server import wall_ms
from sync.server.devices import issue_code

PASSWORD = "correct horse battery"
SITE = "CO-NEC"


class FlaskTransport:
    """The Transport contract over a Flask test client (in-process, signed like real HTTP,
    stamped with the server's time as learned, like :class:`RequestsTransport`)."""

    def __init__(
        self,
        client: FlaskClient,
        device_id: str,
        key: Ed25519PrivateKey,
        clock: SigningClock | None = None,
    ) -> None:
        self.client, self.device_id, self.key = client, device_id, key
        self.clock = clock or SigningClock()

    def send(self, method: str, path: str, body: Any | None = None) -> Response:
        import json

        raw = b"" if body is None else json.dumps(body).encode()

        def attempt(timestamp_ms: int, nonce: str) -> Response:
            headers = sign_request(
                self.key, method, path, raw, timestamp_ms, nonce, device_id=self.device_id
            )
            resp = self.client.open(
                path,
                method=method,
                data=raw,
                headers=headers,
                content_type="application/json",
                base_url="http://localhost",
            )
            return Response(resp.status_code, resp.get_json(silent=True))

        return send_signed(self.clock, attempt)


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Flask]:
    """A central app on SQLite (the embedded default), initialised, with site CO-NEC."""
    cfg = {
        "INSTANCE_PATH": str(tmp_path / "central"),
        "CONTIGO_MODE": "central",
        "SCRYPT_N": 2**10,
        "IDLE_WATCH": False,
        "TESTING": True,
        "ALLOWED_HOSTS": ("localhost",),
    }
    app = create_app(cfg)
    initialise_central(
        app, username="root", password=PASSWORD, site_code="HQ", site_name="Central", country="CO"
    )
    with session_scope(app) as s:
        add_site(s, code=SITE, name="Necoclí", country="CO")
    app.extensions["contigo.engine"].dispose()
    app = create_app(cfg)  # restarted: unlocks itself from its key file
    yield app
    app.extensions["contigo.engine"].dispose()


def enrolment_code(app: Flask, site_code: str = SITE) -> str:
    """A one-time code for ``site_code`` issued on the central ``app``."""
    from contigo.sites.services import by_code

    with session_scope(app) as s:
        site = by_code(s, site_code)
        assert site is not None
        return issue_code(s, site.id, wall_ms())


def make_field_laptop(folder: Path) -> Flask:
    """An initialised field laptop at site CO-NEC in ``folder``, unlocked by user "sup"."""
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "SCRYPT_N": 2**10,
            "IDLE_WATCH": False,
            "TESTING": True,
        }
    )
    initialise(
        app,
        site_code=SITE,
        site_name="Necoclí",
        country="CO",
        elevation_m=5,
        username="sup",
        display_name="Sup",
        language="en",
        password=PASSWORD,
    )
    from contigo.auth import services as auth

    with session_scope(app) as s:
        auth.authenticate(s, get_vault(app), "sup", PASSWORD, max_failed=5, lockout_s=60)
        get_vault(app).load_index_key(s)
        get_vault(app).build_name_index(s)
    return app


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[Callable[[str], Flask]]:
    """A factory of initialised, unlocked field laptops at site CO-NEC."""
    apps: list[Flask] = []

    def _make(name: str) -> Flask:
        app = make_field_laptop(tmp_path / name)
        apps.append(app)
        return app

    yield _make
    for app in apps:
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def enrol_in_process(field: Flask, central: Flask) -> FlaskTransport:
    """Enrol ``field`` with ``central`` through the Flask test client; returns its transport."""
    client = central.test_client()

    def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = client.post("/sync/v1/enrol", json=body, base_url="http://localhost")
        return resp.status_code, resp.get_json(silent=True)

    enrol_laptop(field, central_url="http://localhost", code=enrolment_code(central), post=post)
    dev, _url, key = signing_key(field)
    # Signed on the laptop's own clock, the one its HLC reads (a test may skew both).
    return FlaskTransport(client, dev, key, SigningClock(device_clock(field)))


SyncedPair = tuple[Flask, Flask, FlaskTransport, FlaskTransport, str]
"""Laptops ``a`` and ``b``, their transports, and the id of the child both hold."""


@pytest.fixture
def synced_pair(central: Flask, laptop: Callable[[str], Flask]) -> SyncedPair:
    """Laptops a and b enrolled at CO-NEC, both holding one child registered on a."""
    from contigo.exchange.laptop.client import run_sync
    from tests.exchange.test_server_apply import register_child

    a, b = laptop("a"), laptop("b")
    ta, tb = enrol_in_process(a, central), enrol_in_process(b, central)
    pid = register_child(a)
    run_sync(a, ta)
    run_sync(b, tb)
    return a, b, ta, tb, pid
