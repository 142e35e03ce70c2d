"""Registering, reading and searching persons through the services, over a real SQLite file."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.errors import ValidationFailed
from contigo.persons import contigo_id, services
from contigo.persons.models import Person, PersonIndex
from contigo.vault import get_vault
from sync.models import OutboxOp


def _sup(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


def test_register_writes_person_index_outbox_and_audit_together(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    s = unlocked
    pid = make_person(
        s, _sup(s), documents=[{"country": "VE", "type": "national_id", "number": "V-12.345.678"}]
    )
    person = s.get(Person, pid)
    assert contigo_id.normalise(person.contigo_id) == person.contigo_id
    assert b"Ana" not in person.given_names_enc
    fields = {e.field for e in s.scalars(select(PersonIndex).where(PersonIndex.person_id == pid))}
    assert fields == {"name", "dob", "doc"}
    op = s.scalar(select(OutboxOp).where(OutboxOp.entity_id == pid))
    assert op.op_type == "person.create"
    assert set(json.loads(op.base)) >= {"given_names", "birth_date"}
    data = json.loads(get_vault(app).outbox_decrypt(op.op_id, op.payload_enc))
    assert data["given_names"] == "Ana Lucía"
    assert s.scalar(select(AuditEntry).where(AuditEntry.entity_id == pid)).action == "create"


def test_read_back_decrypts_every_field(app: Flask, unlocked: Any, make_person: Any) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), phone="+57 300 000 0000", address="Calle 1")
    view = services.get(s, get_vault(app), _sup(s), pid)
    assert (view.given_names, view.family_names) == ("Ana Lucía", "Pérez García")
    assert view.birth_date == date(2024, 5, 1)
    assert view.phone == "+57 300 000 0000"
    assert view.sex == "F"


@pytest.mark.parametrize(
    "query",
    ["ana perez", "Pérez García", "garcia ana", "Ana Lucia Peres", "PEREZ-GARCIA"],
)
def test_search_by_name_tolerates_accents_order_and_typos(
    app: Flask, unlocked: Any, make_person: Any, query: str
) -> None:
    s = unlocked
    pid = make_person(s, _sup(s))
    make_person(s, _sup(s), given_names="Carlos", family_names="Rodríguez")
    found = services.search(s, get_vault(app), _sup(s), query)
    assert found and found[0].id == pid


def test_search_by_contigo_id_document_and_birth_date(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    s = unlocked
    pid = make_person(
        s, _sup(s), documents=[{"country": "CO", "type": "ppt", "number": "PPT 998877"}]
    )
    other = make_person(s, _sup(s), given_names="Luis", birth_date=date(2023, 1, 2))
    v = get_vault(app)
    cid = s.get(Person, pid).contigo_id
    assert [p.id for p in services.search(s, v, _sup(s), contigo_id.display(cid).lower())] == [pid]
    assert [p.id for p in services.search(s, v, _sup(s), "ppt998877")] == [pid]
    by_dob = services.search(s, v, _sup(s), "", birth_date=date(2023, 1, 2))
    assert [p.id for p in by_dob] == [other]


def test_likely_duplicates_found_before_registering(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    s = unlocked
    pid = make_person(s, _sup(s))
    candidate = {
        "kind": "child",
        "given_names": "Ana",
        "family_names": "Perez",
        "birth_date": date(2024, 5, 1),
        "documents": [],
    }
    dups = services.likely_duplicates(s, get_vault(app), _sup(s), candidate)
    assert [d.id for d in dups] == [pid]
    candidate["birth_date"] = date(2022, 5, 1)
    assert services.likely_duplicates(s, get_vault(app), _sup(s), candidate) == []


def test_mother_must_be_a_woman(app: Flask, unlocked: Any, make_person: Any) -> None:
    s = unlocked
    child = make_person(s, _sup(s))
    with pytest.raises(ValidationFailed) as err:
        make_person(s, _sup(s), mother_id=child)
    assert "mother_id" in err.value.fields
