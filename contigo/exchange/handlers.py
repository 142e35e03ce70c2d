"""Contigo's entity handlers for the sync engine: persons, encounters, voids, care episodes.

The wire carries plain JSON (over TLS); at rest each side encrypts with its own keys, so every
value is re-encrypted here with the local vault. Sites travel as a descriptor keyed by site code
(site ids differ between instances); rows written on another device are attributed to an
inactive stand-in user named after that device unless the op names a real author that the
user directory brought here (:mod:`contigo.usersync.authors`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from contigo.db import utcnow
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import (
    FOLLOW_UP_KINDS,
    FOLLOW_UP_OUTCOMES,
    CareEpisode,
    FollowUpOutcome,
)
from contigo.exchange.batch import (
    batch_encounters,
    batch_person,
    created_encounter,
    held_person,
    hold_person,
    insert_encounter,
    note_index,
    note_person,
)
from contigo.exchange.extensions import extensions
from contigo.persons import lifecycle, risk_flags
from contigo.persons.models import PERSON_KINDS, POPULATION_TYPES, Person
from contigo.persons.models import PersonIndex as PersonIndexTable
from contigo.persons.services import ENCRYPTED, decrypt, index_keys, index_values, index_view
from contigo.reports import hooks as reports_feed
from contigo.sites.wire import ensure_site, site_descriptor
from contigo.usersync.authors import AUTHOR, with_author
from contigo.usersync.authors import author_id as _author
from contigo.vault import Vault
from sync import bulk
from sync.handlers import (
    Action,
    ApplyContext,
    Creation,
    EventHandler,
    HandlerRegistry,
    InvalidOp,
    MissingDependency,
)
from sync.lifecycle import ALIAS_ENTITY
from sync.policies import (
    DEFAULT_EPISODE_POLICIES,
    DEFAULT_PERSON_POLICIES,
    FieldPolicy,
    Policy,
    PolicyRegistry,
)

PERSON_FIELDS = (
    "given_names",
    "family_names",
    "birth_date",
    "birth_date_precision",
    "sex",
    "mother_id",
    "nationality",
    "population_type",
    "phone",
    "address",
    "documents",
)
EPISODE_FIELDS = ("programme", "status", "exit_outcome", "next_visit_on", "exit_on")
OVERRIDE_FIELD = "exit_override"
"""A supervisor's override of the discharge rule (wire value ``{"reason": …}`` or ``None``);
encrypted at rest with the person's data key, synced since wire schema 3."""


