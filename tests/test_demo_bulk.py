"""The demo's bulk writer leaves exactly the record the services leave.

One plan (a seed, 40 persons) is built twice into real SQLCipher laptops: through the services
(``build_demo(..., through_services=True)``) and in bulk (the default). Every table the build
writes is compared row by row in insertion order, with ids, contigo ids, times, HLC stamps and
hashes normalised (an id becomes the order in which it first appears, so references must point
at the same rows) and every sealed value decrypted: persons' fields, visit payloads with their WHO
assessment, void reasons, outbox payloads. Report facts (episodes) and reach (every fact folded,
the visits' too), search results and the audit chain are compared too, and the bulk-built
laptop serves a person page and a search to a signed-in user.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from contigo import create_app
from contigo.audit import chain as audit_chain
from contigo.auth import services as auth
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.demo.build import DemoOptions, build_demo
from contigo.encounters.models import Encounter
from contigo.persons import risk_flags
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.reports.feed import Pseudonymiser, surrogate
from contigo.vault import Vault, get_vault
from tests.conftest import csrf_of

PASSWORD = "a demo password"
#: Seed 7 draws a void, a corrected typo and oedema (a risk-flag patch) among 40 persons.
OPTIONS = DemoOptions(persons=40, women=10, seed=7, password=PASSWORD)
#: What the build writes for the persons (sites, users and keys are provisioned alike by both).
TABLES = ("persons", "person_index", "care_episodes", "encounters", "encounter_voids",
          "appointments", "sync_outbox", "audit_entries")  # fmt: skip
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
HLC = re.compile(r"^\d{13}-\d{5}-[0-9a-f]{32}$")
HASH = re.compile(r"^[0-9a-f]{64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
#: Per-build values that are neither ids nor times: the Contigo ID a person is given at random,
#: blind indexes (keyed by the laptop's own index key).
RANDOM = {"contigo_id", "bidx"}


class Normaliser:
    """Ids replaced by their order of first appearance; times, stamps, hashes by a mark."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any, name: str = "") -> Any:
        if name in RANDOM:
            return "<random>"
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, bytes | memoryview):
            return "<sealed>"
        if not isinstance(value, str):
            return value
        if HLC.match(value):
            return "<hlc>"
        if HEX_ID.match(value):
            return self.ids.setdefault(value, f"id{len(self.ids)}")
        if HASH.match(value) or TIME.match(value):
            return "<hash/time>"
        return value


def _build(folder: Path, *, through_services: bool) -> Flask:
    app = create_app({"INSTANCE_PATH": str(folder), "IDLE_WATCH": False, "TESTING": True})
    build_demo(app, OPTIONS, through_services=through_services)
    return app


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Flask]]:
    """The same plan built through the services and in bulk."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONTIGO_SCRYPT_N", "1024")  # cheap key derivation: this is a test
        apps = (
            _build(tmp_path_factory.mktemp("services"), through_services=True),
            _build(tmp_path_factory.mktemp("bulk"), through_services=False),
        )
    yield apps
    for app in apps:
        get_vault(app).lock()
        app.extensions["contigo.engine"].dispose()


def _unlock(app: Flask, s: Session, username: str = "demo.co") -> User:
    vault = get_vault(app)
    user = auth.authenticate(s, vault, username, PASSWORD, max_failed=5, lockout_s=60)
    vault.load_index_key(s)
    vault.build_name_index(s)
    return user


def _opened(v: Vault, s: Session, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The row's sealed values in clear."""
    found: dict[str, Any] = {}
    if table == "persons":
        person = s.get(Person, row["id"])
        assert person is not None
        view = persons.decrypt(v, person)
        found = {k: getattr(view, k) for k in ("given_names", "family_names", "birth_date",
                                               "sex", "documents", "phone", "address")}  # fmt: skip
        found["risk_flags"] = risk_flags.read(v, person)
    elif table == "encounters":
        person = s.get(Person, row["person_id"])
        assert person is not None
        key = v.person_key(person)
        found = v.decrypt_with(key, "encounters", row["id"], "payload", row["payload_enc"])
    elif table == "encounter_voids":
        encounter = s.get(Encounter, row["encounter_id"])
        assert encounter is not None
        person = s.get(Person, encounter.person_id)
        assert person is not None
        key = v.person_key(person)
        found = {"reason": v.decrypt_with(key, "encounter_voids", row["id"], "reason",
                                          row["reason_enc"])}  # fmt: skip
    elif table == "sync_outbox":
        found = json.loads(v.outbox_decrypt(row["op_id"], row["payload_enc"]))
    return found


def _parsed(row: dict[str, Any]) -> dict[str, Any]:
    """An op's base (JSON text naming the ops it follows) as a dict, to normalise its ids."""
    return {"base": json.loads(row["base"])} if "base" in row else {}


