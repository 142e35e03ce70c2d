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

from contigo import create_app
from contigo.db import session_scope
from contigo.exchange.central.names import NameFeed
from contigo.exchange.extensions import server_config
from contigo.vault import get_vault
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


def test_a_duplicate_is_found_whichever_central_worker_receives_it(
    central: Flask, two: tuple[Device, Device]
) -> None:
    """Two central workers over one database (gunicorn's processes), each with its own
    in-memory name index built when it started: a child first pushed to one worker and
    registered again on a laptop whose push reaches the other is still found by name (no
    shared document, no shared mother)."""
    a, b = two
    other_worker = create_app(dict(central.config))  # started now: its index is empty
    try:
        first = a.register(**SARA)
        a.sync()  # reaches the first worker
        b.net.inner.client = other_worker.test_client()  # b's requests reach the other one
        second = b.register(**SARA | {"birth_date": BORN + timedelta(days=20)})
        b.sync()
        [item] = duplicates(central)
        assert persons_named(central, item) == [first, second]
        # And the other worker's name search finds both, as a central user's search would.
        with session_scope(other_worker) as s:
            found = get_vault(other_worker).fuzzy_search("Sara Chacón", s=s)
        assert {first, second} <= set(found)
    finally:
        get_vault(other_worker).lock()
        other_worker.extensions["contigo.engine"].dispose()


def test_another_workers_index_follows_deletions_and_moves_only_on_commit(
    central: Flask, two: tuple[Device, Device]
) -> None:
    a, _ = two
    other_worker = create_app(dict(central.config))
    vault = get_vault(other_worker)
    try:
        first = a.register(**SARA)
        a.sync()  # reaches the first worker
        feed = vault.name_source
        assert isinstance(feed, NameFeed)
        seen = feed.seen
        with session_scope(other_worker) as s:
            assert first in vault.fuzzy_search("Sara Chacón", s=s)
            s.rollback()  # what it read is read again by the next transaction
        assert feed.seen == seen
        with session_scope(other_worker) as s:
            assert first in vault.fuzzy_search("Sara Chacón", s=s)
        assert feed.seen > seen

        a.lifecycle("delete", first)
        a.sync()
        with session_scope(other_worker) as s:
            assert first not in vault.fuzzy_search("Sara Chacón", s=s)
    finally:
        vault.lock()
        other_worker.extensions["contigo.engine"].dispose()