def _iso_date(value: Any, name: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidOp({name: ["not a date"]}) from None


def _to_wire_site(s: Session, data: dict[str, Any], key: str) -> dict[str, Any]:
    out = dict(data)
    site_id = out.pop(key, None)
    if site_id:
        out["site"] = site_descriptor(s, site_id)
    return out


def _existing(s: Session, model: Any, ids: list[str]) -> set[str]:
    """Which of ``ids`` have a row of ``model`` (one query; a pulled page asks it once)."""
    return set(s.scalars(select(model.id).where(model.id.in_(ids))))


def _preload(s: Session, model: Any, ids: list[str]) -> None:
    """Load the rows of ``ids`` into the session in one query (see :func:`sync.handlers.preload`:
    a push batch's ``to_wire`` then reads them without a query per op)."""
    for start in range(0, len(ids), 500):
        s.scalars(select(model).where(model.id.in_(ids[start : start + 500]))).all()


_PERSON_KEYS = tuple(c.key for c in Person.__table__.columns)


class PersonHandler:
    """Persons: a mutable aggregate merged field by field."""

    entity_type = "person"
    ops: Mapping[str, Action] = {"person.create": Action.CREATE, "person.patch": Action.PATCH}

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def exists(self, s: Session, entity_id: str) -> bool:
        return batch_person(s, entity_id) is not None

    def existing(self, s: Session, ids: list[str]) -> set[str]:
        return _existing(s, Person, ids)

    def preload(self, s: Session, ids: list[str]) -> None:
        _preload(s, Person, ids)

    def lifecycle_state(self, s: Session, entity_id: str) -> str:
        person = batch_person(s, entity_id)
        assert person is not None
        return person.lifecycle

    def field_writes(self, op_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        writes = {k: data[k] for k in (*PERSON_FIELDS, *risk_flags.FIELDS) if k in data}
        errors: dict[str, list[str]] = {
            name: ["not a level"]
            for name in risk_flags.invalid({k: writes[k] for k in risk_flags.FIELDS if k in writes})
        }
        if "sex" in writes and writes["sex"] not in ("F", "M"):
            errors["sex"] = ["must be F or M"]
        if "population_type" in writes and writes["population_type"] not in POPULATION_TYPES:
            errors["population_type"] = ["not a choice"]
        for name in ("given_names", "family_names"):
            if name in writes and not (isinstance(writes[name], str) and writes[name].strip()):
                errors[name] = ["required"]
        if "birth_date" in writes:
            try:
                date.fromisoformat(str(writes["birth_date"]))
            except ValueError:
                errors["birth_date"] = ["not a date"]
        if errors:
            raise InvalidOp(errors)
        return writes

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        person, writes = self._new_person(s, ctx, entity_id, data)
        s.add(person)
        note_person(s, person)
        self._reindex(s, person, fresh=index_values(writes))

    def create_many(self, s: Session, items: Sequence[Creation]) -> None:
        """Create persons this laptop does not hold, from a pulled page (a new laptop's first
        pull, :meth:`sync.client.engine.SyncEngine.pull`): each made and checked exactly as
        :meth:`create` makes it, but its row held with the page's other rows (:mod:`sync.bulk`)
        instead of added to the session, and remembered for the page's visits
        (:func:`~contigo.exchange.batch.hold_person`). Only ever called while rows are held.

        The row holds every column: those :meth:`create` sets, the lifecycle and timestamps,
        ``None`` for the rest. The person remembered is a :class:`Person` whose attributes are
        that row, made without the ORM's per-attribute bookkeeping (it is never added to the
        session: building an ORM object only to read its row back cost more than the row)."""
        if not bulk.active(s):
            raise RuntimeError("create_many needs held rows")
        now = utcnow()
        new_instance = Person.__mapper__.class_manager.new_instance
        for ctx, entity_id, _person_id, data in items:
            columns, writes = self._new_columns(s, ctx, entity_id, data)
            row = dict.fromkeys(_PERSON_KEYS) | columns
            row["lifecycle"] = "active"
            row["created_at"] = row["updated_at"] = now
            person = new_instance()
            person.__dict__.update(row)
            if self._write_flags(person, writes):
                row["risk_flags_enc"] = person.risk_flags_enc
            bulk.pend(s, Person, row)
            hold_person(s, person)
            reports_feed.note_new_person(s, person, writes.get("sex"), writes.get("birth_date"))
            self._reindex(s, person, fresh=index_values(writes))

    def _new_person(
        self, s: Session, ctx: ApplyContext, entity_id: str, data: Any
    ) -> tuple[Person, dict[str, Any]]:
        """A new person from a ``person.create`` body (not added to the session), and its
        checked writes; raises what a refused body raises."""
        columns, writes = self._new_columns(s, ctx, entity_id, data)
        person = Person(**columns)
        self._write_flags(person, writes)
        return person, writes

    def _write_flags(self, person: Person, writes: dict[str, Any]) -> bool:
        """Seal the risk flags among a new person's ``writes`` into ``person``; whether any."""
        flags = {k: writes[k] for k in risk_flags.FIELDS if k in writes}
        if flags:
            risk_flags.write(self.vault, person, flags)
        return bool(flags)

    def _new_columns(
        self, s: Session, ctx: ApplyContext, entity_id: str, data: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The columns a new person from a ``person.create`` body is made with (all but its
        risk flags, the lifecycle and timestamps), and its checked writes; raises what a refused
        body raises."""
        writes = self.field_writes("person.create", data)
        if data.get("kind") not in PERSON_KINDS or not data.get("contigo_id"):
            raise InvalidOp({"kind": ["not a choice"]})
        # Rows held together (sync.bulk) belong to a batch or page applied optimistically: a
        # Contigo ID already used then fails the unique constraint, and the careful re-run asks.
        if not bulk.active(s) and s.scalar(
            select(Person.id).where(Person.contigo_id == data["contigo_id"])
        ):  # (the statement is built only when asked: building it cost more than the insert)
            raise InvalidOp({"contigo_id": ["already used"]})
        mother = writes.get("mother_id")
        if mother and held_person(s, mother) is None and s.get(Person, mother) is None:
            raise MissingDependency("person", mother)
        site = ensure_site(s, data.get("site"))
        key, wrapped = self.vault.new_person_key(entity_id)
        columns = {
            "id": entity_id,
            "contigo_id": data["contigo_id"],
            "kind": data["kind"],
            "owning_site_id": site.id,
            "data_key_wrapped": wrapped,
            "created_hlc": ctx.hlc,
            "created_by_user_id": _author(s, ctx, data, site.id),
            "birth_date_precision": writes.get("birth_date_precision") or "exact",
            "nationality": writes.get("nationality"),
            "population_type": writes.get("population_type") or "in_transit",
            "mother_id": writes.get("mother_id"),
        }
        for name in ENCRYPTED:
            value = writes.get(name, [] if name == "documents" else None)
            columns[f"{name}_enc"] = self.vault.encrypt_with(key, "persons", entity_id, name, value)
        return columns, writes

    def _reindex(self, s: Session, person: Person, *, fresh: dict[str, Any] | None = None) -> None:
        """Rewrite the person's blind-index entries and the in-memory name index. A ``fresh``
        person (just inserted, with its plain values: names, date of birth, documents) has no
        entries to delete and nothing to decrypt; its entries are held with a pulled page's
        other rows (:mod:`sync.bulk`)."""
        data = fresh
        if data is None:
            view = decrypt(self.vault, person)
            s.execute(delete(PersonIndexTable).where(PersonIndexTable.person_id == person.id))
            data = index_view(view)
        keys = index_keys(self.vault, data)
        for field, bidx in keys:
            row = {"person_id": person.id, "field": field, "bidx": bidx}
            if not bulk.pend(s, PersonIndexTable, row):
                s.add(PersonIndexTable(**row))
        note_index(s, person, keys)
        self.vault.index_person(person.id, data["given_names"], data["family_names"])

    def read_fields(self, s: Session, entity_id: str, names: list[str]) -> dict[str, Any]:
        person = batch_person(s, entity_id)
        assert person is not None
        # Every op about a person asks for its lifecycle alone: decrypt the rest only if asked.
        wanted = set(names) & set(PERSON_FIELDS)
        view = decrypt(self.vault, person).as_dict() if wanted else {}
        if any(n in risk_flags.FIELDS for n in names):
            view |= risk_flags.read(self.vault, person)
        if lifecycle.FIELD in names:  # the Controlled pseudo-field (sync.lifecycle)
            view[lifecycle.FIELD] = lifecycle.state_of(self.vault, person).to_wire()
        return {n: view.get(n) for n in names}

    def write_fields(self, s: Session, entity_id: str, values: Mapping[str, Any]) -> None:
        person = s.get(Person, entity_id)
        assert person is not None
        key = self.vault.person_key(person)
        if lifecycle.FIELD in values:
            state = lifecycle.LifecycleState.from_wire(values[lifecycle.FIELD])
            lifecycle.write_state(s, self.vault, person, state)
        for name, value in values.items():
            if name in ENCRYPTED:
                setattr(
                    person,
                    f"{name}_enc",
                    self.vault.encrypt_with(key, "persons", entity_id, name, value),
                )
            elif name in PERSON_FIELDS:
                setattr(person, name, value)
        flags = {k: v for k, v in values.items() if k in risk_flags.FIELDS}
        if risk_flags.invalid(flags):
            raise InvalidOp({k: ["not a level"] for k in risk_flags.invalid(flags)})
        if flags:
            risk_flags.write(self.vault, person, flags)
        s.flush()
        if {"given_names", "family_names", "birth_date", "documents", "phone"} & set(values):
            self._reindex(s, person)

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        out = _to_wire_site(s, data, "owning_site_id")
        person = s.get(Person, entity_id)
        if op_type == "person.create" and person is not None:
            out.setdefault("kind", person.kind)  # the outbox payload predates this key
            out = with_author(s, out, person.created_by_user_id)
        return out

    def snapshot(self, s: Session, entity_id: str) -> dict[str, Any]:
        return self.read_fields(s, entity_id, [*PERSON_FIELDS, *risk_flags.FIELDS])


class EncounterHandler(EventHandler):
    """Encounters: append-only events, inserted once."""

    entity_type = "encounter"
    ops: Mapping[str, Action] = {"encounter.create": Action.EVENT}
    model: Any = Encounter

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def exists(self, s: Session, entity_id: str) -> bool:
        known = batch_encounters(s, entity_id)
        return entity_id in known if known is not None else s.get(Encounter, entity_id) is not None

    def existing(self, s: Session, ids: list[str]) -> set[str]:
        return _existing(s, Encounter, ids)

    def preload(self, s: Session, ids: list[str]) -> None:
        # to_wire needs only each visit's author: read those, not whole rows
        authors: dict[str, str] = s.info.setdefault(_AUTHORS, {})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(Encounter.id, Encounter.user_id).where(Encounter.id.in_(chunk))
            for encounter_id, user_id in s.execute(query):
                authors[encounter_id] = user_id

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        person = batch_person(s, person_id) if person_id else None
        if person is None:
            raise MissingDependency("person", person_id or "")
        occurred = _iso_date(data.get("occurred_on"), "occurred_on")
        assessment = data.get("assessment")
        if not isinstance(assessment, dict) or "reference_version" not in assessment:
            raise InvalidOp({"assessment": ["required"]})
        if data.get("supersedes_id") and created_encounter(s, data["supersedes_id"]) is None:
            raise MissingDependency("encounter", data["supersedes_id"])
        site = ensure_site(s, data.get("site"))
        body = dict(data)
        for key in ("site", "site_id", AUTHOR):
            body.pop(key, None)
        values = {
            "id": entity_id,
            "person_id": person.id,
            "site_id": site.id,
            "user_id": _author(s, ctx, data, site.id),
            "device_id": ctx.device_id[:32],
            "kind": person.kind,
            "occurred_on": occurred,
            "country": site.country,
            "recorded_hlc": ctx.hlc,
            "reference_version": str(assessment["reference_version"])[:40],
            "payload_enc": self.vault.encrypt_with(
                self.vault.person_key(person), "encounters", entity_id, "payload", body
            ),
            "supersedes_id": data.get("supersedes_id"),
        }
        insert_encounter(s, values, body)

    def create_many(self, s: Session, items: Sequence[Creation]) -> None:
        """Create visits this laptop does not hold, from a pulled page, each as :meth:`create`
        does (their rows are held with the page's other rows, :mod:`sync.bulk`)."""
        for ctx, entity_id, person_id, data in items:
            self.create(s, ctx, entity_id, person_id, data)

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        author = s.info.get(_AUTHORS, {}).get(entity_id)
        if author is None:
            encounter = s.get(Encounter, entity_id)
            author = encounter.user_id if encounter is not None else None
        return with_author(s, _to_wire_site(s, data, "site_id"), author)


_AUTHORS = "contigo_encounter_authors"
"""``Session.info`` key: encounter id → author id, read by :meth:`EncounterHandler.preload`."""


class EncounterVoidHandler(EncounterHandler):
    """Voids of encounters: append-only events."""

    entity_type = "encounter_void"
    ops: Mapping[str, Action] = {"encounter.void": Action.EVENT}
    model = EncounterVoid

    def exists(self, s: Session, entity_id: str) -> bool:
        return EventHandler.exists(self, s, entity_id)  # not the batch's encounter look-up

    def existing(self, s: Session, ids: list[str]) -> set[str]:
        return _existing(s, EncounterVoid, ids)

    def preload(self, s: Session, ids: list[str]) -> None:
        _preload(s, EncounterVoid, ids)

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        encounter = s.get(Encounter, str(data.get("encounter_id") or ""))
        if encounter is None:
            raise MissingDependency("encounter", str(data.get("encounter_id") or ""))
        if not isinstance(data.get("reason"), str):
            raise InvalidOp({"reason": ["required"]})
        if s.scalar(select(EncounterVoid.id).where(EncounterVoid.encounter_id == encounter.id)):
            return  # voided on two devices: one void stands, both reasons are in the op ledger
        person = s.get(Person, encounter.person_id)
        assert person is not None
        s.add(
            EncounterVoid(
                id=entity_id,
                encounter_id=encounter.id,
                reason_enc=self.vault.encrypt_with(
                    self.vault.person_key(person),
                    "encounter_voids",
                    entity_id,
                    "reason",
                    data["reason"],
                ),
                user_id=_author(s, ctx, data, encounter.site_id),
                recorded_hlc=ctx.hlc,
            )
        )

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        void = s.get(EncounterVoid, entity_id)
        return with_author(s, dict(data), void.user_id if void is not None else None)


class EpisodeHandler:
    """Care episodes: a mutable aggregate; closing is a patch of its exit fields (and, for a
    supervisor's override of the discharge rule, of ``exit_override``)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    entity_type = "care_episode"
    ops: Mapping[str, Action] = {
        "care_episode.create": Action.CREATE,
        "care_episode.patch": Action.PATCH,
        "care_episode.close": Action.PATCH,
    }

    def exists(self, s: Session, entity_id: str) -> bool:
        return s.get(CareEpisode, entity_id) is not None

    def preload(self, s: Session, ids: list[str]) -> None:
        _preload(s, CareEpisode, ids)

    def field_writes(self, op_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        if op_type == "care_episode.close":
            if not isinstance(data.get("outcome"), str):
                raise InvalidOp({"outcome": ["required"]})
            _iso_date(data.get("exit_on"), "exit_on")
            writes = {
                "status": "closed",
                "exit_outcome": data["outcome"],
                "next_visit_on": None,
                "exit_on": data["exit_on"],
            }
            if "override" in data:
                writes[OVERRIDE_FIELD] = _override(data["override"])
            return writes
        if op_type == "care_episode.patch":
            _iso_date(data.get("next_visit_on"), "next_visit_on")
            return {"next_visit_on": data["next_visit_on"]}
        if not isinstance(data.get("programme"), str):
            raise InvalidOp({"programme": ["required"]})
        return {
            "programme": data["programme"],
            "status": "active",
            "next_visit_on": data.get("next_visit_on"),
        }

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        writes = self.field_writes("care_episode.create", data)
        if person_id is None or s.get(Person, person_id) is None:
            raise MissingDependency("person", person_id or "")
        site = ensure_site(s, data.get("site"))
        nxt = writes["next_visit_on"]
        s.add(
            CareEpisode(
                id=entity_id,
                person_id=person_id,
                site_id=site.id,
                programme=writes["programme"],
                status="active",
                admitted_on=_iso_date(data.get("admitted_on"), "admitted_on"),
                admission_criteria=json.dumps(data.get("criteria") or []),
                next_visit_on=_iso_date(nxt, "next_visit_on") if nxt else None,
                created_hlc=ctx.hlc,
                created_by_user_id=_author(s, ctx, data, site.id),
            )
        )

    def _key(self, s: Session, episode: CareEpisode) -> bytes:
        person = s.get(Person, episode.person_id)
        assert person is not None
        return self.vault.person_key(person)

    def read_fields(self, s: Session, entity_id: str, names: list[str]) -> dict[str, Any]:
        episode = s.get(CareEpisode, entity_id)
        assert episode is not None
        out = {}
        for name in names:
            if name == OVERRIDE_FIELD:
                sealed = episode.exit_override_enc
                out[name] = None if sealed is None else self.vault.decrypt_with(
                    self._key(s, episode), "care_episodes", entity_id, OVERRIDE_FIELD, sealed
                )  # fmt: skip
                continue
            value = getattr(episode, name)
            out[name] = value.isoformat() if isinstance(value, date) else value
        return out

    def write_fields(self, s: Session, entity_id: str, values: Mapping[str, Any]) -> None:
        episode = s.get(CareEpisode, entity_id)
        assert episode is not None
        for name, value in values.items():
            if name in ("next_visit_on", "exit_on"):
                value = _iso_date(value, name) if value else None
            if name in EPISODE_FIELDS:
                setattr(episode, name, value)
            if name == OVERRIDE_FIELD:
                episode.exit_override_enc = None if value is None else self.vault.encrypt_with(
                    self._key(s, episode), "care_episodes", entity_id, OVERRIDE_FIELD,
                    _override(value),
                )  # fmt: skip
        s.flush()

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        out = _to_wire_site(s, data, "site_id")
        episode = s.get(CareEpisode, entity_id)
        if op_type == "care_episode.create" and episode is not None:
            out = with_author(s, out, episode.created_by_user_id)
        return out

    def snapshot(self, s: Session, entity_id: str) -> dict[str, Any]:
        return self.read_fields(s, entity_id, [*EPISODE_FIELDS, OVERRIDE_FIELD])


def _override(value: Any) -> dict[str, str] | None:
    """A valid override value: ``None`` or ``{"reason": <3–500 characters>}``."""
    if value is None:
        return None
    reason = value.get("reason") if isinstance(value, dict) else None
    if not isinstance(reason, str) or not 3 <= len(reason.strip()) <= 500:
        raise InvalidOp({OVERRIDE_FIELD: ["a reason is required"]})
    return {"reason": reason.strip()}


class FollowUpOutcomeHandler(EventHandler):
    """Outcomes recorded for alerts and missed visits: append-only events."""

    entity_type = "follow_up_outcome"
    ops: Mapping[str, Action] = {"follow_up_outcome.record": Action.EVENT}
    model = FollowUpOutcome

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def create(
        self, s: Session, ctx: ApplyContext, entity_id: str, person_id: str | None, data: Any
    ) -> None:
        person = s.get(Person, person_id) if person_id else None
        if person is None:
            raise MissingDependency("person", person_id or "")
        errors = {}
        if data.get("kind") not in FOLLOW_UP_KINDS:
            errors["kind"] = ["not a kind"]
        if data.get("outcome") not in FOLLOW_UP_OUTCOMES:
            errors["outcome"] = ["not an outcome"]
        if not isinstance(data.get("reason"), str) or not data["reason"].strip():
            errors["reason"] = ["required"]
        if errors:
            raise InvalidOp(errors)
        site = ensure_site(s, data.get("site"))
        s.add(
            FollowUpOutcome(
                id=entity_id,
                person_id=person.id,
                site_id=site.id,
                kind=data["kind"],
                subject_on=_iso_date(data.get("subject_on"), "subject_on"),
                outcome=data["outcome"],
                reason_enc=self.vault.encrypt_with(
                    self.vault.person_key(person), "follow_up_outcomes", entity_id, "reason",
                    data["reason"],
                ),
                user_id=_author(s, ctx, data, site.id),
                recorded_hlc=ctx.hlc,
            )
        )  # fmt: skip

    def to_wire(
        self, s: Session, op_type: str, entity_id: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        row = s.get(FollowUpOutcome, entity_id)
        return with_author(s, _to_wire_site(s, data, "site_id"), row.user_id if row else None)


def policy_registry() -> PolicyRegistry:
    """Contigo's field policies: SYNC.md's defaults, the person's lifecycle (changed only by
    its dedicated ops, so a plain patch of it is refused like one of the owning site) and the
    episode's exit date and its supervisor's override (REVIEW)."""
    registry = PolicyRegistry()
    controlled = FieldPolicy(Policy.TRANSFER_ONLY, since_schema=2)
    registry.register("person", {**DEFAULT_PERSON_POLICIES, lifecycle.FIELD: controlled})
    override = FieldPolicy(Policy.REVIEW, since_schema=3)
    registry.register(
        "care_episode",
        {**DEFAULT_EPISODE_POLICIES, "exit_on": Policy.REVIEW, OVERRIDE_FIELD: override},
    )
    return registry


def build_registry(vault: Vault) -> HandlerRegistry:
    """Every entity handler of Contigo over ``vault``, with its field policies."""
    registry = HandlerRegistry(policy_registry())
    registry.register(PersonHandler(vault))
    registry.register(EncounterHandler(vault))
    registry.register(EncounterVoidHandler(vault))
    registry.register(EpisodeHandler(vault))
    registry.register(FollowUpOutcomeHandler(vault), since_schema=3)
    registry.declare_type(ALIAS_ENTITY, since_schema=2)
    for extension in extensions():
        if extension.install is not None:
            extension.install(registry, vault)
    return registry
