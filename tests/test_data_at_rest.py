"""Nothing personal reaches the disk or the logs in the clear, and ciphertexts cannot be moved.

Unique canary values (names, a document number, a phone, an address, a weight of 13.37 kg, a
MUAC of 117 mm, a note) are written through the real app, over HTTP (pages and the JSON API) and
through the services. Then the raw bytes of the database, its WAL, every other file of the
instance folder and every log record captured at DEBUG are searched for each canary in several
encodings. Both the WAL (before a checkpoint) and the main file (after one) are checked.

Then a ciphertext moved to another row, or altered by one bit, must be refused: the services
raise :class:`~contigo.crypto.TamperedCiphertext` and the page is an error page, never the
wrong person's data.
"""

from __future__ import annotations

import base64
import logging
import re
import struct
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.db import session_scope
from contigo.encounters import services as encounters
from contigo.encounters.models import Encounter
from contigo.i18n import catalogue
from contigo.persons import services as persons
from contigo.persons.models import Person
from contigo.vault import get_vault
from tests.conftest import PASSWORD

TODAY = date.today()
BORN = TODAY - timedelta(days=700)

#: Written over HTTP (registration page, then a visit through the API).
WEB = {
    "given_names": "Zebulonia Quirinalda",
    "family_names": "Qwértyvich Xanthópoulos",
    "doc_number": "ZX-987654321",
    "phone": "+57 311 424 8642",
    "address": "Calle del Canario Azul 7717",
}
#: Written through the services.
SERVICE = {
    "given_names": "Yggdrasilia Brunhildë",
    "family_names": "Brrkowitz Vandersnoot",
    "doc_number": "QK-555019283",
}
NOTE = "Nota canario: vorpal snicker-snack 5417"
WEIGHT = 13.37
MUAC = 117

PageClient = Callable[[str, dict[str, Any]], Any]


# ── what must never be found ───────────────────────────────────────────────────────────────


def _text_forms(value: str) -> set[str]:
    """A value as written, composed and decomposed, lower- and upper-case, and as the search
    normalisation writes it (no accents, lower case)."""
    folded = "".join(
        c for c in unicodedata.normalize("NFD", value) if not unicodedata.combining(c)
    ).lower()
    forms = {value, value.lower(), value.upper(), folded}
    forms |= {unicodedata.normalize(nf, v) for v in set(forms) for nf in ("NFC", "NFD")}
    return {f for f in forms if len(f) >= 5}


def _byte_forms(value: str) -> set[bytes]:
    """Each text form in UTF-8, UTF-16 (both orders) and JSON's ``\\u`` escapes, plus the
    stable middle of its base64 encoding at each of the three alignments."""
    out: set[bytes] = set()
    for form in _text_forms(value):
        raw = form.encode("utf-8")
        out |= {raw, form.encode("utf-16-le"), form.encode("utf-16-be")}
        out.add(form.encode("ascii", "backslashreplace").replace(b"\\x", b"\\u00"))
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + raw)
            middle = encoded[4 : len(encoded) - 4]
            if len(middle) >= 8:  # shorter runs of base64 letters would match by chance
                out.add(middle)
    return {b for b in out if len(b) >= 5}


def canaries() -> dict[str, list[bytes | re.Pattern[bytes]]]:
    """Every canary, by name, as byte strings and patterns to search for."""
    found: dict[str, list[bytes | re.Pattern[bytes]]] = {}
    for prefix, values in (("web", WEB), ("service", SERVICE)):
        for name, value in values.items():
            parts = [value, *value.split()] if name.endswith("names") else [value]
            if name == "doc_number":
                parts += [value.split("-")[1], value.replace("-", "").lower()]
            if name == "phone":
                parts += [value.replace(" ", "").lstrip("+"), "424 8642"]
            for part in parts:
                found[f"{prefix}.{name}:{part}"] = [*_byte_forms(part)]
    found["note"] = [*_byte_forms(NOTE), *_byte_forms("vorpal snicker")]
    # A float's text forms, but not a timestamp's seconds ("…:13.370000"); and its binary forms.
    found["weight"] = [
        re.compile(rb"13\.37(?![0-9])"),
        re.compile(re.escape("13.37".encode("utf-16-le")) + rb"(?!\d\x00)"),
        struct.pack("<d", WEIGHT),
        struct.pack(">d", WEIGHT),
    ]
    found["muac"] = [re.compile(rb'muac_mm"?\s*[:=]\s*"?117')]
    return found


