"""A demo laptop (two countries, four sites) built once per module by ``contigo demo``, with a
nutrition lead per country and an administrator added, for the reporting tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo import create_app
from contigo.auth import services as auth
from contigo.cli import main
from contigo.db import session_scope
from contigo.sites.models import Site
from contigo.vault import get_vault

DEMO_PASSWORD = "a demo password"
LEADS = {"lead.co": "CO", "lead.ec": "EC"}


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo instance of 60 persons (15 women) with leads and an admin; built once."""
    folder = tmp_path_factory.mktemp("reports-demo")
    secret = folder / "password.txt"
    secret.write_text(DEMO_PASSWORD + "\n", encoding="utf-8")
    instance = folder / "instance"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTIGO_SCRYPT_N", "1024")
        args = ["--instance", str(instance), "demo", "--persons", "60", "--women", "15",
                "--password-file", str(secret)]  # fmt: skip
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    app = create_app({"INSTANCE_PATH": str(instance), "IDLE_WATCH": False, "TESTING": True})
    vault = get_vault(app)
    with session_scope(app) as s:
        auth.authenticate(s, vault, "necocli.sup", DEMO_PASSWORD, max_failed=5, lockout_s=60)
        sites = {site.country: site.id for site in s.scalars(select(Site))}
        for username, country in LEADS.items():
            auth.add_user(s, vault, username=username, display_name=username,
                          role="nutrition_lead", password=DEMO_PASSWORD, site_id=sites[country],
                          language="en", country=country)  # fmt: skip
        auth.add_user(s, vault, username="admin1", display_name="admin1", role="admin",
                      password=DEMO_PASSWORD, site_id=sites["CO"], language="en")  # fmt: skip
    vault.lock()
    app.extensions["contigo.engine"].dispose()
    return instance


@pytest.fixture
def demo_app(demo_folder: Path, tmp_path: Path) -> Iterator[Flask]:
    """An app over a private copy of the demo (tests may write)."""
    instance = tmp_path / "instance"
    shutil.copytree(demo_folder, instance)
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "IDLE_WATCH": False,
            "TESTING": True,
            "ALLOWED_HOSTS": ("localhost", "127.0.0.1"),
        }
    )
    yield app
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()


def login(client: FlaskClient, username: str, password: str = DEMO_PASSWORD) -> FlaskClient:
    client.get("/login", base_url="http://localhost")
    with client.session_transaction() as sess:
        token = sess.get("csrf")
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        base_url="http://localhost",
    )
    assert resp.status_code == 302, resp.data[:300]
    return client


@pytest.fixture
def client(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()
