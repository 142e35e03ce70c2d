"""Registering a child into a family (issue 15.3): from the mother's page what the family shares
is filled in, the mother is found by name inside the form (what was typed stays), and address
and phone show on the person page and the printed summary."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import Flask
from sqlalchemy import select

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.persons.models import Person
from tests.conftest import PASSWORD, csrf_of

BASE = "http://localhost"
MOTHER = {
    "kind": "woman",
    "given_names": "Rosa Elena",
    "family_names": "Quispe Mamani",
    "birth_date": date(1996, 3, 1),
    "sex": "F",
    "nationality": "PE",
    "population_type": "host_community",
    "phone": "+51 912 345 678",
    "address": "Jr. Los Pinos 120, Tumbes",
}


def _mother(app: Flask, make_person: Any) -> str:
    from contigo.auth.views import unlock_session

    with app.test_request_context(base_url=BASE), session_scope(app) as s:
        unlock_session(s, "sup", PASSWORD)
        sup = s.scalar(select(User).where(User.username == "sup"))
        return str(make_person(s, sup, **MOTHER))


def _value(body: str, name: str) -> str:
    found = re.search(rf'<input [^>]*name="{name}" value="([^"]*)"', body)
    assert found, name
    return found.group(1)


def _selected(body: str, name: str) -> str:
    block = re.search(rf'<select [^>]*name="{name}".*?</select>', body, re.S)
    assert block, name
    chosen = re.search(r'<option value="([^"]*)" selected', block.group(0))
    return chosen.group(1) if chosen else ""


def test_register_a_child_from_the_mother_fills_in_what_the_family_shares(
    app: Flask, login: Any, make_person: Any
) -> None:
    mother_id = _mother(app, make_person)
    client = login()
    body = client.get(f"/persons/new?mother={mother_id}", base_url=BASE).get_data(as_text=True)
    assert "Rosa Elena Quispe Mamani" in body
    assert _value(body, "family_names") == "Quispe Mamani"
    assert _value(body, "phone") == "+51 912 345 678"
    assert _value(body, "address") == "Jr. Los Pinos 120, Tumbes"
    assert _value(body, "mother_id") == mother_id
    assert _selected(body, "nationality") == "PE"
    assert _selected(body, "population_type") == "host_community"
    with session_scope(app) as s:
        home = s.scalar(select(User.home_site_id).where(User.username == "sup"))
    assert _value(body, "site_id") == home
    assert 'value="child" checked' in body


def test_the_mother_is_found_by_name_inside_the_form_and_nothing_typed_is_lost(
    app: Flask, login: Any, make_person: Any
) -> None:
    mother_id = _mother(app, make_person)
    client = login()
    typed = {
        "kind": "child", "given_names": "Luz", "birth_date": "01/02/2025", "sex": "F",
        "birth_date_precision": "exact", "population_type": "in_transit", "mother_id": "",
        "csrf_token": csrf_of(client),
    }  # fmt: skip
    empty = client.post("/persons/new", base_url=BASE, data={**typed, "find_mother": "1"})
    assert empty.status_code == 422
    assert "Type the mother&#39;s name" in empty.get_data(as_text=True)
    found = client.post(
        "/persons/new", base_url=BASE,
        data={**typed, "find_mother": "1", "mother_query": "rosa quispe"},
    )  # fmt: skip
    body = found.get_data(as_text=True)
    assert found.status_code == 200
    assert "1 woman found" in body and f'name="choose_mother" value="{mother_id}"' in body
    assert _value(body, "given_names") == "Luz" and _value(body, "birth_date") == "01/02/2025"
    chosen = client.post(
        "/persons/new", base_url=BASE, data={**typed, "choose_mother": mother_id}
    ).get_data(as_text=True)
    assert _value(chosen, "mother_id") == mother_id
    assert _value(chosen, "given_names") == "Luz"
    assert _value(chosen, "family_names") == "Quispe Mamani"
    assert _value(chosen, "address") == "Jr. Los Pinos 120, Tumbes"
    assert _selected(chosen, "population_type") == "host_community"
    none = client.post(
        "/persons/new", base_url=BASE,
        data={**typed, "find_mother": "1", "mother_query": "Zoraida Inexistente"},
    ).get_data(as_text=True)  # fmt: skip
    assert "We found no woman by that name" in none


def test_a_child_registered_with_the_mother_shows_address_and_phone(
    app: Flask, login: Any, make_person: Any
) -> None:
    mother_id = _mother(app, make_person)
    client = login()
    page = client.get(f"/persons/new?mother={mother_id}", base_url=BASE).get_data(as_text=True)
    form = {
        "kind": "child", "given_names": "Luz", "family_names": _value(page, "family_names"),
        "birth_date": "01/02/2025", "birth_date_precision": "exact", "sex": "F",
        "nationality": "PE", "population_type": "host_community", "mother_id": mother_id,
        "phone": _value(page, "phone"), "address": _value(page, "address"),
        "site_id": _value(page, "site_id"), "confirm": "register_anyway",
        "csrf_token": csrf_of(client),
    }  # fmt: skip
    resp = client.post("/persons/new", base_url=BASE, data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-2000:]
    child = resp.headers["Location"].rsplit("/", 1)[-1]
    with session_scope(app) as s:
        assert s.get(Person, child).mother_id == mother_id
        assert b"Pinos" not in (s.get(Person, child).address_enc or b"")
    shown = client.get(f"/persons/{child}", base_url=BASE).get_data(as_text=True)
    assert 'id="person-address">Jr. Los Pinos 120, Tumbes<' in shown
    assert 'id="person-phone">+51 912 345 678<' in shown
    printed = client.get(f"/persons/{child}/print", base_url=BASE).get_data(as_text=True)
    assert 'id="print-address">Jr. Los Pinos 120, Tumbes<' in printed
    assert 'id="print-phone">+51 912 345 678<' in printed


def test_a_registration_site_must_be_one_the_user_works_at(
    app: Flask, login: Any, make_person: Any
) -> None:
    client = login()
    form = {
        "kind": "child", "given_names": "Luz", "family_names": "Rojas", "sex": "F",
        "birth_date": "01/02/2025", "birth_date_precision": "exact",
        "population_type": "in_transit", "site_id": "another-site", "csrf_token": csrf_of(client),
    }  # fmt: skip
    resp = client.post("/persons/new", base_url=BASE, data=form)
    assert resp.status_code == 422
    assert "Choose one of the sites you work at." in resp.get_data(as_text=True)
