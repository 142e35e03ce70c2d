"""Rows that decide access on the central server cannot be edited in the database to give a
site a person or a laptop another site (:mod:`sync.server.integrity`).

Each probe runs against a real central (gunicorn over PostgreSQL) and real laptops over HTTP:
it edits one row with SQL, as someone with write access to the database would, then shows what
another site's laptop can pull. Without the MACs each edit was honoured; now the edited row
grants nothing, its device is refused, and the central logs the row's ids with ``S901``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from contigo.auth.models import User
from contigo.db import session_scope
from contigo.exchange.central.keys import seal_legacy_rows
from contigo.exchange.extensions import server_config
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.transfers import services as transfers
from contigo.vault import get_vault
from sync.models import PersonSiteAccess, SyncCounter, SyncOp
from sync.server import integrity
from sync.server.apply import stored_result
from sync.server.visitors import grant_visitor
from tests.exchange.live import (
    Central,
    Laptop,
    _sup,
    enrolled_laptops,
    module_central,
    register_child,
    site_for,
    transport,
)

pytestmark = pytest.mark.slow


central = module_central("access-integrity")


@pytest.fixture
def pair(
    tmp_path: Path, central: Central, request: pytest.FixtureRequest
) -> Iterator[tuple[Laptop, Laptop, str]]:
    """Laptop A with a child it registered and synced, laptop B at another site; the child."""
    with enrolled_laptops(tmp_path, central) as make:
        a = make("a", site_for(request, "A"))
        b = make("b", site_for(request, "B"))
        pid = register_child(a.app)
        assert a.sync().exit_code == 0
        assert b.sync().exit_code == 0
        yield a, b, pid


def sql(central: Central, statement: str, **params: Any) -> int:
    """Run one statement straight on the central's database; the rows it changed."""
    with central.app.extensions["contigo.engine"].begin() as conn:
        return int(conn.execute(text(statement), params).rowcount)


def site_code(laptop: Laptop) -> str:
    """The code of the laptop's own site."""
    with session_scope(laptop.app) as s:
        home = s.scalar(select(User.home_site_id).where(User.username == "sup"))
        code = s.scalar(select(Site.code).where(Site.id == home))
        assert code is not None
        return code


def central_site(central: Central, laptop: Laptop) -> str:
    """The central's id of the laptop's site."""
    code = site_code(laptop)
    with session_scope(central.app) as s:
        found = s.scalar(select(Site.id).where(Site.code == code))
        assert found is not None
        return found


def sees(laptop: Laptop, person_id: str) -> tuple[int, bool]:
    """What ``laptop`` can get of ``person_id`` from the whole feed and a snapshot, over HTTP:
    (the pull's status, whether any of the person's data came back)."""
    net = transport(laptop)
    try:
        pulled = net.send("GET", "/sync/v1/pull?limit=1000")
        if pulled.status != 200:
            return pulled.status, False
        body = pulled.body or {}
        in_feed = any(c["data"]["person_id"] == person_id for c in body["changes"])
        snap = net.send("POST", "/sync/v1/snapshot", {"person_ids": [person_id]})
        assert snap.status == 200, snap.body
        return 200, in_feed or bool((snap.body or {})["persons"])
    finally:
        net.session.close()


def logged(central: Central, needle: str) -> bool:
    return needle in (central.instance.parent / "central.log").read_text(errors="replace")


