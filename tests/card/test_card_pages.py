"""The card pages over the test client: make and print a card, read one (refused with a
clear message in the user's language, audited), take it into the record, and see its visits
marked on the person page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.card import codec
from contigo.db import session_scope
from contigo.vault import get_vault
from tests.card.helpers import (
    BR_SITE,
    add_central_site,
    child_with_visits,
    enrol,
    make_laptop,
)
from tests.conftest import csrf_of
from tests.exchange.conftest import PASSWORD, SITE

BASE = "http://localhost"


@pytest.fixture
def pair(central: Flask, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    add_central_site(central, BR_SITE, "Boa Vista", "BR")
    co = make_laptop(tmp_path / "co", SITE, "Necoclí", "CO")
    br = make_laptop(tmp_path / "br", BR_SITE, "Boa Vista", "BR")
    enrol(co, central, SITE)
    enrol(br, central, BR_SITE)
    yield co, br
    for app in (co, br):
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    token = csrf_of(client)
    resp = client.post(
        "/login",
        data={"username": "sup", "password": PASSWORD, "csrf_token": token},
        base_url=BASE,
    )
    assert resp.status_code == 302
    return client


def make_card(client: FlaskClient, person_id: str, lang: str = "pt") -> tuple[str, str]:
    """Print a card from the page; returns (page HTML, short code)."""
    assert client.get(f"/cards/persons/{person_id}", base_url=BASE).status_code == 200
    resp = client.post(
        f"/cards/persons/{person_id}",
        data={"lang": lang, "layout": "a6", "csrf_token": csrf_of(client)},
        base_url=BASE,
    )
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    found = re.search(r'id="card-short-code">([^<]+)<', html)
    assert found
    return html, found.group(1)


def test_print_read_and_take_a_card(pair: tuple[Flask, Flask]) -> None:
    co, br = pair
    pid = child_with_visits(co, 7)
    html, _code = make_card(signed_in(co), pid, "pt")
    assert "<svg" in html and "Cartão de nutrição da família" in html  # the family's language
    assert "Emitido em Necoclí (CO)" in html
    from tests.card.test_card import issue  # the same person's card, as text for the reader

    text = issue(co, pid).text
    reader = signed_in(br)
    resp = reader.post(
        "/cards/read", data={"card_text": text, "csrf_token": csrf_of(reader)}, base_url=BASE
    )
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert 'id="card-verified"' in page and "Necoclí" in page
    short = re.search(r'name="short_code" value="([^"]+)"', page)
    assert short
    resp = reader.post(
        "/cards/import",
        data={"short_code": short.group(1), "link_to": "", "csrf_token": csrf_of(reader)},
        base_url=BASE,
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/persons/{pid}")
    person_page = reader.get(f"/persons/{pid}", base_url=BASE).get_data(as_text=True)
    assert "from the family&#39;s card, issued at Necoclí" in person_page
    assert person_page.count('class="from-card"') == 7


def test_a_tampered_card_is_refused_with_a_message_and_audited(pair: tuple[Flask, Flask]) -> None:
    co, br = pair
    from tests.card.test_card import bytes_flip, issue

    text = issue(co, child_with_visits(co, 1)).text
    envelope = codec.cbor_loads(codec.from_text(text))
    envelope[1] = bytes_flip(envelope[1], 9)
    tampered = codec.to_text(codec.cbor_dumps(envelope))
    reader = signed_in(br)
    resp = reader.post(
        "/cards/read", data={"card_text": tampered, "csrf_token": csrf_of(reader)}, base_url=BASE
    )
    assert resp.status_code == 422
    assert "its content was changed after it was signed" in resp.get_data(as_text=True)
    resp = reader.post(
        "/cards/read", data={"short_code": "1234-5678-9ABC-D", "csrf_token": csrf_of(reader)},
        base_url=BASE,
    )  # fmt: skip
    assert resp.status_code == 422
    assert "Wrong short code" in resp.get_data(as_text=True)
    with session_scope(br) as s:
        refused = list(
            s.scalars(select(AuditEntry.entity_id).where(AuditEntry.action == "card_refused"))
        )
    assert sorted(refused) == ["bad_code", "tampered"]


def test_only_clinical_roles_make_or_read_cards(pair: tuple[Flask, Flask]) -> None:
    from contigo.auth import services as auth
    from tests.card.helpers import as_sup

    co, _br = pair
    pid = child_with_visits(co, 1)
    with as_sup(co) as (s, sup):
        auth.add_user(s, get_vault(co), username="lead", display_name="Lead",
                      role="nutrition_lead", password=PASSWORD, site_id=sup.home_site_id,
                      language="en", country="CO")  # fmt: skip
    lead = co.test_client()
    token = csrf_of(lead)
    resp = lead.post(
        "/login",
        data={"username": "lead", "password": PASSWORD, "csrf_token": token},
        base_url=BASE,
    )
    assert resp.status_code == 302
    assert lead.get(f"/cards/persons/{pid}", base_url=BASE).status_code == 403
    assert lead.get("/cards/read", base_url=BASE).status_code == 403
    page = lead.get(f"/persons/{pid}", base_url=BASE).get_data(as_text=True)
    assert 'id="family-card"' not in page and 'id="fhir-ips"' in page
    assert 'id="nav-card-read"' not in page
