"""Registering, reading and finding persons.

Services take a session, flush, record the sync op and the audit entry, and never commit: the
request (or CLI command) commits, so the person, its index entries, its outbox op and its audit
entry land together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import integrity
from contigo.audit.services import record as audit
from contigo.audit.services import record_many as audit_many
from contigo.auth.models import User
from contigo.auth.scope import check_read, check_write, persons_query, readable
from contigo.crypto import KeyUnwrapError, TamperedCiphertext
from contigo.db import new_id, utcnow
from contigo.errors import UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.names import normalise_identifier, normalise_phone
from contigo.persons import contigo_id, dedup
from contigo.persons.candidates import duplicate_candidates, identity_of
from contigo.persons.models import Person, PersonIndex
from contigo.vault import Vault
from sync.models import PersonAlias
from sync.outbox import record_op, tick
from sync.repair import amend_rejected_create

ENCRYPTED = ("given_names", "family_names", "birth_date", "sex", "documents", "phone", "address")
PLAIN = ("kind", "birth_date_precision", "nationality", "population_type", "mother_id")
MUTABLE_FIELDS = (*ENCRYPTED, "birth_date_precision", "nationality", "population_type", "mother_id")


@dataclass(frozen=True)
class PersonView:
    """A person's record, decrypted for an authorised user."""

    id: str
    contigo_id: str
    kind: str
    given_names: str
    family_names: str
    birth_date: date
    birth_date_precision: str
    sex: str
    nationality: str | None
    population_type: str
    mother_id: str | None
    owning_site_id: str
    lifecycle: str
    phone: str | None = None
    address: str | None = None
    documents: list[dict[str, str]] = field(default_factory=list)
    #: Encrypted fields whose ciphertext failed its integrity check: their values above are
    #: blanks (``date.min`` for the date of birth), never data (see :mod:`contigo.integrity`).
    unreadable: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.given_names} {self.family_names}"

    def age_days(self, on: date) -> int:
        return (on - self.birth_date).days

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["birth_date"] = self.birth_date.isoformat()
        return out


INDEXED = ("given_names", "family_names", "birth_date", "documents", "phone")
"""The fields a person's blind-index entries are made of."""


def index_keys(v: Vault, data: dict[str, Any]) -> list[tuple[str, str]]:
    """A person's distinct blind-index entries as ``(field, bidx)``: name tokens, date of birth
    (a :class:`date`), document numbers (folded: any spelling of a number gives one entry) and
    the phone number (its last digits, :func:`contigo.names.normalise_phone`)."""
    keys = [
        ("name", v.bidx("name", t))
        for t in v.name_tokens(f"{data['given_names']} {data['family_names']}")
    ]
    keys.append(("dob", v.bidx("dob", data["birth_date"].isoformat())))
    keys += [("doc", v.bidx("doc", doc["number"])) for doc in data.get("documents") or []]
    phone = normalise_phone(str(data.get("phone") or ""))
    if phone:
        keys.append(("phone", v.bidx("phone", phone)))
    return list(dict.fromkeys(keys))