def leaks(blob: bytes, where: str = "") -> list[str]:
    """The canaries present in ``blob``, as ``name@where``."""
    hits = []
    for name, needles in canaries().items():
        for needle in needles:
            present = needle.search(blob) if isinstance(needle, re.Pattern) else needle in blob
            if present:
                hits.append(f"{name}@{where}")
                break
    return hits


def leaked(blob: bytes) -> set[str]:
    """The kinds of canary in ``blob`` (``web.given_names``, ``weight`` …)."""
    return {hit.split("@")[0].split(":")[0] for hit in leaks(blob)}


# ── writing the canaries ───────────────────────────────────────────────────────────────────


@pytest.fixture
def page(login: Callable[..., FlaskClient]) -> PageClient:
    """POST a form as the signed-in supervisor, with the session's CSRF token."""
    client = login()
    client.get("/")

    def _post(url: str, data: dict[str, Any]) -> Any:
        with client.session_transaction() as sess:
            token = sess["csrf"]
        return client.post(url, data={"csrf_token": token, **data})

    return _post


def _write_over_http(client: FlaskClient, page: PageClient) -> str:
    """Register a child on the page, record a visit through the API, view and search."""
    form = {
        "kind": "child", "sex": "F", "birth_date": BORN.isoformat(), "nationality": "VE",
        "population_type": "in_transit", "birth_date_precision": "exact",
        "given_names": WEB["given_names"], "family_names": WEB["family_names"],
        "doc_country": "VE", "doc_type": "birth_certificate", "doc_number": WEB["doc_number"],
        "phone": WEB["phone"], "address": WEB["address"], "confirm": "register_anyway",
    }  # fmt: skip
    response = page("/persons/new", form)
    assert response.status_code == 302, response.get_data(as_text=True)[-800:]
    person_id = str(response.headers["Location"].rsplit("/", 1)[1])
    token = client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD})
    assert token.json is not None
    headers = {"Authorization": f"Bearer {token.json['token']}"}
    visit = {"occurred_on": TODAY.isoformat(), "weight_kg": WEIGHT, "lenhei_cm": 84.2,
             "measure": "l", "muac_mm": MUAC, "notes": NOTE}  # fmt: skip
    saved = client.post(f"/api/v1/persons/{person_id}/encounters", json=visit, headers=headers)
    assert saved.status_code == 201, saved.json
    shown = client.get(f"/persons/{person_id}")
    assert shown.status_code == 200 and "Zebulonia" in shown.get_data(as_text=True)
    assert page("/persons/search", {"q": "zebulonia qwertyvich"}).status_code == 200
    return person_id


def _write_through_services(app: Flask, make_person: Callable[..., str]) -> str:
    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        person_id = make_person(
            s, actor, given_names=SERVICE["given_names"], family_names=SERVICE["family_names"],
            birth_date=BORN, documents=[{"country": "CO", "type": "ppt",
                                         "number": SERVICE["doc_number"]}],
        )  # fmt: skip
        data = {"occurred_on": TODAY, "weight_kg": WEIGHT, "lenhei_cm": 83.9, "measure": "l",
                "muac_mm": MUAC, "oedema_grade": 0, "notes": NOTE, "supplements": [],
                "counselling": [], "referral": "none"}  # fmt: skip
        encounters.record(s, get_vault(app), actor, person_id, actor.home_site_id, data)
    return person_id


