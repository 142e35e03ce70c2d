"""The transfer periods are ordinary settings (contigo/config.py): ``TRANSFER_VISITOR_DAYS``
bounds the receiving site's access while a request waits, ``TRANSFER_GRACE_DAYS`` the old
owner's access after an accepted transfer; here both come from the ``CONTIGO_*`` environment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from contigo import create_app
from contigo.db import session_scope
from contigo.exchange.laptop.client import run_sync
from sync.models import PersonSiteAccess
from tests.exchange import test_transfers
from tests.exchange.test_server_apply import register_child
from tests.exchange.test_transfers import Field, decide, request_transfer, site_id

field = test_transfers.field  # the laptops fixture, here over this module's central


@pytest.fixture
def central(central: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The conftest central restarted with short periods set in its environment."""
    monkeypatch.setenv("CONTIGO_TRANSFER_GRACE_DAYS", "7")
    monkeypatch.setenv("CONTIGO_TRANSFER_VISITOR_DAYS", "2")
    central.extensions["contigo.engine"].dispose()
    app = create_app(
        {
            "INSTANCE_PATH": central.instance_path,
            "CONTIGO_MODE": "central",
            "SCRYPT_N": 2**10,
            "IDLE_WATCH": False,
            "TESTING": True,
            "ALLOWED_HOSTS": ("localhost",),
        }
    )
    yield app
    app.extensions["contigo.engine"].dispose()


def _expires_in_days(central: Flask, pid: str, code: str) -> float:
    with session_scope(central) as s:
        row = s.scalar(
            select(PersonSiteAccess).where(
                PersonSiteAccess.person_id == pid,
                PersonSiteAccess.site_id == site_id(central, code),
            )
        )
        assert row is not None and row.expires_at is not None
        left = datetime.fromisoformat(row.expires_at) - datetime.now(UTC)
    return left / timedelta(days=1)


def test_visitor_and_grace_periods_come_from_the_settings(central: Flask, field: Field) -> None:
    assert central.config["TRANSFER_GRACE_DAYS"] == 7
    a, ta = field("a", "CO-A")
    b, tb = field("b", "CO-B")
    pid = register_child(a)
    run_sync(a, ta)
    run_sync(b, tb)
    tid = request_transfer(a, pid, "CO-B")
    run_sync(a, ta)
    assert 1.9 < _expires_in_days(central, pid, "CO-B") <= 2
    run_sync(b, tb)
    decide(b, tid)
    run_sync(b, tb)
    assert 6.9 < _expires_in_days(central, pid, "CO-A") <= 7
