"""A parked form (issue 15.2) is sealed in memory, handed back once, to its own user alone, on
its own page; parking does not count as activity, and nothing of it reaches the database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from contigo.auth.parking import ParkedForms
from contigo.vault import get_vault
from tests.test_pages import Pages


@pytest.fixture
def pages(login: Callable[..., FlaskClient]) -> Pages:
    client = login()
    client.get("/")  # a fresh session after unlocking: create its CSRF token
    return Pages(client)


FIELDS = [["weight_kg", "8.4"], ["notes", "Madre refiere diarrea"]]


def _json(pages: Pages, url: str, body: dict[str, object]) -> object:
    return pages.client.post(url, json=body, headers={"X-CSRF-Token": pages.token})


def test_a_parked_form_comes_back_once_to_its_user_on_its_page(
    app: Flask, pages: Pages, login: Callable[..., FlaskClient]
) -> None:
    vault = get_vault(app)
    idle_before = vault.last_activity
    path = "/persons/abc/encounters/new"
    resp = _json(pages, "/park", {"path": path, "fields": FIELDS})
    assert resp.status_code == 204  # type: ignore[attr-defined]
    assert vault.last_activity == idle_before  # parking is not activity
    store: ParkedForms = app.extensions["contigo.parked_forms"]
    (parked,) = store._by_user.values()
    assert b"diarrea" not in parked.blob and b"8.4" not in parked.blob
    vault.lock()
    assert store.unpark(vault, "someone", path) == []
    again = Pages(login())
    assert _json(again, "/unpark", {"path": "/elsewhere"}).json == {"fields": []}  # type: ignore[attr-defined]
    back = _json(again, "/unpark", {"path": path})
    assert back.json == {"fields": FIELDS}  # type: ignore[attr-defined]
    assert _json(again, "/unpark", {"path": path}).json == {"fields": []}  # type: ignore[attr-defined]


def test_parking_needs_an_unlocked_laptop_and_a_session(app: Flask, pages: Pages) -> None:
    get_vault(app).lock()
    resp = _json(pages, "/park", {"path": "/x", "fields": FIELDS})
    assert resp.status_code in (401, 423)  # type: ignore[attr-defined]
