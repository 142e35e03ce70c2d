"""How long a refused sign-in takes, by reason: the answer must not tell who exists.

Run from the repository root: ``python -m bench.login_timing [--tries 100]``.

Makes a laptop in a temporary folder at the production key-derivation cost (scrypt n=2**15),
with a second, deactivated user and a third, locked-out one, then times ``POST /login`` and
``POST /api/v1/auth/token`` through the test client for each reason a sign-in is refused, and
prints the median and p90 in milliseconds. The reasons should be within noise of each other
(before the fix: an unknown user answered in about 10 ms, a wrong password in about 240 ms).
The reasons are interleaved, so a machine that slows down slows all of them alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from contigo import create_app
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.auth.views import unlock_session
from contigo.db import session_scope
from contigo.setup import initialise
from contigo.vault import get_vault

PASSWORD = "correct horse battery"
WRONG = "not the password at all"
BASE = "http://localhost"
REASONS = {
    "wrong password": ("sup", WRONG),
    "unknown user": ("nobody", PASSWORD),
    "deactivated user": ("gone", PASSWORD),
    "locked-out user": ("held", PASSWORD),
}


def _laptop(folder: Path) -> Flask:
    app = create_app(
        {
            "INSTANCE_PATH": str(folder),
            "IDLE_WATCH": False,
            "ALLOWED_HOSTS": ("localhost",),
            "MAX_FAILED_LOGINS": 10**9,  # the wrong-password tries must not lock 'sup' out
        }
    )
    initialise(
        app, site_code="CO-NEC", site_name="Necoclí", country="CO", elevation_m=5,
        username="sup", display_name="Sup", language="en", password=PASSWORD,
    )  # fmt: skip
    with app.test_request_context(base_url=BASE), session_scope(app) as s:
        sup = unlock_session(s, "sup", PASSWORD)
        for name in ("gone", "held"):
            auth.add_user(
                s, get_vault(app), username=name, display_name=name, role="health_worker",
                password=PASSWORD, site_id=sup.home_site_id, language="en",
            )  # fmt: skip
        s.flush()
        s.execute(update(User).where(User.username == "gone").values(active=False))
        far = sup.created_at.replace(year=sup.created_at.year + 10)
        s.execute(update(User).where(User.username == "held").values(locked_until=far))
    get_vault(app).lock()
    return app


def _csrf(client: FlaskClient) -> str:
    client.get("/login", base_url=BASE)
    with client.session_transaction(base_url=BASE) as sess:
        return str(sess["csrf"])


def _time_page(client: FlaskClient, token: str, username: str, password: str) -> float:
    start = time.perf_counter()
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        base_url=BASE,
    )
    elapsed = time.perf_counter() - start
    assert resp.status_code == 401, resp.status_code
    return elapsed * 1000


def _time_api(client: FlaskClient, username: str, password: str) -> float:
    start = time.perf_counter()
    resp = client.post(
        "/api/v1/auth/token", json={"username": username, "password": password}, base_url=BASE
    )
    elapsed = time.perf_counter() - start
    assert resp.status_code == 401, resp.status_code
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=100, help="tries per reason and route")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = _laptop(Path(tmp) / "instance")
        client = app.test_client()
        token = _csrf(client)
        page: dict[str, list[float]] = {r: [] for r in REASONS}
        api: dict[str, list[float]] = {r: [] for r in REASONS}
        for _ in range(args.tries):
            for reason, (username, password) in REASONS.items():
                page[reason].append(_time_page(client, token, username, password))
                api[reason].append(_time_api(client, username, password))
        app.extensions["contigo.engine"].dispose()
    print(f"refused sign-ins, {args.tries} tries each, scrypt n=2**15 (ms)")
    print(f"{'reason':<20} {'page p50':>9} {'page p90':>9} {'api p50':>9} {'api p90':>9}")
    for reason in REASONS:
        p, a = sorted(page[reason]), sorted(api[reason])
        p90 = int(len(p) * 0.9)
        print(
            f"{reason:<20} {statistics.median(p):9.1f} {p[p90]:9.1f} "
            f"{statistics.median(a):9.1f} {a[p90]:9.1f}"
        )


if __name__ == "__main__":
    main()
