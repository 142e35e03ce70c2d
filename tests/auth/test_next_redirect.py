"""``next=`` after signing in (and after switching language) never leaves the site: only a
same-site path is followed; anything a browser could read as another origin goes home."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, csrf_of

BASE = "http://localhost"

# Each is a value of ``next`` as the server receives it, once the query string is decoded.
OFF_SITE = [
    "//evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r/evil.example/",
    "\t//evil.example/",
    " //evil.example/",
    "/ /evil.example/",
    "/\x00/evil.example/",
    "/\x0b/evil.example/",
    "/\u00a0/evil.example/",
    "/\u2028/evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "/\\/evil.example/",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    "///evil.example/",
    "/%2F/evil.example/",
    "/%2f%2fevil.example/",
    "/%5Cevil.example/",
    "/%09/evil.example/",
    "/%252F/evil.example/",
    "",
]
SAME_SITE = ["/", "/persons", "/persons/abc?tab=visits", "/review#top", "/persons/ab-12/visits"]


def _login(client: FlaskClient, nxt: str) -> str:
    token = csrf_of(client)
    resp = client.post(
        f"/login?next={quote(nxt, safe='')}",
        data={"username": "sup", "password": PASSWORD, "csrf_token": token},
        base_url=BASE,
    )
    assert resp.status_code == 302, resp.data[:200]
    return str(resp.headers["Location"])


@pytest.mark.parametrize("nxt", OFF_SITE)
def test_next_that_could_leave_the_site_goes_home(client: FlaskClient, nxt: str) -> None:
    assert _login(client, nxt) == "/"


@pytest.mark.parametrize("nxt", SAME_SITE)
def test_next_on_the_site_is_followed(client: FlaskClient, nxt: str) -> None:
    assert _login(client, nxt) == nxt


@pytest.mark.parametrize("nxt", OFF_SITE[:8])
def test_language_switch_next_stays_on_the_site(client: FlaskClient, nxt: str) -> None:
    resp = client.post(
        "/language",
        data={"lang": "pt", "next": nxt, "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
