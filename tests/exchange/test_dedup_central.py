"""Central's possible-duplicate finder uses the rule a laptop warns with
(:func:`contigo.persons.dedup.match`): a child registered on two laptops a month apart, or with
the document number spelled another way, opens one review item; a twin does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask

from contigo.db import session_scope
from contigo.exchange.extensions import server_config
from sync.models import ReviewItem
from sync.server.review import read_candidates
from tests.exchange.world import Device, new_device, open_items

BORN = date.today() - timedelta(days=400)
SARA: dict[str, Any] = {"given_names": "Sara", "family_names": "Chacón Ochoa", "birth_date": BORN}
VE_ID = {"country": "VE", "type": "national_id"}


@pytest.fixture
def two(central: Flask, laptop: Callable[[str], Flask]) -> tuple[Device, Device]:
    return new_device(central, laptop, "a"), new_device(central, laptop, "b")


def duplicates(central: Flask) -> list[ReviewItem]:
    return [i for i in open_items(central) if i.kind == "possible_duplicate"]


def persons_named(central: Flask, item: ReviewItem) -> list[str]:
    with session_scope(central) as s:
        stored = s.get(ReviewItem, item.id)
        assert stored is not None
        return [c["value"]["person_id"] for c in read_candidates(server_config(central), stored)]


def test_a_child_registered_again_a_month_off_on_another_laptop_opens_a_review_item(
    central: Flask, two: tuple[Device, Device]
) -> None:
    a, b = two
    first = a.register(**SARA)
    a.sync()
    second = b.register(
        **SARA | {"family_names": "Chacon", "birth_date": BORN + timedelta(days=31)}
    )
    b.sync()
    [item] = duplicates(central)
    assert (item.person_id, item.severity) == (second, "clinical")
    assert persons_named(central, item) == [first, second]
    a.sync()
    assert [i.id for i in duplicates(a.app)] == [item.id]  # the site's laptops get it


def test_the_same_document_in_another_spelling_opens_a_review_item(
    central: Flask, two: tuple[Device, Device]
) -> None:
    a, b = two
    first = a.register(**SARA, documents=[VE_ID | {"number": "V-27899728"}])
    a.sync()
    other = {
        "given_names": "Sarita",
        "family_names": "Ochoa",
        "birth_date": BORN - timedelta(days=300),
    }
    second = b.register(**other, documents=[VE_ID | {"number": "27.899.728"}])
    b.sync()
    [item] = duplicates(central)
    assert persons_named(central, item) == [first, second]


def test_twins_and_siblings_open_no_review_item(central: Flask, two: tuple[Device, Device]) -> None:
    a, b = two
    mother = a.register(
        kind="woman", given_names="Rosa", family_names="Ochoa", birth_date=date(1996, 4, 2)
    )
    a.register(**SARA, mother_id=mother)
    a.sync()
    b.sync()
    b.register(**SARA | {"given_names": "Ana"}, mother_id=mother)  # her twin
    b.register(**SARA | {"given_names": "Luis", "birth_date": BORN - timedelta(days=700)}, sex="M")
    b.sync()
    assert duplicates(central) == []


def test_a_batch_registering_one_child_twice_opens_one_item(
    central: Flask, two: tuple[Device, Device]
) -> None:
    a, _b = two
    first = a.register(**SARA)
    second = a.register(**SARA | {"birth_date": BORN + timedelta(days=10)})
    a.sync()  # one push batch: the second is matched against the first, still held
    [item] = duplicates(central)
    assert persons_named(central, item) == [first, second]
    assert json.dumps(item.field) == "null"
