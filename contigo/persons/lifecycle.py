"""A person's lifecycle on this side: delete (a soft tombstone), restore, mark deceased, merge two
records of one person and unmerge them (SYNC.md §2.11; ``person.unmerge`` is an extension).

Each action is one service call: it decides with the same pure rules as the central server
(:func:`sync.lifecycle.decide`), writes the local state, records the op through
:func:`sync.outbox.record_op` and an audit entry, all in the caller's transaction. On a central
page the same call applies the op through the push path instead
(:mod:`contigo.exchange.ops`). Only a
supervisor acts, within the site scope; a health worker sees the state, a nutrition lead reads.

The delete reason and the date of death are personal: they are stored only encrypted under the
person's own key. Read paths resolve a merged person through :func:`survivor_of` and show the
survivor with every encounter of both (:func:`record_ids`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import check_write
from contigo.db import utcnow
from contigo.errors import Forbidden, UnknownPerson, ValidationFailed
from contigo.exchange.ops import apply_on_central
from contigo.i18n import translate
from contigo.persons.models import Person
from contigo.vault import Vault
from sync.lifecycle import FIELD, LifecycleState, decide
from sync.models import PersonAlias
from sync.outbox import record_op
from sync.protocol import OpType
from sync.server import ServerConfig

__all__ = [
    "FIELD",
    "LifecycleState",
    "delete",
    "mark_deceased",
    "merge",
    "record_ids",
    "record_keys",
    "restore",
    "state_of",
    "survivor_of",
    "unmerge",
    "write_state",
]

Central = ServerConfig | None
"""The central server's sync configuration when an action is taken on a central page (the op is
then applied there at once); ``None`` on a laptop (the op goes to the outbox)."""

ACTORS = frozenset({"supervisor"})
"""Roles that may change a lifecycle (DESIGN.md §4: supervisors manage their site's records)."""


def state_of(v: Vault, person: Person) -> LifecycleState:
    """A person's lifecycle, the reason and date decrypted."""
    key = v.person_key(person)

    def opened(column: str) -> str | None:
        blob = getattr(person, f"{column}_enc")
        value = v.decrypt_with(key, "persons", person.id, column, blob) if blob else None
        return str(value) if value else None

    return LifecycleState(
        person.lifecycle, person.merged_into_id, opened("deleted_reason"), opened("deceased_on")
    )


def write_state(s: Session, v: Vault, person: Person, state: LifecycleState) -> None:
    """Set a person's lifecycle columns and the local alias mirror (the sync handler and the
    services both land here)."""
    key = v.person_key(person)
    person.lifecycle = state.state
    person.merged_into_id = state.merged_into_id
    for column, value in (("deleted_reason", state.reason), ("deceased_on", state.deceased_on)):
        blob = v.encrypt_with(key, "persons", person.id, column, value) if value else None
        setattr(person, f"{column}_enc", blob)
    person.updated_at = utcnow()
    _local_alias(s, person)


def survivor_of(s: Session, person_id: str) -> str | None:
    """The survivor a merged person resolves to (``None`` when not merged)."""
    return s.scalar(
        select(PersonAlias.survivor_id).where(
            PersonAlias.merged_id == person_id, PersonAlias.active.is_(True)
        )
    )


def record_ids(s: Session, person_id: str) -> list[str]:
    """The person and every person merged into it: whose encounters its history shows."""
    merged = s.scalars(
        select(PersonAlias.merged_id).where(
            PersonAlias.survivor_id == person_id, PersonAlias.active.is_(True)
        )
    )
    return [person_id, *sorted(merged)]


def record_keys(s: Session, v: Vault, person: Person) -> dict[str, bytes]:
    """The data key of the person and of every person merged into it held here."""
    keys = {person.id: v.person_key(person)}
    for merged_id in record_ids(s, person.id)[1:]:
        merged = s.get(Person, merged_id)
        if merged is not None:
            keys[merged_id] = v.person_key(merged)
    return keys


def _target(s: Session, actor: User, person_id: str) -> Person:
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_write(s, actor, person)
    if actor.role not in ACTORS:
        raise Forbidden()
    return person


def _act(
    s: Session,
    v: Vault,
    actor: User,
    op_type: OpType,
    person: Person,
    data: Mapping[str, Any],
    server: ServerConfig | None,
) -> bool:
    """Decide, write, record the op and audit; returns whether anything changed. On central
    (``server`` given) the op is applied through the push path instead of the outbox."""
    survivor = None
    into_target = False
    if op_type is OpType.PERSON_MERGE:
        other = s.get(Person, str(data.get("survivor_id")))
        if other is None:
            raise UnknownPerson()
        survivor = state_of(v, other)
        into_target = bool(record_ids(s, person.id)[1:])
    verdict = decide(
        op_type,
        data,
        person.id,
        state_of(v, person),
        survivor=survivor,
        merged_into_target=into_target,
    )
    if verdict.error is not None:
        key, code = verdict.error
        raise ValidationFailed(fields={key: [translate(f"lifecycle.error.{code.value}")]})
    if verdict.after is None:
        return False
    if server is not None:
        apply_on_central(
            s,
            server,
            actor,
            op_type=op_type,
            entity=("person", person.id, person.id),
            data=dict(data) | {"user_id": actor.id},
            fields=(FIELD,),
            error=("person", "lifecycle.error.rejected"),
        )
    else:
        write_state(s, v, person, verdict.after)
        s.flush()
        record_op(
            s,
            op_type=op_type.value,
            entity_type="person",
            entity_id=person.id,
            person_id=person.id,
            data=dict(data) | {"user_id": actor.id},
            fields=(FIELD,),
            encrypt=v.outbox_encrypter(),
        )
    audit(
        s,
        user_id=actor.id,
        action=op_type.value.split(".", 1)[1],
        entity_type="person",
        entity_id=person.id,
        person_id=person.id,
        site_id=person.owning_site_id,
    )
    return True


def delete(
    s: Session, v: Vault, actor: User, person_id: str, reason: str, server: Central = None
) -> bool:
    """Delete a person as a soft tombstone with a reason (kept encrypted); the record stays, and
    edits that arrive later are kept and reviewed."""
    person = _target(s, actor, person_id)
    return _act(s, v, actor, OpType.PERSON_DELETE, person, {"reason": reason}, server)


def restore(s: Session, v: Vault, actor: User, person_id: str, server: Central = None) -> bool:
    """Bring a deleted person back, with every edit that arrived meanwhile."""
    return _act(s, v, actor, OpType.PERSON_RESTORE, _target(s, actor, person_id), {}, server)


def mark_deceased(
    s: Session, v: Vault, actor: User, person_id: str, on: str, server: Central = None
) -> bool:
    """Record a person's death on ``on`` (ISO date). Death is not deletion."""
    person = _target(s, actor, person_id)
    return _act(s, v, actor, OpType.PERSON_MARK_DECEASED, person, {"date": on}, server)


def merge(
    s: Session, v: Vault, actor: User, survivor_id: str, merged_id: str, server: Central = None
) -> bool:
    """Merge ``merged_id`` into ``survivor_id``: both must be in the actor's scope; the merged
    record keeps its encounters, and every read of it shows the survivor."""
    survivor = _target(s, actor, survivor_id)
    merged = _target(s, actor, merged_id)
    if survivor.kind != merged.kind:
        raise ValidationFailed(fields={"survivor_id": [translate("lifecycle.error.kind")]})
    data = {"survivor_id": survivor.id, "merged_id": merged.id}
    return _act(s, v, actor, OpType.PERSON_MERGE, merged, data, server)


def unmerge(s: Session, v: Vault, actor: User, merged_id: str, server: Central = None) -> bool:
    """Separate a merged person from its survivor again."""
    person = _target(s, actor, merged_id)
    return _act(s, v, actor, OpType.PERSON_UNMERGE, person, {"merged_id": merged_id}, server)


def _local_alias(s: Session, person: Person) -> None:
    """Keep this laptop's alias mirror in step with a local merge or unmerge (the server's
    ``alias`` change, pulled later, is version-gated over it)."""
    alias = s.get(PersonAlias, person.id)
    if person.lifecycle == "merged" and person.merged_into_id:
        if alias is None:
            alias = PersonAlias(merged_id=person.id, op_id="", version_seq=0)
            s.add(alias)
        alias.survivor_id, alias.active = person.merged_into_id, True
    elif alias is not None:
        alias.active = False