@pytest.fixture
def written(
    app: Flask,
    client: FlaskClient,
    page: PageClient,
    make_person: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> Iterator[tuple[str, str]]:
    """Both persons written with every log captured at DEBUG (SQL statements included)."""
    caplog.set_level(logging.DEBUG)
    for name in ("contigo", "sqlalchemy.engine", "werkzeug", "waitress", "alembic"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield _write_over_http(client, page), _write_through_services(app, make_person)


def _files(instance: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(instance)): p.read_bytes() for p in instance.rglob("*") if p.is_file()
    }


# ── at rest ────────────────────────────────────────────────────────────────────────────────


def test_the_search_finds_each_canary_and_ignores_timestamps() -> None:
    """The check itself works: a canary is found in each encoding, a timestamp is not one."""
    clear = f'{{"given_names": "{WEB["given_names"]}", "muac_mm": 117, "weight_kg": 13.37}}'
    assert {"web.given_names", "weight", "muac"} <= leaked(clear.encode())
    assert leaked(SERVICE["family_names"].lower().encode("utf-16-le")) == {"service.family_names"}
    assert leaked(unicodedata.normalize("NFD", WEB["family_names"]).encode()) == {
        "web.family_names"
    }
    assert leaked(base64.b64encode(b"ab" + NOTE.encode())) == {"note"}
    assert leaked(b"V-" + WEB["doc_number"].encode()) == {"web.doc_number"}
    assert leaked(struct.pack(">d", WEIGHT)) == {"weight"}
    assert not leaks(b"2026-11-22 07:11:13.370000 0001763795473370-00000-ab12")


@pytest.mark.parametrize("checkpoint", [False, True], ids=["wal", "checkpointed"])
def test_no_canary_on_disk_or_in_logs(
    app: Flask, written: tuple[str, str], caplog: pytest.LogCaptureFixture, checkpoint: bool
) -> None:
    instance = Path(app.instance_path)
    engine = app.extensions["contigo.engine"]
    if checkpoint:  # outside a transaction: SQLAlchemy's begin would hold a lock
        raw = engine.raw_connection()
        try:
            busy, _log, _done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
        finally:
            raw.close()
    files = _files(instance)
    wal = files.get("contigo.sqlite3-wal", b"")
    assert (len(wal) == 0) if checkpoint else (len(wal) > 0), "the WAL is not where we expect"
    hits = [hit for name, blob in files.items() for hit in leaks(blob, name)]
    hits += _log_leaks(caplog)
    assert hits == []


def _log_leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Canaries in any record logged while writing or in the test (tracebacks included)."""
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert records, "nothing was logged: the log check would prove nothing"
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return leaks("\n".join(formatter.format(r) for r in records).encode("utf-8"), "logs")


def test_no_canary_after_the_app_closes(app: Flask, written: tuple[str, str]) -> None:
    """Closing the last connection checkpoints the WAL into the main file: still nothing."""
    get_vault(app).lock()
    app.extensions["contigo.engine"].dispose()
    instance = Path(app.instance_path)
    hits = [hit for name, blob in _files(instance).items() for hit in leaks(blob, name)]
    assert hits == []


# ── ciphertexts cannot be moved or altered ──────────────────────────────────────────────────


def _swap_given_names(app: Flask, a: str, b: str) -> None:
    with app.extensions["contigo.engine"].begin() as conn:
        rows = dict(
            conn.execute(
                text("SELECT id, given_names_enc FROM persons WHERE id IN (:a, :b)"),
                {"a": a, "b": b},
            ).all()
        )
        for target, source in ((a, b), (b, a)):
            conn.execute(
                text("UPDATE persons SET given_names_enc = :v WHERE id = :id"),
                {"v": rows[source], "id": target},
            )


def _flip_a_bit(app: Flask, table: str, column: str, where: str, person_id: str) -> None:
    """Flip one bit in the middle of a stored ciphertext, as someone editing the file would:
    the append-only triggers are dropped for the edit and put back."""
    with app.extensions["contigo.engine"].begin() as conn:
        triggers = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        ).all()
        for name, _sql in triggers:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        row_id, blob = conn.execute(
            text(f"SELECT id, {column} FROM {table} WHERE {where} = :p"), {"p": person_id}
        ).one()
        altered = bytearray(blob)
        altered[len(altered) // 2] ^= 0x01
        conn.execute(
            text(f"UPDATE {table} SET {column} = :v WHERE id = :id"),
            {"v": bytes(altered), "id": row_id},
        )
        for _name, sql in triggers:
            conn.exec_driver_sql(sql)


@contextmanager
def _as_sup(app: Flask) -> Iterator[tuple[Session, User]]:
    with app.test_request_context(base_url="http://localhost"), session_scope(app) as s:
        actor = s.scalar(select(User).where(User.username == "sup"))
        assert actor is not None
        yield s, actor


def _integrity_audit(app: Flask) -> set[tuple[str, str | None, str | None]]:
    """The integrity errors in the audit trail, as (what, row, person)."""
    with session_scope(app) as s:
        rows = s.execute(
            select(AuditEntry.entity_type, AuditEntry.entity_id, AuditEntry.person_id).where(
                AuditEntry.action == "integrity_error"
            )
        )
        return {(what, row, person) for what, row, person in rows}


def test_a_ciphertext_moved_to_another_person_is_refused(
    app: Flask, client: FlaskClient, written: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    web_id, service_id = written
    _swap_given_names(app, web_id, service_id)
    with _as_sup(app) as (s, actor):
        for person_id in written:
            view = persons.get(s, get_vault(app), actor, person_id)
            assert view.unreadable == ("given_names",)
            assert view.given_names == "", "never the other person's name"
            assert view.family_names in (WEB["family_names"], SERVICE["family_names"])
        assert s.get(Person, web_id) is not None
    response = client.get(f"/persons/{web_id}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200, "the rest of the record is shown"
    assert "Zebulonia" not in body and "Yggdrasilia" not in body
    assert "Xanthópoulos" in body and WEB["doc_number"] in body
    assert catalogue("en")["apierr.unreadable"] in body
    assert ("persons.given_names", web_id, web_id) in _integrity_audit(app)
    assert any("integrity" in r.getMessage() for r in caplog.get_records("call"))
    assert _log_leaks(caplog) == []


def test_a_flipped_bit_is_refused(
    app: Flask, client: FlaskClient, written: tuple[str, str]
) -> None:
    web_id, service_id = written
    _flip_a_bit(app, "encounters", "payload_enc", "person_id", web_id)
    _flip_a_bit(app, "persons", "family_names_enc", "id", service_id)
    with _as_sup(app) as (s, actor):
        (visit,) = encounters.history(s, get_vault(app), actor, web_id)
        assert (visit.unreadable, visit.active, visit.data, visit.assessment) == (
            True, False, {}, {}
        )  # fmt: skip
        view = persons.get(s, get_vault(app), actor, service_id)
        assert (view.unreadable, view.family_names) == (("family_names",), "")
        assert view.given_names == SERVICE["given_names"]
        enc_id = s.scalar(select(Encounter.id).where(Encounter.person_id == web_id))
        assert enc_id is not None
    response = client.get(f"/persons/{web_id}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert NOTE not in body
    assert "Zebulonia" in body, "the person's own values are still shown"
    assert catalogue("en")["apierr.unreadable_visit"] in body
    token = client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {token.json['token']}"}
    listed = client.get(f"/api/v1/persons/{web_id}/encounters", headers=auth).json
    assert [(e["unreadable"], e["data"], e["active"]) for e in listed["encounters"]] == [
        (True, {}, False)
    ]
    person = client.get(f"/api/v1/persons/{service_id}", headers=auth)
    assert person.status_code == 200
    assert (person.json["family_names"], person.json["unreadable"]) == (None, ["family_names"])
    assert person.json["given_names"] == SERVICE["given_names"]
    assert {
        ("encounters.payload", enc_id, None),
        ("persons.family_names", service_id, service_id),
    } <= _integrity_audit(app)
