"""Errors the framework raises (405, 413) and unhandled exceptions (500) speak the API's
language: the one JSON error shape under /api/v1 and /sync/v1, a translated page elsewhere, and
an ``Allow`` header on 405."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from contigo import create_app
from contigo.i18n import catalogue
from tests.api.test_api_bad_input import error_of
from tests.conftest import csrf_of

ES, PT = catalogue("es"), catalogue("pt")
LOCAL = {"base_url": "http://localhost"}


class Boom(RuntimeError):
    """A fault injected into a view: it stands for any bug a request may hit."""


def add_failing_routes(app: Flask) -> None:
    """Routes that fail, under the API, the sync prefix and the pages (before any request)."""

    def fail() -> str:
        raise Boom("Ana Pérez, 2024-05-01")

    for rule in ("/api/v1/_boom", "/sync/v1/_boom", "/_boom"):
        app.add_url_rule(rule, f"boom{rule.replace('/', '_')}", fail, methods=["GET", "POST"])
    app.config["PROPAGATE_EXCEPTIONS"] = False  # serve the 500 as production does


@pytest.fixture
def failing(app: Flask) -> FlaskClient:
    add_failing_routes(app)
    return app.test_client()


def test_a_wrong_method_on_the_api_is_405_json_with_allow(client: FlaskClient) -> None:
    resp = client.delete(
        "/api/v1/persons/" + "0" * 32, headers={"Accept-Language": "pt-BR"}, **LOCAL
    )
    error = error_of(resp, 405, "E405_method_not_allowed")
    assert error["message"] == PT["apierr.error.method_not_allowed"]
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    token = client.get("/api/v1/auth/token", **LOCAL)
    error_of(token, 405, "E405_method_not_allowed")
    assert "POST" in token.headers["Allow"]


def test_a_wrong_method_on_a_page_is_a_page_with_allow(client: FlaskClient) -> None:
    headers = {"Accept-Language": "es", "X-CSRF-Token": csrf_of(client)}
    resp = client.delete("/login", headers=headers, **LOCAL)
    assert resp.status_code == 405
    assert resp.mimetype == "text/html"
    assert ES["apierr.error.method_not_allowed"] in resp.text
    assert "E405_method_not_allowed" in resp.text
    assert {"GET", "POST"} <= set(resp.headers["Allow"].split(", "))


def test_a_body_too_large_is_413_in_the_error_shape(app: Flask, client: FlaskClient) -> None:
    big = b'{"username": "' + b"a" * int(app.config["MAX_CONTENT_LENGTH"]) + b'"}'
    resp = client.post(
        "/api/v1/auth/token",
        data=big,
        content_type="application/json",
        headers={"Accept-Language": "es"},
        **LOCAL,
    )
    error = error_of(resp, 413, "E413_too_large")
    assert error["message"] == ES["apierr.error.too_large"]
    page = client.post(
        "/login",
        data=b"username=" + b"a" * int(app.config["MAX_CONTENT_LENGTH"]),
        content_type="application/x-www-form-urlencoded",
        **LOCAL,
    )
    assert page.status_code == 413
    assert page.mimetype == "text/html"
    assert "E413_too_large" in page.text


def test_an_unhandled_error_is_500_in_the_error_shape(failing: FlaskClient) -> None:
    resp = failing.post("/api/v1/_boom", headers={"Accept-Language": "es"}, **LOCAL)
    error = error_of(resp, 500, "E500_server")
    assert error["message"] == ES["apierr.error.server"]
    assert "Ana" not in resp.text, "the exception's text never reaches the client"
    page = failing.get("/_boom", headers={"Accept-Language": "pt"}, **LOCAL)
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    assert PT["apierr.error.server"] in page.text
    assert PT["fieldday.error.title.500"] in page.text, "the translated error page, in its frame"
    assert "Ana" not in page.text


def test_an_error_page_that_cannot_render_falls_back_to_a_bare_page(
    app: Flask, failing: FlaskClient
) -> None:
    app.jinja_env.globals["current_language"] = None  # the frame's own helper now fails
    page = failing.get("/_boom", headers={"Accept-Language": "es"}, **LOCAL)
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    assert ES["apierr.error.server"] in page.text
    assert "E500_server" in page.text


# ── the central server's sync endpoints ───────────────────────────────────────


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "central"),
            "CONTIGO_MODE": "central",
            "SCRYPT_N": 2**10,
            "IDLE_WATCH": False,
            "TESTING": True,
            "ALLOWED_HOSTS": ("localhost",),
        }
    )
    yield app
    app.extensions["contigo.engine"].dispose()


def test_sync_answers_405_413_and_500_as_json(central: Flask) -> None:
    add_failing_routes(central)
    client = central.test_client()
    wrong = client.get("/sync/v1/push", **LOCAL)
    error_of(wrong, 405, "E405_method_not_allowed")
    assert "POST" in wrong.headers["Allow"]
    big = b"{" + b" " * int(central.config["MAX_CONTENT_LENGTH"]) + b"}"
    too_big = client.post("/sync/v1/push", data=big, content_type="application/json", **LOCAL)
    # The sync protocol's own code (its client halves its batch on it), in its error shape.
    assert too_big.status_code == 413 and too_big.mimetype == "application/json"
    assert too_big.get_json()["error"]["code"] == "S102_batch_too_large"
    boom = client.post("/sync/v1/_boom", **LOCAL)
    error_of(boom, 500, "E500_server")
