"""The break-the-glass form on a laptop that cannot reach the central server (issue 15.9): the
lookup fails with a message a person understands, and the form keeps what was typed."""

from __future__ import annotations

import socket
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from contigo.persons import contigo_id
from tests.conftest import csrf_of

BASE = "http://localhost"


def test_an_offline_lookup_keeps_what_was_typed(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    typed = {
        "contigo_id": contigo_id.display(contigo_id.generate()),
        "birth_date": "14/07/2023",
        "reason": "Madre llega sin carné; niño con fiebre",
        "csrf_token": csrf_of(client),
    }
    resp = client.post("/glass/", base_url=BASE, data=typed)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 503  # not enrolled: central is out of reach
    assert "What you typed is still below" in page
    assert f'value="{typed["contigo_id"]}"' in page
    assert 'value="14/07/2023"' in page
    assert "Madre llega sin carné; niño con fiebre" in page


def _enrolled_but_unreachable(app: Flask) -> None:
    """This laptop as enrolment leaves it (its signing key and central's address), with the
    central server's port closed: every request fails on the network, as offline."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from contigo.auth.models import KeyEntry
    from contigo.db import session_scope
    from contigo.exchange.laptop.client import CENTRAL_URL, SIGNING_KEY, _raw
    from contigo.vault import get_vault
    from sync.outbox import set_state

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with session_scope(app) as s:
        blob = get_vault(app).outbox_encrypter()(SIGNING_KEY, _raw(Ed25519PrivateKey.generate()))
        s.add(KeyEntry(name=SIGNING_KEY, blob=blob))
        set_state(s, CENTRAL_URL, f"http://127.0.0.1:{port}")


def test_an_enrolled_laptop_offline_keeps_what_was_typed(
    app: Flask, login: Callable[..., FlaskClient]
) -> None:
    client = login()
    _enrolled_but_unreachable(app)
    typed = {
        "contigo_id": contigo_id.display(contigo_id.generate()),
        "birth_date": "14/07/2023",
        "reason": "Familia en tránsito, sin carné",
        "csrf_token": csrf_of(client),
    }
    resp = client.post("/glass/", base_url=BASE, data=typed)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 503
    assert 'role="alert">The central server cannot be reached' in page
    assert f'value="{typed["contigo_id"]}"' in page
    assert 'value="14/07/2023"' in page
    assert "Familia en tránsito, sin carné" in page