def index_values(wire: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`index_keys` reads, from a person's wire values (dates as ISO text)."""
    return {
        "given_names": wire.get("given_names"),
        "family_names": wire.get("family_names"),
        "birth_date": date.fromisoformat(str(wire.get("birth_date"))),
        "documents": wire.get("documents"),
        "phone": wire.get("phone"),
    }


def index_view(view: PersonView) -> dict[str, Any]:
    """What :func:`index_keys` reads, from a decrypted person."""
    return {
        "given_names": view.given_names,
        "family_names": view.family_names,
        "birth_date": view.birth_date,
        "documents": view.documents,
        "phone": view.phone,
    }


def _index_entries(v: Vault, person_id: str, data: dict[str, Any]) -> list[PersonIndex]:
    return [PersonIndex(person_id=person_id, field=f, bidx=b) for f, b in index_keys(v, data)]


def _serialise(name: str, value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def register(s: Session, v: Vault, actor: User, site_id: str, data: dict[str, Any]) -> Person:
    """Create a person owned by ``site_id`` from validated ``data``.

    The mother, when given, must be a woman the user may read. Writes the encrypted row, its blind
    index entries, a ``person.create`` outbox op and an audit entry in the caller's transaction.
    """
    check_write(s, actor, site_id=site_id)
    if data.get("mother_id"):
        mother = s.get(Person, data["mother_id"])
        if mother is None or mother.kind != "woman":
            raise ValidationFailed(fields={"mother_id": [translate("v.mother")]})
        check_read(s, actor, mother)
    person_id = new_id()
    key, wrapped = v.new_person_key(person_id)
    person = Person(
        id=person_id,
        contigo_id=_unique_contigo_id(s),
        owning_site_id=site_id,
        data_key_wrapped=wrapped,
        created_hlc=tick(s).encode(),
        created_by_user_id=actor.id,
        **{k: data.get(k) for k in PLAIN},
    )
    for name in ENCRYPTED:
        value = _serialise(name, data.get(name))
        if value in (None, [], ""):
            value = None if name not in ("documents",) else []
        setattr(person, f"{name}_enc", v.encrypt_with(key, "persons", person_id, name, value))
    s.add(person)
    s.add_all(_index_entries(v, person_id, data))
    s.flush()
    payload = {k: _serialise(k, data.get(k)) for k in MUTABLE_FIELDS} | {
        "contigo_id": person.contigo_id,
        "owning_site_id": site_id,
    }
    record_op(
        s,
        op_type="person.create",
        entity_type="person",
        entity_id=person_id,
        person_id=person_id,
        data=payload,
        fields=MUTABLE_FIELDS,
        encrypt=v.outbox_encrypter(),
    )
    audit(
        s,
        user_id=actor.id,
        action="create",
        entity_type="person",
        entity_id=person_id,
        person_id=person_id,
        site_id=site_id,
    )
    v.index_person(person_id, payload["given_names"], payload["family_names"])
    return person


def _unique_contigo_id(s: Session) -> str:
    while True:
        cid = contigo_id.generate()
        if s.scalar(select(Person.id).where(Person.contigo_id == cid)) is None:
            return cid


#: What an unreadable field holds in a :class:`PersonView`.
_BLANKS: dict[str, Any] = {
    "given_names": "",
    "family_names": "",
    "birth_date": date.min.isoformat(),
    "sex": "",
    "documents": [],
    "phone": None,
    "address": None,
}


def _decrypt_fields(v: Vault, person: Person) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The person's encrypted fields, and the names of those that failed their integrity check
    (every one, when the person's data key itself is damaged)."""
    try:
        key = v.person_key(person)
    except (KeyUnwrapError, TamperedCiphertext):
        integrity.damaged("persons", person.id, "data_key", person.id)
        return dict(_BLANKS), ENCRYPTED
    values: dict[str, Any] = {}
    unreadable: list[str] = []
    for name in ENCRYPTED:
        blob = getattr(person, f"{name}_enc")
        if blob is None:
            continue
        try:
            values[name] = v.decrypt_with(key, "persons", person.id, name, blob)
        except TamperedCiphertext:
            integrity.damaged("persons", person.id, name, person.id)
            values[name] = _BLANKS[name]
            unreadable.append(name)
    return values, tuple(unreadable)


def decrypt(v: Vault, person: Person) -> PersonView:
    """Decrypt a person's row (the caller has checked scope). A damaged value is blanked and
    named in ``unreadable``; the rest of the record is still shown."""
    values, unreadable = _decrypt_fields(v, person)
    return PersonView(
        id=person.id,
        contigo_id=person.contigo_id,
        kind=person.kind,
        given_names=values["given_names"],
        family_names=values["family_names"],
        birth_date=date.fromisoformat(values["birth_date"]),
        birth_date_precision=person.birth_date_precision,
        sex=values["sex"],
        nationality=person.nationality,
        population_type=person.population_type,
        mother_id=person.mother_id,
        owning_site_id=person.owning_site_id,
        lifecycle=person.lifecycle,
        phone=values.get("phone"),
        address=values.get("address"),
        documents=values.get("documents") or [],
        unreadable=unreadable,
    )


def get(
    s: Session, v: Vault, actor: User, person_id: str, *, audit_view: bool = True
) -> PersonView:
    """A person's record for ``actor``, checked against scope; the view is audited."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_read(s, actor, person)
    if audit_view:
        audit(
            s,
            user_id=actor.id,
            action="view",
            entity_type="person",
            entity_id=person.id,
            person_id=person.id,
            site_id=person.owning_site_id,
        )
    return decrypt(v, person)


def children_of(s: Session, v: Vault, actor: User, mother_id: str) -> list[PersonView]:
    """The children linked to a mother, within the user's scope."""
    rows = s.scalars(persons_query(s, actor).where(Person.mother_id == mother_id))
    return [decrypt(v, p) for p in rows]


#: Name matches counted for "20 of 143": past this many a search is too vague to count
#: (the page says "more than 200"), and checking each one's scope would slow every search.
SEARCH_COUNT_LIMIT = 200


@dataclass(frozen=True)
class SearchResult:
    """The persons shown, how many were found in all, and the mothers of those shown (those
    the user may read), by id."""

    persons: list[PersonView]
    total: int
    mothers: dict[str, PersonView] = field(default_factory=dict)

    @property
    def cut(self) -> bool:
        """Whether more were found than are shown."""
        return self.total > len(self.persons)

    @property
    def uncounted(self) -> bool:
        """Whether the total is only a lower bound (a vague name search)."""
        return self.total >= SEARCH_COUNT_LIMIT


def _matching_ids(s: Session, v: Vault, q: str, birth_date: date | None) -> list[str]:
    """Ids matching a query, best first (exact identifiers first, then names)."""
    ids: list[str] = []
    cid = contigo_id.normalise(q) if q else None
    if cid:
        ids += list(s.scalars(select(Person.id).where(Person.contigo_id == cid)))
    if q and not ids:
        doc = v.bidx("doc", q)
        ids += list(
            s.scalars(
                select(PersonIndex.person_id).where(
                    PersonIndex.field == "doc", PersonIndex.bidx == doc
                )
            )
        )
    phone = normalise_phone(q) if q and not ids else None
    if phone:
        ids += list(
            s.scalars(
                select(PersonIndex.person_id).where(
                    PersonIndex.field == "phone", PersonIndex.bidx == v.bidx("phone", phone)
                )
            )
        )
    dob_ids: set[str] | None = None
    if birth_date is not None:
        dob = v.bidx("dob", birth_date.isoformat())
        dob_ids = set(
            s.scalars(
                select(PersonIndex.person_id).where(
                    PersonIndex.field == "dob", PersonIndex.bidx == dob
                )
            )
        )
    if q and not ids:
        ids += v.fuzzy_search(q, limit=SEARCH_COUNT_LIMIT, s=s)
    elif not q and dob_ids is not None:
        ids = sorted(dob_ids)
    if dob_ids is not None:
        ids = [i for i in ids if i in dob_ids]
    return ids


def search_page(
    s: Session, v: Vault, actor: User, q: str, birth_date: date | None = None, limit: int = 20
) -> SearchResult:
    """Find persons by Contigo ID, document number, phone number, date of birth or name, and
    count them all.

    Exact identifiers (document and phone numbers in any spelling) go through blind indexes on
    disk; names go through the in-memory fuzzy index (accents, double surnames, typos). Results
    are limited to the user's scope and counted before they are cut to ``limit``; only those
    shown (and their mothers) are decrypted, and each one shown is audited.
    """
    ids = _matching_ids(s, v, q.strip(), birth_date)
    if not ids:
        return SearchResult([], 0)
    ids = resolve_aliases(s, ids)  # a merged record's identifiers find its survivor
    active = {pid for pid, life in readable(s, actor, ids).items() if life == "active"}
    found = [i for i in ids if i in active]
    rows = {p.id: p for p in s.scalars(select(Person).where(Person.id.in_(found[:limit])))}
    shown = [decrypt(v, rows[i]) for i in found[:limit]]
    mother_ids = {p.mother_id for p in shown if p.mother_id}
    allowed = list(readable(s, actor, mother_ids))
    mothers = (
        {m.id: decrypt(v, m) for m in s.scalars(select(Person).where(Person.id.in_(allowed)))}
        if allowed
        else {}
    )
    audit_many(  # a result list shows names: each one shown is a view (one chain lock)
        s,
        user_id=actor.id,
        action="search_hit",
        entity_type="person",
        items=[(p.id, p.id, p.owning_site_id) for p in [*shown, *mothers.values()]],
    )
    return SearchResult(shown, len(found), mothers)


def search(
    s: Session, v: Vault, actor: User, q: str, birth_date: date | None = None, limit: int = 20
) -> list[PersonView]:
    """The persons :func:`search_page` shows (see there)."""
    return search_page(s, v, actor, q, birth_date, limit).persons


def resolve_aliases(s: Session, ids: list[str]) -> list[str]:
    """Each id, or its survivor's when that person was merged (order kept, duplicates dropped)."""
    rows = s.execute(
        select(PersonAlias.merged_id, PersonAlias.survivor_id).where(
            PersonAlias.merged_id.in_(ids), PersonAlias.active.is_(True)
        )
    )
    survivors = {merged: survivor for merged, survivor in rows}
    return list(dict.fromkeys(survivors.get(i, i) for i in ids))


def identity(view: PersonView) -> dedup.Identity:
    """What the duplicate rule compares of a decrypted person."""
    return dedup.Identity(
        kind=view.kind,
        given_names=view.given_names,
        family_names=view.family_names,
        birth_date=view.birth_date,
        precision=view.birth_date_precision,
        sex=view.sex,
        mother_id=view.mother_id,
        documents=frozenset(normalise_identifier(d["number"]) for d in view.documents),
    )


def likely_duplicates(s: Session, v: Vault, actor: User, data: dict[str, Any]) -> list[PersonView]:
    """Active persons within the user's scope who may be the one about to be registered, by the
    rule of :func:`contigo.persons.dedup.match` (similar names and birth dates a few months
    apart, the same document number, the same mother)."""
    candidates = duplicate_candidates(s, v, data)
    if not candidates:
        return []
    new = identity_of(data)
    query = persons_query(s, actor).where(
        Person.id.in_(candidates), Person.lifecycle == "active", Person.kind == new.kind
    )
    views = [decrypt(v, p) for p in s.scalars(query)]
    return [view for view in views if dedup.match(new, identity(view)) is not None]


def changed_fields(view: PersonView, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``data`` whose value differs from ``view`` (an unchanged field writes no op,
    so it can never conflict with another site's edit)."""
    return {k: v for k, v in data.items() if getattr(view, k, None) != v}


def record_change(s: Session, v: Vault, actor: User, person: Person, data: dict[str, Any]) -> None:
    """Record a change of some of ``person``'s synced fields (wire values in ``data``), already
    written locally: one ``person.patch`` op naming exactly those fields, or, for a person whose
    ``person.create`` the server refused, the correction folded into that create (SYNC.md S19);
    and one audit entry. Flushes, never commits."""
    # A correction of a person the server refused goes out inside its create.
    amended = amend_rejected_create(
        s,
        entity_type="person",
        entity_id=person.id,
        changes=data,
        encrypt=v.outbox_encrypter(),
        decrypt=v.outbox_decrypt,
    )
    if amended is None:
        record_op(
            s,
            op_type="person.patch",
            entity_type="person",
            entity_id=person.id,
            person_id=person.id,
            data=data,
            fields=list(data),
            encrypt=v.outbox_encrypter(),
        )
    audit(
        s,
        user_id=actor.id,
        action="update",
        entity_type="person",
        entity_id=person.id,
        person_id=person.id,
        site_id=person.owning_site_id,
    )


def update(s: Session, v: Vault, actor: User, person_id: str, changes: dict[str, Any]) -> Person:
    """Change some of a person's mutable fields; records one ``person.patch`` op whose base
    names, per field, the last op this laptop knew for it (the sync engine's concurrency token).
    """
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_write(s, actor, person)
    fields = [k for k in changes if k in MUTABLE_FIELDS]
    if not fields:
        raise ValidationFailed(fields={"person": [translate("v.invalid")]})
    key = v.person_key(person)
    data = {name: _serialise(name, changes[name]) for name in fields}
    for name, value in data.items():
        if name in ENCRYPTED:
            setattr(person, f"{name}_enc", v.encrypt_with(key, "persons", person_id, name, value))
        else:
            setattr(person, name, value)
    person.updated_at = utcnow()
    if set(INDEXED) & set(fields):
        view = decrypt(v, person)
        s.query(PersonIndex).filter(PersonIndex.person_id == person_id).delete()
        s.add_all(_index_entries(v, person_id, index_view(view)))
        v.index_person(person_id, view.given_names, view.family_names)
    s.flush()
    record_change(s, v, actor, person, data)
    return person
