"""A central server (embedded SQLite) with sites in two countries, a user of every role and one
child owned by a site in Ecuador: outside the Colombian users' scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.exchange.central.keys import initialise_central
from contigo.persons import services as persons
from contigo.sites.services import add_site
from contigo.vault import get_vault
from tests.conftest import PASSWORD, csrf_of
from tests.factories import CHILD

#: user → (role, home site code, country)
USERS = {
    "hw_a": ("health_worker", "CO-NEC", None),
    "sup_a": ("supervisor", "CO-NEC", None),
    "hw_b": ("health_worker", "EC-TUL", None),
    "lead_co": ("nutrition_lead", "HQ", "CO"),
    "lead_ec": ("nutrition_lead", "EC-TUL", "EC"),
    "admin": ("admin", "HQ", None),
}


@dataclass
class World:
    """The central app, its site ids by code and the Ecuadorian child."""

    app: Flask
    sites: dict[str, str]
    users: dict[str, str]
    person_id: str
    contigo_id: str

    def count(self, model: Any, *where: Any) -> int:
        with session_scope(self.app) as s:
            return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def client(self, username: str) -> FlaskClient:
        """A browser signed in as ``username``."""
        client = self.app.test_client()
        token = csrf_of(client)
        resp = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token},
            base_url="http://localhost",
        )
        assert resp.status_code == 302, resp.data[:300]
        return client


def post(client: FlaskClient, url: str, data: dict[str, str]) -> Any:
    """A CSRF-protected form POST."""
    return client.post(
        url, data={**data, "csrf_token": csrf_of(client)}, base_url="http://localhost"
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
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
        app, username="root", password=PASSWORD, site_code="HQ", site_name="HQ", country="CO"
    )
    with app.test_request_context(), session_scope(app) as s:
        vault = get_vault(app)
        sites = {"HQ": s.scalar(select(User.home_site_id).where(User.username == "root"))}
        for code, country in (("CO-NEC", "CO"), ("EC-TUL", "EC")):
            sites[code] = add_site(s, code=code, name=code, country=country).id
        users: dict[str, User] = {}
        for name, (role, site, country) in USERS.items():
            users[name] = auth.add_user(
                s,
                vault,
                username=name,
                display_name=name.upper(),
                role=role,
                password=PASSWORD,
                site_id=str(sites[site]),
                language="en",
                country=country,
            )
        child = persons.register(s, vault, users["hw_b"], str(sites["EC-TUL"]), dict(CHILD))
        ids = {name: u.id for name, u in users.items()}
        person_id, cid = child.id, child.contigo_id
    yield World(app, {k: str(v) for k, v in sites.items()}, ids, person_id, cid)
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the grants' clock ``hours`` ahead of now."""
    from datetime import timedelta

    from contigo.db import utcnow
    from contigo.glass import grants

    def _move(hours: float) -> None:
        monkeypatch.setattr(grants, "now", lambda: utcnow() + timedelta(hours=hours))

    return _move