def test_an_owner_row_moved_to_another_site_gives_that_site_nothing(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    a, b, pid = pair
    assert sees(b, pid) == (200, False)
    assert sees(a, pid) == (200, True)
    moved = sql(
        central,
        "UPDATE person_site_access SET site_id = :b WHERE person_id = :p AND role = 'owner'",
        b=central_site(central, b),
        p=pid,
    )
    assert moved == 1
    assert sees(b, pid) == (200, False)
    assert logged(central, f"{integrity.TAMPERED} person_site_access person={pid}")


def test_an_expired_visit_extended_in_the_database_is_not_honoured(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    _a, b, pid = pair
    site_b = central_site(central, b)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="microseconds")
    with session_scope(central.app) as s:  # a visit the server granted, now over
        grant_visitor(s, pid, site_b, yesterday)
    assert sees(b, pid) == (200, False)
    extended = sql(
        central,
        "UPDATE person_site_access SET expires_at = '2099-01-01T00:00:00.000000+00:00' "
        "WHERE person_id = :p AND site_id = :b",
        p=pid,
        b=site_b,
    )
    assert extended == 1
    assert sees(b, pid) == (200, False)
    # The server itself can still grant a fresh visit over the tampered row.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="microseconds")
    with session_scope(central.app) as s:
        grant_visitor(s, pid, site_b, tomorrow)
    assert sees(b, pid) == (200, True)


def test_a_change_moved_to_another_person_in_the_database_does_not_open(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    """The change rows' routing columns: a person's changes re-addressed to a person of
    another site are left out of that site's pull (their payload names their own person)."""
    _a, b, pid = pair
    theirs = register_child(b.app)
    assert b.sync().exit_code == 0
    moved = sql(
        central, "UPDATE sync_changes SET person_id = :q WHERE person_id = :p", q=theirs, p=pid
    )
    assert moved >= 1
    net = transport(b)
    try:
        pulled = net.send("GET", "/sync/v1/pull?limit=1000")
    finally:
        net.session.close()
    assert pulled.status == 200
    changes = (pulled.body or {})["changes"]
    assert any(c["entity_id"] == theirs for c in changes)  # its own person's still come
    assert [c for c in changes if c["entity_id"] == pid] == []
    assert logged(central, f"{integrity.TAMPERED} sync_changes")


def test_a_cancelled_transfer_reopened_in_the_database_cannot_be_accepted(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    """B saw A's request, A cancelled it; someone sets it back to ``requested`` in SQL and B,
    which had not synced since, accepts: ownership must not move."""
    a, b, pid = pair
    with session_scope(a.app) as s:
        to_site = s.scalar(select(Site.id).where(Site.code == site_code(b)))
        assert to_site is not None
    with a.app.test_request_context(), session_scope(a.app) as s:
        tid = transfers.request(s, get_vault(a.app), _sup(s), pid, to_site, "moved").id
    assert a.sync().exit_code == 0
    assert b.sync().exit_code == 0  # B holds the open request
    with a.app.test_request_context(), session_scope(a.app) as s:
        transfers.cancel(s, get_vault(a.app), _sup(s), tid)
    assert a.sync().exit_code == 0
    reopened = sql(
        central,
        "UPDATE person_transfers SET state = 'requested', decided_op_id = NULL, "
        "decided_at = NULL WHERE id = :t",
        t=tid,
    )
    assert reopened == 1
    with b.app.test_request_context(), session_scope(b.app) as s:
        transfers.decide(s, get_vault(b.app), _sup(s), tid, "accept")
    b.sync()
    with session_scope(central.app) as s:
        assert integrity.owner_site(s, pid) == central_site(central, a)
        person = s.get(Person, pid)
        assert person is not None and person.owning_site_id == central_site(central, a)
    assert logged(central, f"{integrity.TAMPERED} person_transfers transfer={tid}")


def test_a_laptop_moved_to_another_site_in_the_database_is_refused(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    a, b, pid = pair
    moved = sql(
        central,
        "UPDATE devices SET site_id = :a WHERE id = :d",
        a=central_site(central, a),
        d=b.device_id,
    )
    assert moved == 1
    status, seen = sees(b, pid)
    assert (status, seen) == (401, False)
    assert logged(central, f"{integrity.TAMPERED} devices device={b.device_id}")


def test_an_enrolment_code_inserted_in_the_database_enrols_nothing(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    """Someone who can write to the database makes up a code for A's site: it is refused,
    while a code the server issued still enrols."""
    import hashlib

    import requests
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    a, _b, _pid = pair
    made_up = "ABCD-EFGH-JKMN"
    digest = hashlib.sha256(made_up.replace("-", "").encode()).hexdigest()
    inserted = sql(
        central,
        "INSERT INTO enrolment_codes (code_hash, site_id, expires_at) "
        "VALUES (:h, :s, '2099-01-01T00:00:00.000000+00:00')",
        h=digest,
        s=central_site(central, a),
    )
    assert inserted == 1
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def enrol(code: str, device_id: str) -> int:
        body = {
            "code": code,
            "device_id": device_id,
            "public_key": base64.urlsafe_b64encode(key).decode(),
            "label": "probe",
        }
        return requests.post(central.url + "/sync/v1/enrol", json=body, timeout=30).status_code

    assert enrol(made_up, "f" * 32) == 403
    assert logged(central, f"{integrity.TAMPERED} enrolment_codes")
    assert enrol(central.code(site_code(a)), "e" * 32) == 200


def test_a_revoked_laptop_unrevoked_in_the_database_stays_refused(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    a, _b, pid = pair
    assert central.cli("device", "revoke", a.device_id).exit_code == 0
    assert sees(a, pid)[0] == 401
    assert sql(central, "UPDATE devices SET revoked_at = NULL WHERE id = :d", d=a.device_id) == 1
    assert sees(a, pid) == (401, False)


def test_rows_from_before_the_upgrade_are_sealed_and_macd_once(
    central: Central, pair: tuple[Laptop, Laptop, str]
) -> None:
    """A ledger row with a plain result and an access row without a MAC (as an upgraded
    central holds them) are sealed and MACed by the first start, and only by that one."""
    a, _b, pid = pair
    with session_scope(central.app) as s:
        op = s.scalars(select(SyncOp).where(SyncOp.entity_id == pid)).first()
        assert op is not None and op.result is None and op.result_enc is not None
        result = stored_result(server_config(central.app), op)
        op_id = op.op_id
    plain = json.dumps({"op_id": op_id, "status": "applied", "server_seq": 1})
    sql(
        central,
        "UPDATE sync_ops SET result = :r, result_enc = NULL WHERE op_id = :o",
        r=plain,
        o=op_id,
    )
    sql(central, "UPDATE person_site_access SET mac = NULL WHERE person_id = :p", p=pid)
    sql(central, "DELETE FROM sync_counters WHERE name = :n", n=integrity.BACKFILLED)
    assert sees(a, pid) == (200, False)  # no MAC: no access
    seal_legacy_rows(central.app)
    with session_scope(central.app) as s:
        op = s.get(SyncOp, op_id)
        assert op is not None and op.result is None
        assert stored_result(server_config(central.app), op) == {
            "op_id": op_id,
            "status": "applied",
            "server_seq": 1,
        }
        assert result["op_id"] == op_id
        assert s.get(SyncCounter, integrity.BACKFILLED) is not None
        row = s.get(PersonSiteAccess, (pid, central_site(central, a)))
        assert row is not None and row.mac is not None
    assert sees(a, pid) == (200, True)
    # Once done, a row without a MAC is never adopted.
    sql(central, "UPDATE person_site_access SET mac = NULL WHERE person_id = :p", p=pid)
    seal_legacy_rows(central.app)
    assert sees(a, pid) == (200, False)


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE person_site_access SET granted_seq = granted_seq + 1000 WHERE person_id = :p",
        "DELETE FROM person_site_access WHERE person_id = :p",
    ],
    ids=["edited", "deleted"],
)
def test_an_owner_row_changed_in_the_database_while_its_site_pulls_leaves_its_scope(
    central: Central, pair: tuple[Laptop, Laptop, str], edit: str
) -> None:
    """Both workers keep the site's verified scope between pages (under its access generation):
    a row changed straight in SQL between two pages still takes the person out of the very
    next page's scope, as if every row were read and verified again."""
    a, _b, pid = pair
    other = register_child(a.app)
    assert a.sync().exit_code == 0
    net = transport(a)
    try:
        pulled = net.send("GET", "/sync/v1/pull?limit=1000")
        assert pulled.status == 200
        for _ in range(6):  # pages enough for both workers to hold the scope
            cursor = (pulled.body or {})["next_cursor"]
            pulled = net.send("GET", f"/sync/v1/pull?limit=1000&cursor={cursor}")
            assert pulled.status == 200 and "scope" not in (pulled.body or {})
        # The set recorded for the device's cursor: the site's persons, under one fingerprint.
        with central.app.extensions["contigo.engine"].connect() as conn:
            recorded = conn.execute(
                text("SELECT fingerprint, person_id FROM device_scopes WHERE device_id = :d"),
                {"d": a.device_id},
            ).all()
        assert len({f for f, _p in recorded}) == 1
        assert sorted(p for _f, p in recorded) == sorted([pid, other])
        assert sql(central, edit, p=pid) == 1
        cursor = (pulled.body or {})["next_cursor"]
        pulled = net.send("GET", f"/sync/v1/pull?limit=1000&cursor={cursor}")
    finally:
        net.session.close()
    assert pulled.status == 200
    assert (pulled.body or {})["scope"] == {"add": [], "remove": [pid]}
    assert other not in str((pulled.body or {})["scope"])
    if edit.startswith("UPDATE"):
        assert logged(central, f"{integrity.TAMPERED} person_site_access person={pid}")
