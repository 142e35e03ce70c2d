"""Registration warns of the duplicates people actually make, over the real pages and a real
SQLite file; document and phone numbers are found in any spelling, through blind indexes, also
for records whose entries were written under the old folding rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select

from contigo import crypto
from contigo.db import session_scope
from contigo.persons.models import PersonIndex
from contigo.persons.reindex import INDEX_VERSION, VERSION_KEY
from contigo.vault import get_vault
from sync.outbox import get_state, set_state
from tests.conftest import PASSWORD
from tests.test_pages import Pages

BORN = date.today() - timedelta(days=400)
SARA = {
    "kind": "child", "given_names": "Sara", "family_names": "Chacón Ochoa",
    "birth_date": BORN.isoformat(), "sex": "F", "nationality": "VE",
    "population_type": "in_transit", "birth_date_precision": "exact",
}  # fmt: skip


@pytest.fixture
def pages(login: Callable[..., FlaskClient]) -> Pages:
    client = login()
    client.get("/")
    return Pages(client)


def register(pages: Pages, **overrides: Any) -> Any:
    return pages.post("/persons/new", {**SARA, **overrides})


def registered(pages: Pages, **overrides: Any) -> str:
    response = register(pages, **overrides, confirm="register_anyway")
    assert response.status_code == 302, pages.text(response)[-1500:]
    return str(response.headers["Location"].rsplit("/", 1)[1])


def warned_of(pages: Pages, response: Any) -> list[str]:
    """The ids of the likely duplicates a registration page warned of ([] when none)."""
    html = pages.text(response)
    if 'id="duplicates"' not in html:
        return []
    section = html.split('id="duplicates"', 1)[1].split("</section>", 1)[0]
    return sorted({part.split('"', 1)[0] for part in section.split('href="/persons/')[1:]})


def test_sara_chacon_ochoa_registered_one_month_off_shows_the_warning(pages: Pages) -> None:
    first = registered(pages)
    again = register(pages, birth_date=(BORN + timedelta(days=31)).isoformat())
    assert again.status_code == 200
    assert warned_of(pages, again) == [first]
    assert 'name="confirm" value="register_anyway"' in pages.text(again)


@pytest.mark.parametrize(
    "variant",
    [
        {"given_names": "Sara", "family_names": "Chacon"},  # no accent, one surname
        {"given_names": "María Sara"},  # a given name more
        {"given_names": "Sarah", "family_names": "Chacón-Ochoa"},  # typo, hyphen
        {"birth_date": date(BORN.year, BORN.month, 1).isoformat(), "birth_date_precision": "month"},
        {"birth_date": date(BORN.year, 1, 1).isoformat(), "birth_date_precision": "year"},
        {"given_names": "Lucía", "family_names": "Gómez", "doc_number": "27.899.728"},
    ],
)
def test_registration_warns_of_the_duplicates_people_make(
    pages: Pages, variant: dict[str, str]
) -> None:
    first = registered(pages, doc_country="VE", doc_type="national_id", doc_number="V-27899728")
    extra = {"doc_country": "VE", "doc_type": "national_id"} if "doc_number" in variant else {}
    assert warned_of(pages, register(pages, **variant, **extra)) == [first]


@pytest.mark.parametrize(
    "variant",
    [
        {"given_names": "Ana"},  # a twin sister
        {"given_names": "Sara", "family_names": "Gómez Ruiz"},  # a namesake of another family
        {"birth_date": (BORN - timedelta(days=200)).isoformat()},  # too far apart
        {"given_names": "Mario", "sex": "M"},  # a twin brother
    ],
)
def test_registration_does_not_warn_of_other_people(pages: Pages, variant: dict[str, str]) -> None:
    registered(pages)
    assert register(pages, **variant).status_code == 302


def test_a_mothers_record_twice_is_a_duplicate_and_twins_are_not(app: Flask, pages: Pages) -> None:
    mother = registered(
        pages, kind="woman", given_names="Rosa", family_names="Ochoa",
        birth_date="1996-04-02", sex="F",
    )  # fmt: skip
    sara = registered(pages, mother_id=mother)
    twin = register(pages, mother_id=mother, given_names="Ana")
    assert twin.status_code == 302
    later = register(pages, mother_id=mother, birth_date=(BORN - timedelta(days=500)).isoformat())
    assert warned_of(pages, later) == [sara]


def search(pages: Pages, q: str) -> str:
    return pages.text(pages.post("/persons/search", {"q": q}))


def test_search_finds_document_and_phone_numbers_in_any_spelling(pages: Pages) -> None:
    pid = registered(
        pages, doc_country="VE", doc_type="national_id", doc_number="V-27899728",
        phone="+57 300 123 4567",
    )  # fmt: skip
    for q in ("27899728", "27.899.728", "v 27899728", "300 123 4567", "(300) 123-4567"):
        assert f"/persons/{pid}" in search(pages, q), q
    assert f"/persons/{pid}" not in search(pages, "27899729")


def test_entries_written_under_the_old_rule_are_refreshed_at_the_next_unlock(
    app: Flask, pages: Pages, login: Callable[..., FlaskClient]
) -> None:
    pid = registered(
        pages, doc_country="VE", doc_type="national_id", doc_number="V-27.899.728",
        phone="3001234567",
    )  # fmt: skip
    vault = get_vault(app)
    key = vault._index_key  # the laptop as the previous version left it:
    assert key is not None
    old = crypto.blind_index(
        key,
        "V-27.899.728",
        field="doc",
        normalise=lambda t: crypto.normalise_name(t).replace(" ", ""),
    )
    with session_scope(app) as s:
        s.execute(delete(PersonIndex).where(PersonIndex.field.in_(("doc", "phone"))))
        s.add(PersonIndex(person_id=pid, field="doc", bidx=old))
        set_state(s, VERSION_KEY, "1")
    assert f"/persons/{pid}" not in search(pages, "27899728")  # the old entry does not meet it

    pages.post("/lock", {})
    assert not vault.is_unlocked
    login("sup", PASSWORD)

    with session_scope(app) as s:
        assert get_state(s, VERSION_KEY) == INDEX_VERSION
        fields = set(s.scalars(select(PersonIndex.field).where(PersonIndex.person_id == pid)))
    assert {"doc", "phone"} <= fields
    pages.client.get("/")
    assert f"/persons/{pid}" in search(pages, "27899728")
    assert f"/persons/{pid}" in search(pages, "+57 300 123 4567")
