"""The central server keeps nothing personal in plaintext (DESIGN.md §4), searched with SQL.

A laptop writes distinctive canaries (names, a document number, a phone, an address, a date of
birth, a visit's note, a weight, an HIV exposure flag, a transfer reason) and syncs them over real
HTTP to a real central (gunicorn over PostgreSQL). Then every text, varchar, json/jsonb and
bytea column of every table of the central's database is searched for each canary with SQL (a
raw grep of PostgreSQL's files would miss values it compressed), and the central's log too.
"""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.types import ARRAY, String

from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.persons import risk_flags
from contigo.persons import services as persons
from contigo.transfers import services as transfers
from contigo.vault import get_vault
from sync.models import SyncOp
from tests.exchange.live import (
    Central,
    Laptop,
    _sup,
    enrolled_laptops,
    module_central,
    site_for,
)
from tests.factories import CHILD, VISIT

pytestmark = pytest.mark.slow

BORN = date.today() - timedelta(days=613)
CANARIES = {
    "given_names": "Zebulonia Quirinalda",
    "family_names": "Qwértyvich Xanthópoulos",
    "doc_number": "ZX-987654321",
    "phone": "+57 311 424 8642",
    "new_phone": "+57 300 777 1357",
    "address": "Calle del Canario Azul 7717",
    "birth_date": BORN.isoformat(),
    "note": "Nota canario: vorpal snicker-snack 5417",
    "reason": "Motivo canario: familia trasladada a Cucuta 9931",
}
WEIGHT = "13.37"
HIV = ('"risk_flags.hiv_exposed":{"value":true', '"risk_flags.hiv_exposed": {"value": true')
"""An HIV exposure flag's value next to its name (the name alone says only that it was set)."""
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


def needles() -> dict[str, list[str]]:
    """Each canary's searchable forms: whole, by word (names), folded and in pieces."""
    out: dict[str, list[str]] = {}
    for name, value in CANARIES.items():
        forms = {value, *(value.split() if name.endswith("names") else [])}
        folded = "".join(
            c for c in unicodedata.normalize("NFD", value) if not unicodedata.combining(c)
        )
        forms |= {folded, unicodedata.normalize("NFD", value)}
        if name == "doc_number":
            forms |= {"987654321"}
        if name.endswith("phone"):
            forms |= {value.replace(" ", "").lstrip("+"), value.split(" ", 2)[2]}
        if name in ("note", "reason"):
            forms |= {value.split(": ")[1], value.split(": ")[1][:14]}
        out[name] = sorted(f for f in forms if len(f) >= 5)
    out["weight"] = [f'"weight_kg":{WEIGHT}', f'"weight_kg": {WEIGHT}']
    out["hiv_exposed"] = list(HIV)
    return out


def columns(conn: Connection) -> list[tuple[str, str, str]]:
    """Every (table, column, type) of the public schema holding text, JSON or bytes."""
    rows = conn.execute(
        text(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
            " AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
            "WHERE c.table_schema = 'public' AND c.data_type IN :types "
            "ORDER BY c.table_name, c.column_name"
        ).bindparams(bindparam("types", expanding=True)),
        {"types": [*TEXT_TYPES, "bytea"]},
    ).all()
    return [(str(t), str(c), str(d)) for t, c, d in rows]


def found_in(conn: Connection, table: str, column: str, kind: str, forms: list[str]) -> bool:
    """Whether any row's ``column`` holds any of ``forms`` (case-insensitive in text and JSON;
    as raw UTF-8 bytes, as written and lower-cased, in bytea)."""
    if kind == "bytea":
        probe = (
            f'SELECT EXISTS (SELECT 1 FROM "{table}", unnest(:forms) AS n(v) '
            f"WHERE position(convert_to(n.v, 'UTF8') IN \"{column}\") > 0 "
            f"OR position(convert_to(lower(n.v), 'UTF8') IN \"{column}\") > 0)"
        )
    else:
        probe = (
            f'SELECT EXISTS (SELECT 1 FROM "{table}", unnest(:forms) AS n(v) '
            f'WHERE strpos(lower("{column}"::text), lower(n.v)) > 0)'
        )
    stmt = text(probe).bindparams(bindparam("forms", type_=ARRAY(String)))
    return bool(conn.execute(stmt, {"forms": forms}).scalar())


