"""Sessions on a real central: gunicorn with two worker processes over PostgreSQL, a laptop
syncing with it through the ``contigo`` command line, and a browser that speaks plain HTTP.

A session opened by one worker is known to every worker; signing out (the Lock button) in one
ends it in all, API tokens included, and nothing else: the laptop keeps syncing. A cookie forged
with the server's secret key opens nothing."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from contigo.auth.models import User
from contigo.config import SECRET_FILE
from contigo.db import session_scope
from tests.exchange.live import (
    ADMIN_PASSWORD,
    Central,
    enrolled_laptops,
    module_central,
    register_child,
)

pytestmark = pytest.mark.slow

COOKIE = "contigo_session"
TRIES = 8  # requests spread over the two workers


central = module_central("live-sessions")


class Browser:
    """A browser of the central: sends its session cookie by hand, since the cookie is Secure
    (central sits behind TLS) and the test speaks plain HTTP to gunicorn."""

    def __init__(self, url: str, sid: str | None = None) -> None:
        self.url, self.sid = url, sid
        self.last_set_cookie = ""

    def open(self, method: str, path: str, **kw: object) -> requests.Response:
        headers = {"Cookie": f"{COOKIE}={self.sid}"} if self.sid else {}
        resp = requests.request(
            method, self.url + path, headers=headers, allow_redirects=False, timeout=30, **kw
        )
        found = re.search(rf"{COOKIE}=([^;]*)", resp.headers.get("Set-Cookie", ""))
        if found:
            self.last_set_cookie = resp.headers["Set-Cookie"]
            self.sid = found.group(1) or None
        return resp

    def csrf(self, path: str = "/login") -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.open("GET", path).text)
        assert found
        return found.group(1)

    def sign_in(self, username: str, password: str) -> None:
        token = self.csrf()
        resp = self.open(
            "POST", "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        assert resp.status_code == 302, resp.text[:300]

    def signed_in(self) -> list[bool]:
        """Whether each request is served as signed in: the home page, or where it leads a
        lead or an admin (the caseload), never the sign-in page."""
        return [self._home_served(self.open("GET", "/")) for _ in range(TRIES)]

    @staticmethod
    def _home_served(resp: requests.Response) -> bool:
        if resp.status_code == 302:
            return "/login" not in resp.headers.get("Location", "/login")
        return resp.status_code == 200


def _search_statuses(central: Central, bearer: dict[str, str]) -> list[int]:
    url = central.url + "/api/v1/persons/search"
    return [
        requests.post(url, json={"q": "x"}, headers=bearer, timeout=30).status_code
        for _ in range(TRIES)
    ]


def test_sessions_are_shared_by_the_workers_and_sign_out_ends_them_in_all(
    central: Central, tmp_path: Path
) -> None:
    root = Browser(central.url)
    root.sign_in("root", ADMIN_PASSWORD)
    flags = {f.strip() for f in root.last_set_cookie.split(";")}
    assert {"Secure", "HttpOnly", "SameSite=Strict"} <= flags
    assert root.signed_in() == [True] * TRIES
    kept = root.sid
    resp = requests.post(
        central.url + "/api/v1/auth/token",
        json={"username": "root", "password": ADMIN_PASSWORD},
        timeout=30,
    )
    bearer = {"Authorization": f"Bearer {resp.json()['token']}"}
    assert _search_statuses(central, bearer) == [403] * TRIES  # known (an admin reads no one)

    with enrolled_laptops(tmp_path, central) as make:
        field = make("a", "T-SESS")
        register_child(field.app)

        token = root.csrf("/caseload/")  # where an admin's home leads
        assert root.open("POST", "/lock", data={"csrf_token": token}).status_code == 302

        assert Browser(central.url, kept).signed_in() == [False] * TRIES
        assert _search_statuses(central, bearer) == [401] * TRIES, "the token ended too"
        result = field.sync()
        assert result.exit_code == 0, result.output  # the server key stayed loaded everywhere
    root.sign_in("root", ADMIN_PASSWORD)
    assert root.signed_in() == [True] * TRIES


def test_a_cookie_forged_with_the_servers_secret_key_opens_nothing(central: Central) -> None:
    app: Flask = central.app
    secret = (Path(app.instance_path) / SECRET_FILE).read_text().strip()
    with session_scope(app) as s:
        uid = s.scalar(select(User.id).where(User.username == "root"))
    forger = Flask("forger")
    forger.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(forger)
    assert serializer is not None
    forged = str(serializer.dumps({"uid": uid, "seen": time.time(), "lang": "en"}))
    assert Browser(central.url, forged).signed_in() == [False] * TRIES
