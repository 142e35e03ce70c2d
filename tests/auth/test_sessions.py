"""Sessions are server-side and random (DESIGN.md §4): a cookie forged with the instance's
secret key signs nobody in; lock ends every session and token of the laptop; each session
idles out on its own; central's cookie is Secure. Over HTTP against the real app."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth import sessions
from contigo.auth.models import User
from contigo.config import SECRET_FILE
from contigo.db import session_scope
from contigo.vault import get_vault
from tests.conftest import PASSWORD, csrf_of

BASE = "http://localhost"
TOKEN = "/api/v1/auth/token"
COOKIE = "contigo_session"


def _sign_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    resp = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    assert resp.status_code == 302, resp.data[:300]
    assert client.get("/", base_url=BASE).status_code == 200
    return client


def _add_worker(app: Flask, username: str) -> str:
    """A second user of the laptop (added while 'sup' holds it unlocked)."""
    vault = get_vault(app)
    with app.test_request_context(base_url=BASE), session_scope(app) as s:
        from contigo.auth.views import unlock_session

        sup = unlock_session(s, "sup", PASSWORD)
        user = auth.add_user(
            s, vault, username=username, display_name=username, role="health_worker",
            password=PASSWORD, site_id=sup.home_site_id, language="en",
        )  # fmt: skip
        uid = user.id
    vault.lock()
    return uid


def _cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE, domain="localhost")
    assert cookie is not None
    return cookie.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    client = app.test_client()
    client.set_cookie(COOKIE, value, domain="localhost")
    return client


def _is_signed_in(client: FlaskClient) -> bool:
    resp = client.get("/", base_url=BASE)
    assert resp.status_code in (200, 302)
    return resp.status_code == 200


def test_a_cookie_forged_with_the_secret_key_signs_nobody_in(app: Flask) -> None:
    """The attacker has read ``instance/secret_key`` and a user id from the ``users`` table
    (both on the laptop's disk) and signs a Flask session cookie for that user, while the
    laptop is unlocked by someone else."""
    _sign_in(app, "sup")
    secret = (Path(app.instance_path) / SECRET_FILE).read_text().strip()
    with session_scope(app) as s:
        uid = s.scalar(select(User.id).where(User.username == "sup"))
    attacker = Flask("attacker")
    attacker.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(attacker)
    assert serializer is not None
    now = time.time()
    for payload in (
        {"uid": uid},
        {"uid": uid, "lang": "en", "seen": now, "csrf": "x"},
        {"_permanent": True, "uid": uid, "seen": now},
    ):
        forged = str(serializer.dumps(payload))
        assert not _is_signed_in(_with_cookie(app, forged)), payload


def test_the_cookie_is_random_and_the_store_keeps_only_its_hash(app: Flask) -> None:
    first, second = _sign_in(app, "sup"), _sign_in(app, "sup")
    a, b = _cookie_of(first), _cookie_of(second)
    assert a != b and len(a) >= 43 and "." not in a, "an opaque id, not signed data"
    store = sessions.store(app)
    assert store.get(a) is None
    record = store.get(sessions.hash_id(a))
    assert record is not None and record.user_id is not None


def test_login_gets_a_new_session_id(app: Flask) -> None:
    """A session id planted before login (fixation) never becomes a signed-in session."""
    client = app.test_client()
    csrf_of(client)
    planted = _cookie_of(client)
    resp = client.post(
        "/login",
        data={"username": "sup", "password": PASSWORD, "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    assert resp.status_code == 302
    assert _cookie_of(client) != planted
    assert not _is_signed_in(_with_cookie(app, planted))


def test_lock_ends_the_previous_users_cookie_and_token(app: Flask) -> None:
    """A signs in (browser and API), the laptop locks, B unlocks it: what A kept opens nothing."""
    _add_worker(app, "bea")
    a = _sign_in(app, "sup")
    cookie = _cookie_of(a)
    token = a.post(TOKEN, json={"username": "sup", "password": PASSWORD}).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert a.get("/api/v1/openapi.json").status_code == 200
    assert a.post("/api/v1/persons/search", json={"q": "x"}, headers=bearer).status_code == 200

    a.post("/lock", data={"csrf_token": csrf_of(a)}, base_url=BASE)
    assert not get_vault(app).is_unlocked
    _sign_in(app, "bea")

    assert not _is_signed_in(_with_cookie(app, cookie))
    replay = app.test_client().post("/api/v1/persons/search", json={"q": "x"}, headers=bearer)
    assert replay.status_code == 401 and replay.json["error"]["code"] == "E201_unauthenticated"


def test_the_idle_lock_ends_sessions_and_tokens_too(app: Flask) -> None:
    """The watcher thread locks by calling the vault; sessions end with it."""
    a = _sign_in(app, "sup")
    cookie = _cookie_of(a)
    token = a.post(TOKEN, json={"username": "sup", "password": PASSWORD}).json["token"]
    get_vault(app).lock()  # what contigo.vault._idle_watch does
    _sign_in(app, "sup")  # the same user unlocks again: a new session, not the old one
    assert not _is_signed_in(_with_cookie(app, cookie))
    replay = app.test_client().post(
        "/api/v1/persons/search", json={"q": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert replay.status_code == 401


def test_each_session_idles_out_on_its_own(app: Flask) -> None:
    """B keeps working; A walked away: A's session ends, B's and the laptop's go on."""
    _add_worker(app, "bea")
    a, b = _sign_in(app, "sup"), _sign_in(app, "bea")
    limit = app.config["IDLE_LOCK_SECONDS"]
    with a.session_transaction(base_url=BASE) as sess:  # A's last request was limit+1 s ago
        sess["seen"] = time.time() - limit - 1
    assert _is_signed_in(b)
    assert not _is_signed_in(a), "B's activity does not keep A's session alive"
    assert get_vault(app).is_unlocked, "the laptop stays open for B"
    assert _is_signed_in(b)


def test_a_session_within_its_idle_time_stays(app: Flask) -> None:
    a = _sign_in(app, "sup")
    with a.session_transaction(base_url=BASE) as sess:
        sess["seen"] = time.time() - app.config["IDLE_LOCK_SECONDS"] + 30
    assert _is_signed_in(a)


def test_cookie_flags_by_mode(app: Flask, tmp_path: Path) -> None:
    laptop_cookie = app.test_client().get("/login", base_url=BASE).headers["Set-Cookie"]
    assert "HttpOnly" in laptop_cookie and "SameSite=Strict" in laptop_cookie
    assert "Secure" not in laptop_cookie, "a laptop serves plain HTTP on 127.0.0.1"
    central = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "central"),
            "CONTIGO_MODE": "central",
            "IDLE_WATCH": False,
            "TESTING": True,
            "ALLOWED_HOSTS": ("localhost",),
        }
    )
    try:
        cookie = central.test_client().get("/login", base_url="https://localhost")
        flags = [f.strip() for f in cookie.headers["Set-Cookie"].split(";")]
        assert {"Secure", "HttpOnly", "SameSite=Strict"} <= set(flags)
    finally:
        central.extensions["contigo.engine"].dispose()


