"""The review queue in the menu with its count (issue 15.5): a supervisor sees how many items
wait, a health worker (who resolves nothing) has no entry."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.review.test_review_pages import URL, _user, conflict

__all__ = ["conflict"]


def test_the_supervisor_menu_counts_the_items_waiting(
    app: Flask, login: Callable[..., FlaskClient], conflict: dict[str, str]
) -> None:
    client = login()
    page = client.get("/persons/search", base_url=URL).get_data(as_text=True)
    entry = re.search(r'<a href="/review/" id="nav-review"[^>]*>(.*?)</a>', page, re.S)
    assert entry, "the review queue is in the menu"
    assert 'id="nav-review-count"' in entry.group(1) and ">2<" in entry.group(1)
    assert 'aria-label="2 items wait for your decision"' in entry.group(1)


def test_no_count_when_nothing_waits_and_no_entry_for_a_health_worker(
    app: Flask, client: FlaskClient, login: Callable[..., FlaskClient]
) -> None:
    login()
    page = client.get("/persons/search", base_url=URL).get_data(as_text=True)
    assert 'id="nav-review"' in page and 'id="nav-review-count"' not in page
    _user(app, "worker", "health_worker")
    login("worker")
    page = client.get("/persons/search", base_url=URL).get_data(as_text=True)
    assert 'id="nav-review"' not in page
