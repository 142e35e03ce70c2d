"""No username enumeration: an unknown user, a wrong password, a deactivated and a locked-out
account get the same answer (status, message) after the same key derivation, on the login page
and the API alike.

Timing is checked by counting: each refusal must run the real scrypt derivation exactly as often
as a wrong password does, at the same cost. The counter wraps the real function and calls it
(nothing is mocked), so a path that skipped the work would show. Wall-clock figures are in
``bench/login_timing.py``, not asserted here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from contigo import crypto
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.auth.views import unlock_session
from contigo.db import session_scope, utcnow
from contigo.i18n import catalogue
from contigo.vault import get_vault
from tests.conftest import PASSWORD, csrf_of

BASE = "http://localhost"
WRONG = "not the password at all"


@pytest.fixture
def kdf_costs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The scrypt ``n`` of every key derivation run while the test runs."""
    costs: list[int] = []
    real = crypto.derive_wrapping_key

    def counted(password: str, salt: bytes, params: crypto.KdfParams) -> bytes:
        costs.append(params.n)
        return real(password, salt, params)

    monkeypatch.setattr(crypto, "derive_wrapping_key", counted)
    yield costs


@pytest.fixture
def accounts(app: Flask) -> Flask:
    """Besides 'sup': 'gone' (deactivated) and 'held' (locked out by real failed logins)."""
    vault = get_vault(app)
    with app.test_request_context(base_url=BASE), session_scope(app) as s:
        sup = unlock_session(s, "sup", PASSWORD)
        for name in ("gone", "held"):
            auth.add_user(
                s, vault, username=name, display_name=name, role="health_worker",
                password=PASSWORD, site_id=sup.home_site_id, language="en",
            )  # fmt: skip
        s.flush()
        s.execute(update(User).where(User.username == "gone").values(active=False))
    vault.lock()
    client = app.test_client()
    for _ in range(app.config["MAX_FAILED_LOGINS"]):
        client.post("/api/v1/auth/token", json={"username": "held", "password": WRONG})
    with session_scope(app) as s:
        held = s.query(User).filter_by(username="held").one()
        assert held.locked_until is not None and held.locked_until > utcnow()
    return app


CASES = {
    "wrong password": ("sup", WRONG),
    "unknown user": ("nobody", PASSWORD),
    "unknown user, wrong password": ("nobody", WRONG),
    "deactivated, right password": ("gone", PASSWORD),
    "locked out, right password": ("held", PASSWORD),
    "locked out, wrong password": ("held", WRONG),
}


def _page_answer(client: FlaskClient, username: str, password: str) -> tuple[int, str]:
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    found = re.search(r'<div class="notice error" role="alert" id="login-error">(.*?)</div>',
                      resp.get_data(as_text=True))  # fmt: skip
    return resp.status_code, found.group(1) if found else ""


def _api_answer(client: FlaskClient, username: str, password: str) -> tuple[int, Any]:
    resp = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    return resp.status_code, resp.json


def _answers(app: Flask, costs: list[int], ask: Any) -> dict[str, tuple[Any, list[int]]]:
    out = {}
    client = app.test_client()
    for case, (username, password) in CASES.items():
        costs.clear()
        answer = ask(client, username, password)
        out[case] = (answer, list(costs))
    return out


def test_the_login_page_refuses_everyone_alike(accounts: Flask, kdf_costs: list[int]) -> None:
    answers = _answers(accounts, kdf_costs, _page_answer)
    reference = answers["wrong password"]
    assert reference[0] == (401, catalogue("es")["sess.login_refused"])
    assert reference[1] == [accounts.config["SCRYPT_N"]], "a wrong password costs one derivation"
    for case, answer in answers.items():
        assert answer == reference, case
    assert not get_vault(accounts).is_unlocked


def test_the_api_refuses_everyone_alike(accounts: Flask, kdf_costs: list[int]) -> None:
    answers = _answers(accounts, kdf_costs, _api_answer)
    reference = answers["wrong password"]
    assert reference[0][0] == 401
    assert reference[0][1]["error"]["code"] == "E203_wrong_credentials"
    assert reference[1] == [accounts.config["SCRYPT_N"]]
    for case, answer in answers.items():
        assert answer == reference, case
    assert not get_vault(accounts).is_unlocked


def test_refusals_on_an_unlocked_laptop_cost_the_same_too(
    accounts: Flask, kdf_costs: list[int]
) -> None:
    client = accounts.test_client()
    resp = client.post(
        "/login",
        data={"username": "sup", "password": PASSWORD, "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    assert resp.status_code == 302
    answers = _answers(accounts, kdf_costs, _api_answer)
    for case, answer in answers.items():
        assert answer == answers["wrong password"], case


def test_a_locked_out_account_signs_in_again_after_its_time(accounts: Flask) -> None:
    with session_scope(accounts) as s:
        s.execute(
            update(User)
            .where(User.username == "held")
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert _api_answer(accounts.test_client(), "held", PASSWORD)[0] == 200