def plaintext_hits(app: Flask) -> list[str]:
    """``canary@table.column`` for every canary found anywhere in the central's database."""
    hits = []
    with app.extensions["contigo.engine"].connect() as conn:
        cols = columns(conn)
        assert len(cols) > 50, cols  # the enumeration did see the schema
        for name, forms in needles().items():
            hits += [
                f"{name}@{table}.{column}"
                for table, column, kind in cols
                if found_in(conn, table, column, kind, forms)
            ]
    return hits


central = module_central("central-at-rest")


def _write_canaries(laptop: Laptop, to_site_id: str) -> str:
    app = laptop.app
    data = {
        **CHILD,
        "given_names": CANARIES["given_names"],
        "family_names": CANARIES["family_names"],
        "birth_date": BORN,
        "phone": CANARIES["phone"],
        "address": CANARIES["address"],
        "documents": [{"country": "VE", "type": "ppt", "number": CANARIES["doc_number"]}],
    }
    with app.test_request_context(), session_scope(app) as s:
        actor = _sup(s)
        person_id = persons.register(s, get_vault(app), actor, actor.home_site_id, data).id
        visit = {**VISIT, "occurred_on": date.today(), "weight_kg": float(WEIGHT)}
        visit["notes"] = CANARIES["note"]
        encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, visit)
    with app.test_request_context(), session_scope(app) as s:
        persons.update(s, get_vault(app), _sup(s), person_id, {"phone": CANARIES["new_phone"]})
        risk_flags.record(s, get_vault(app), _sup(s), person_id, {"risk_flags.hiv_exposed": True})
    with app.test_request_context(), session_scope(app) as s:
        transfers.request(s, get_vault(app), _sup(s), person_id, to_site_id, CANARIES["reason"])
    return person_id


def _site_id(app: Flask, code: str) -> str:
    from sqlalchemy import select

    from contigo.sites.models import Site

    with session_scope(app) as s:
        found = s.scalar(select(Site.id).where(Site.code == code))
        assert found is not None, code
        return found


def test_the_sql_search_finds_each_kind_of_column(central: Central) -> None:
    """The search itself works: a canary in a text, a jsonb and a bytea column is found."""
    with central.app.extensions["contigo.engine"].begin() as conn:
        conn.execute(text("CREATE TABLE canary_check (t text, j jsonb, b bytea)"))
        try:
            conn.execute(
                text("INSERT INTO canary_check VALUES (:t, CAST(:j AS jsonb), :b)"),
                {
                    "t": "x" + CANARIES["doc_number"],
                    "j": '{"phone": "' + CANARIES["phone"] + '"}',
                    "b": b"\x01" + CANARIES["note"].lower().encode(),
                },
            )
            assert found_in(conn, "canary_check", "t", "text", needles()["doc_number"])
            assert found_in(conn, "canary_check", "j", "jsonb", needles()["phone"])
            assert found_in(conn, "canary_check", "b", "bytea", needles()["note"])
            assert not found_in(conn, "canary_check", "t", "text", needles()["address"])
        finally:
            conn.execute(text("DROP TABLE canary_check"))


def test_no_canary_in_any_column_or_log_of_the_central(
    central: Central, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    site, other = site_for(request, "P"), site_for(request, "Q")
    with enrolled_laptops(tmp_path, central) as make:
        receiving = make("b", other)
        laptop = make("a", site)
        assert laptop.sync().exit_code == 0  # learns the other site from the directory
        person_id = _write_canaries(laptop, _site_id(laptop.app, other))
        result = laptop.sync()
        assert result.exit_code == 0, result.output
        assert laptop.outbox() == []
        assert receiving.sync().exit_code == 0
    assert central.count(SyncOp, SyncOp.person_id == person_id) >= 5  # all five ops arrived
    hits = plaintext_hits(central.app)
    assert hits == [], hits
    log = (central.instance.parent / "central.log").read_bytes().decode("utf-8", "replace")
    assert [n for n, forms in needles().items() if any(f in log for f in forms)] == []
