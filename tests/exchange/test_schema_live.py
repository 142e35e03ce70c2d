"""Old clients against a real central server process (gunicorn over PostgreSQL): S16 and S17
over real HTTP (SYNC.md §2.12). The old client is the engine run at an older wire schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from contigo.db import session_scope
from contigo.exchange.laptop.client import engine_for
from contigo.persons import risk_flags
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from sync.client.engine import UpgradeRequired
from sync.models import SyncOp
from tests.exchange.live import Central, Laptop, _sup, register_child, transport
from tests.exchange.test_two_laptops import Recorder, central, laptops, site  # noqa: F401

pytestmark = pytest.mark.slow
FLAGS = {"risk_flags.hiv_exposed": True, "risk_flags.oedema_history": "current"}
OLD = 1
"""The schema before the risk flags these scenarios exercise (schema 2 added them)."""


def _run(laptop: Laptop, schema: int, recorder: Recorder | None = None) -> Any:
    inner = transport(laptop)
    try:
        with laptop.app.app_context():
            return engine_for(laptop.app, recorder or inner, schema_version=schema).run()
    finally:
        inner.session.close()


def _flags(app: Flask, pid: str) -> dict[str, Any]:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return risk_flags.read(get_vault(app), person)


def _phone(app: Flask, pid: str) -> Any:
    with session_scope(app) as s:
        person = s.get(Person, pid)
        assert person is not None
        return persons.decrypt(get_vault(app), person).phone


def test_s16_live_old_client_is_upcast_never_sent_new_fields_never_clears_them(
    central: Central,  # noqa: F811
    laptops: Callable[[str], Laptop],  # noqa: F811
) -> None:
    new, old = laptops("new"), laptops("old")
    pid = register_child(new.app)
    with new.app.test_request_context(), session_scope(new.app) as s:
        risk_flags.record(s, get_vault(new.app), _sup(s), pid, FLAGS)
    assert new.sync().exit_code == 0

    inner = transport(old)
    recorder = Recorder(inner)
    try:
        with old.app.app_context():
            engine_for(old.app, recorder, schema_version=OLD).run()
            pulled = json.dumps(recorder.bodies("/sync/v1/pull"))
            assert pid in pulled and "risk_flags" not in pulled
            with old.app.test_request_context(), session_scope(old.app) as s:
                persons.update(s, get_vault(old.app), _sup(s), pid, {"phone": "+57 310"})
            report = engine_for(old.app, recorder, schema_version=OLD).run()
    finally:
        inner.session.close()
    assert report.acknowledged == 1 and old.outbox() == []
    assert central.count(SyncOp, SyncOp.schema_version == OLD) == 1
    expected = {**dict.fromkeys(risk_flags.FIELDS), **FLAGS}
    assert _flags(central.app, pid) == expected
    assert new.sync().exit_code == 0
    assert _phone(new.app, pid) == "+57 310" and _flags(new.app, pid) == expected
    assert _flags(old.app, pid) == dict.fromkeys(risk_flags.FIELDS)
    assert old.sync().exit_code == 0  # updated: hello asks for backfill, flags arrive
    assert _flags(old.app, pid) == expected


def test_s17_live_client_too_old_keeps_its_outbox_and_pushes_after_update(
    central: Central,  # noqa: F811
    laptops: Callable[[str], Laptop],  # noqa: F811
) -> None:
    old = laptops("old")
    pid = register_child(old.app)
    device = old.device_id
    with pytest.raises(UpgradeRequired):
        _run(old, 0)  # older than any schema the server can upcast
    assert [(o.op_type, o.state) for o in old.outbox()] == [("person.create", "pending")]
    assert central.count(SyncOp, SyncOp.device_id == device) == 0
    result = old.sync()  # the updated laptop
    assert result.exit_code == 0, result.output
    assert old.outbox() == []
    assert central.count(SyncOp, SyncOp.device_id == device, SyncOp.status == "applied") == 1
    with session_scope(central.app) as s:
        assert s.get(Person, pid) is not None