def _snapshot(app: Flask) -> dict[str, Any]:
    """Every table the build writes, normalised, plus report facts and search results."""
    norm = Normaliser()
    out: dict[str, Any] = {}
    with session_scope(app) as s:
        user = _unlock(app, s)
        v = get_vault(app)
        for table in TABLES:
            rows = [
                dict(r) for r in s.execute(text(f"SELECT * FROM {table} ORDER BY rowid")).mappings()
            ]
            out[table] = [
                norm(row | {"clear": _opened(v, s, table, row)} | _parsed(row)) for row in rows
            ]
        # A fact's id and pseudonyms are keyed hashes (the laptop's own key): whether a
        # caregiver is named is compared, and the site.
        facts = [
            {k: val for k, val in f.items() if k not in ("id", "pseudonym")}
            | {"caregiver": f["caregiver"] is not None, "site_id": norm(f["site_id"])}
            for f in s.execute(text("SELECT * FROM report_facts")).mappings()
        ]
        out["report_facts"] = sorted(json.dumps(f, default=str, sort_keys=True) for f in facts)
        # A reach row's person and subject are keyed too: each is mapped back to its person,
        # as normalised above.
        pseudo = Pseudonymiser.of(v)
        who = {
            surrogate(pseudo(pid)): norm(pid) for pid in s.scalars(text("SELECT id FROM persons"))
        }
        reach = [
            dict(r)
            | {
                "person": who[r["person"]],
                "subject": who[r["subject"]],
                "site_id": norm(r["site_id"]),
            }
            for r in s.execute(text("SELECT * FROM report_reach")).mappings()
        ]
        out["report_reach"] = sorted(json.dumps(r, sort_keys=True) for r in reach)
        names = sorted({row["clear"]["family_names"].split()[0] for row in out["persons"]})
        out["search"] = {
            q: sorted(
                (p.given_names, p.family_names, str(p.birth_date))
                for p in persons.search(s, v, user, q, limit=200)
            )
            for q in names[:6]
        }
    with session_scope(app) as s:
        out["audit_chain"] = audit_chain.verify(s)
    return out


def _counts(app: Flask) -> dict[str, int]:
    with session_scope(app) as s:
        names = s.scalars(text("SELECT name FROM sqlite_master WHERE type = 'table'")).all()
        return {n: s.scalar(text(f'SELECT count(*) FROM "{n}"')) or 0 for n in names}


def test_bulk_demo_is_the_record_the_services_write(built: tuple[Flask, Flask]) -> None:
    assert _counts(built[0]) == _counts(built[1])  # no table written by one way only
    services, bulk = (_snapshot(app) for app in built)
    assert services["persons"], "the services built nothing"
    assert {t: len(services[t]) for t in TABLES} == {t: len(bulk[t]) for t in TABLES}
    for table in TABLES:
        for row_s, row_b in zip(services[table], bulk[table], strict=True):
            assert row_s == row_b, table
    assert services["report_facts"] == bulk["report_facts"]
    assert services["report_reach"] == bulk["report_reach"]
    assert {json.loads(r)["kind"] for r in services["report_reach"]} == {
        "screen", "dispense", "counsel", "episode"}  # fmt: skip
    assert services["search"] == bulk["search"]
    assert any(services["search"].values())
    assert bulk["audit_chain"].broken_id is None
    assert bulk["audit_chain"].verified == services["audit_chain"].verified


def test_bulk_demo_has_what_the_stories_need(built: tuple[Flask, Flask]) -> None:
    """The small plan reaches every kind of row the comparison must cover."""
    with session_scope(built[1]) as s:
        count = {t: s.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES}
        ops = set(s.scalars(text("SELECT DISTINCT op_type FROM sync_outbox")))
        corrected = s.scalar(select(Encounter.id).where(Encounter.supersedes_id.isnot(None)))
    assert corrected is not None
    assert all(count.values()), count
    assert {"person.create", "person.patch", "encounter.create", "encounter.void",
            "care_episode.create", "care_episode.patch", "care_episode.close"} <= ops  # fmt: skip


def test_bulk_demo_serves_a_person_page_and_a_search(built: tuple[Flask, Flask]) -> None:
    app = built[1]
    with session_scope(app) as s:
        child = s.scalars(
            select(Encounter.person_id).where(Encounter.country == "EC").limit(1)
        ).one()
    client = app.test_client()
    token = csrf_of(client)
    resp = client.post(
        "/login",
        data={"username": "demo.ec", "password": PASSWORD, "csrf_token": token},
        base_url="http://localhost",
    )
    assert resp.status_code == 302
    page = client.get(f"/persons/{child}", base_url="http://localhost")
    assert page.status_code == 200
    with session_scope(app) as s:
        person = s.get(Person, child)
        assert person is not None
        family = persons.decrypt(get_vault(app), person).family_names
    found = client.post(
        "/persons/search",
        data={"q": family.split()[0], "csrf_token": csrf_of(client)},
        base_url="http://localhost",
    )
    assert found.status_code == 200
    assert family.split()[0].encode() in found.data
