"""A person's risk flags (HIV exposure, disability, oedema history): safety information that
syncs since wire schema 2, each flag merging on its own under its SAFETY policy (the more severe
value wins, SYNC.md §2.1).

The flags are one JSON object encrypted with the person's data key (``persons.risk_flags_enc``),
like every other personal field; on the wire each flag is the dotted field
``risk_flags.<name>``. A flag never recorded is absent (``None``), which ranks below every level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.auth.scope import check_write
from contigo.db import utcnow
from contigo.errors import UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.persons.services import record_change
from contigo.vault import Vault
from sync.policies import RISK_FLAG_POLICIES, FieldPolicy, UnknownSeverity

PREFIX = "risk_flags."
FIELDS: tuple[str, ...] = tuple(RISK_FLAG_POLICIES)
"""The wire names of the flags (``risk_flags.hiv_exposed`` …)."""
COLUMN = "risk_flags"


def invalid(values: Mapping[str, Any]) -> list[str]:
    """The wire names in ``values`` whose value is not a level of the flag's severity order
    (``None`` clears nothing: it is a valid "not recorded")."""
    bad = []
    for name, value in values.items():
        declared = RISK_FLAG_POLICIES[name]
        assert isinstance(declared, FieldPolicy) and declared.severity is not None
        try:
            declared.severity.rank(value)
        except UnknownSeverity:
            bad.append(name)
    return bad


def read(v: Vault, person: Person) -> dict[str, Any]:
    """The flags by wire name; every flag is present, ``None`` when never recorded."""
    stored: dict[str, Any] = {}
    if person.risk_flags_enc is not None:
        key = v.person_key(person)
        stored = v.decrypt_with(key, "persons", person.id, COLUMN, person.risk_flags_enc)
    return {name: stored.get(name.removeprefix(PREFIX)) for name in FIELDS}


def write(v: Vault, person: Person, values: Mapping[str, Any]) -> None:
    """Set some flags (by wire name), re-encrypting the whole object. Flushes nothing."""
    current = {k.removeprefix(PREFIX): val for k, val in read(v, person).items()}
    current |= {k.removeprefix(PREFIX): val for k, val in values.items()}
    stored = {k: val for k, val in current.items() if val is not None}
    key = v.person_key(person)
    person.risk_flags_enc = v.encrypt_with(key, "persons", person.id, COLUMN, stored)


def record(s: Session, v: Vault, actor: User, person_id: str, changes: Mapping[str, Any]) -> Person:
    """Change some of a person's risk flags (by wire name) and record one ``person.patch`` op
    writing exactly the flags that changed, with the audit entry. Flushes, never commits."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_write(s, actor, person)
    unknown = [k for k in changes if k not in FIELDS]
    bad = unknown + invalid({k: val for k, val in changes.items() if k in FIELDS})
    if bad or not changes:
        raise ValidationFailed(fields={k: [translate("v.invalid")] for k in bad or ["person"]})
    before = read(v, person)
    data = {k: val for k, val in changes.items() if before[k] != val}
    if not data:
        return person
    write(v, person, data)
    person.updated_at = utcnow()
    s.flush()
    record_change(s, v, actor, person, data)
    return person
