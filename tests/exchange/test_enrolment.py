"""Enrolment: a code for a site the laptop does not have is refused without being spent."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from contigo.db import session_scope
from contigo.exchange.laptop.client import SyncFailed, enrol_laptop
from contigo.sites.services import add_site
from tests.exchange.conftest import enrolment_code


def _post_to(central: Flask) -> Any:
    client = central.test_client()

    def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = client.post("/sync/v1/enrol", json=body, base_url="http://localhost")
        return resp.status_code, resp.get_json(silent=True)

    return post


def test_a_code_for_another_site_is_refused_and_stays_valid(central: Flask, laptop: Any) -> None:
    with session_scope(central) as s:
        add_site(s, code="EC-TUL", name="Tulcán", country="EC", elevation_m=2950)
    wrong = enrolment_code(central, "EC-TUL")
    a = laptop("a")
    with pytest.raises(SyncFailed, match="site this laptop does not have"):
        enrol_laptop(a, central_url="http://localhost", code=wrong, post=_post_to(central))
    # the laptop can still enrol with the right code ...
    right = enrolment_code(central)
    assert (
        enrol_laptop(a, central_url="http://localhost", code=right, post=_post_to(central))
        == "CO-NEC"
    )
    # ... and the refused code was not spent: a laptop at that site can use it
    b = laptop("b")
    with session_scope(b) as s:
        add_site(s, code="EC-TUL", name="Tulcán", country="EC", elevation_m=2950)
    assert (
        enrol_laptop(b, central_url="http://localhost", code=wrong, post=_post_to(central))
        == "EC-TUL"
    )
