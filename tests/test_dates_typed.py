"""Dates are typed and shown day first (dd/mm/aaaa) whatever the browser's locale (issue 15.8):
a text box with a pattern instead of the browser's date control, read on the server."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from contigo.forms import dmy_date, iso_date
from tests.test_pages import Pages, months_ago, today

CHILD = {
    "kind": "child",
    "given_names": "Lía",
    "family_names": "Mora Paz",
    "sex": "F",
    "nationality": "VE",
    "population_type": "in_transit",
    "birth_date_precision": "exact",
}


@pytest.fixture
def pages(login: Callable[..., FlaskClient]) -> Pages:
    client = login()
    client.get("/")  # a fresh session after unlocking: create its CSRF token
    return Pages(client)


def test_day_first_dates_read_as_iso_and_shown_back() -> None:
    assert iso_date("5/3/2025") == "2025-03-05" and iso_date("05.03.2025") == "2025-03-05"
    assert iso_date("2025-03-05") == "2025-03-05"  # what the API and older pages send
    assert iso_date("31/02/2020") == "2020-02-31"  # the schema then says the day does not exist
    assert dmy_date("2025-03-05") == "05/03/2025" and dmy_date("31/02/2020") == "31/02/2020"


def test_a_date_box_is_day_first_text_and_what_is_typed_is_read(pages: Pages) -> None:
    form = pages.text(pages.get("/persons/new"))
    box = re.search(r'<input type="text" id="birth_date"[^>]*>', form)
    assert box is not None and 'placeholder="dd/mm/yyyy"' in box.group(0)  # the user is "en"
    assert 'type="date"' not in form
    born = months_ago(14)
    typed = born.strftime("%d/%m/%Y")
    done = pages.post("/persons/new", {**CHILD, "birth_date": typed})
    assert done.status_code == 302, pages.text(done)[-800:]
    person = pages.text(pages.get(done.headers["Location"]))
    assert f"{born.day} " in person and str(born.year) in person
    visit_form = pages.text(pages.get(done.headers["Location"] + "/encounters/new"))
    assert f'value="{today().strftime("%d/%m/%Y")}"' in visit_form


def test_an_impossible_day_is_named_on_its_field_and_kept_as_typed(pages: Pages) -> None:
    bad = pages.post("/persons/new", {**CHILD, "birth_date": "31/02/2024"})
    assert bad.status_code == 422
    html = pages.text(bad)
    assert 'id="birth_date-error"' in html and 'value="31/02/2024"' in html