def test_a_signed_out_browser_keeps_its_language_and_nothing_else(app: Flask) -> None:
    a = _sign_in(app, "sup")
    a.post("/language", data={"lang": "pt", "csrf_token": csrf_of(a)}, base_url=BASE)
    get_vault(app).lock()
    page = a.get("/login", base_url=BASE).get_data(as_text=True)
    assert 'lang="pt"' in page
    with a.session_transaction(base_url=BASE) as sess:
        assert "uid" not in sess and sess["lang"] == "pt"


def test_a_request_that_outlives_the_lock_does_not_sign_back_in(app: Flask) -> None:
    """A page that loaded A's session before the lock and saves it after (waitress threads)."""
    cookie = _cookie_of(_sign_in(app, "sup"))
    iface = app.session_interface
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    with app.test_request_context("/", base_url=BASE, headers=headers) as ctx:
        loaded = iface.open_session(app, ctx.request)
        assert loaded is not None and loaded["uid"]
        get_vault(app).lock()
        loaded["seen"] = time.time()
        iface.save_session(app, loaded, app.response_class())
    _sign_in(app, "sup")
    assert not _is_signed_in(_with_cookie(app, cookie))


def test_when_everyone_is_idle_the_laptop_locks_not_just_the_session(app: Flask) -> None:
    a = _sign_in(app, "sup")
    limit = app.config["IDLE_LOCK_SECONDS"]
    with a.session_transaction(base_url=BASE) as sess:
        sess["seen"] = time.time() - limit - 1
    get_vault(app).last_activity -= limit + 1
    assert not _is_signed_in(a)
    assert not get_vault(app).is_unlocked, "no one was active: the keys leave memory"
