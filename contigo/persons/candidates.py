"""What the duplicate rule (:mod:`contigo.persons.dedup`) is given: the persons to look at for
a registration, found through the in-memory fuzzy name index and blind indexes, and each side's
values decrypted in memory only. Used by a laptop's registration warning
(:func:`contigo.persons.services.likely_duplicates`) and central's possible-duplicate finder
(:mod:`contigo.review.finders`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import Executable, Result, select
from sqlalchemy.orm import Session

from contigo.names import normalise_identifier
from contigo.persons import dedup
from contigo.persons.models import Person, PersonIndex
from contigo.vault import Vault

DUPLICATE_CANDIDATES = 30
"""How many of the closest names the fuzzy index proposes for the duplicate rule to check."""


def stored_identity(v: Vault, person: Person) -> dedup.Identity:
    """What the duplicate rule compares of a stored person, decrypting only those fields (the
    central server checks many candidates for every registration it receives)."""
    key = v.person_key(person)

    def read(name: str) -> Any:
        blob = getattr(person, f"{name}_enc")
        return v.decrypt_with(key, "persons", person.id, name, blob) if blob is not None else None

    return dedup.Identity(
        kind=person.kind,
        given_names=read("given_names") or "",
        family_names=read("family_names") or "",
        birth_date=date.fromisoformat(read("birth_date")),
        precision=person.birth_date_precision or "exact",
        sex=read("sex"),
        mother_id=person.mother_id,
        documents=frozenset(normalise_identifier(d["number"]) for d in read("documents") or []),
    )


def identity_of(data: Mapping[str, Any], kind: str | None = None) -> dedup.Identity:
    """What the duplicate rule compares of a person about to be registered (form values, or
    wire values with dates as ISO text)."""
    birth = data["birth_date"]
    return dedup.Identity(
        kind=str(kind or data.get("kind") or ""),
        given_names=str(data.get("given_names") or ""),
        family_names=str(data.get("family_names") or ""),
        birth_date=birth if isinstance(birth, date) else date.fromisoformat(str(birth)),
        precision=str(data.get("birth_date_precision") or "exact"),
        sex=data.get("sex") or None,
        mother_id=data.get("mother_id") or None,
        documents=frozenset(
            normalise_identifier(str(d.get("number") or "")) for d in data.get("documents") or []
        ),
    )


def duplicate_candidates(
    s: Session,
    v: Vault,
    data: Mapping[str, Any],
    *,
    run: Callable[[Executable], Result[Any]] | None = None,
) -> set[str]:
    """Ids of persons the duplicate rule should look at for ``data``: the closest names in the
    in-memory fuzzy index, the same document number (blind index, any spelling) and the same
    mother. Nothing personal is read from disk in the clear. ``run`` executes the lookups
    (default: the session)."""
    run = run or s.execute
    names = f"{data.get('given_names') or ''} {data.get('family_names') or ''}"
    found = set(v.fuzzy_search(names, limit=DUPLICATE_CANDIDATES, s=s))
    docs = [v.bidx("doc", str(d.get("number") or "")) for d in data.get("documents") or []]
    if docs:
        found |= set(
            run(
                select(PersonIndex.person_id).where(
                    PersonIndex.field == "doc", PersonIndex.bidx.in_(docs)
                )
            ).scalars()
        )
    if data.get("mother_id"):
        found |= set(run(select(Person.id).where(Person.mother_id == data["mother_id"])).scalars())
    return found
