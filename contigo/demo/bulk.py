"""The demo's rows made in memory and inserted in bulk: the record the services write, faster.

Writing a visit through :func:`contigo.encounters.services.record` costs a dozen ORM round trips
(the outbox's bases, the audit chain's head, the open episode, the appointments it attends, a
flush before each query). A demo writes 3,000 of them into an empty laptop, where the answer to
every one of those queries is already known to the writer: nothing else writes meanwhile, and
each person is written whole, in one transaction. :class:`BulkBuilder` keeps that state in
memory and makes, step for step, the rows the services make:

- a person (``persons.services.register``): the row sealed under a data key of its own, its
  blind indexes, a ``person.create`` op with a base for every mutable field, an audit entry;
- a visit (``encounters.services.record``): the payload with the engine's assessment sealed
  under the person's key, the oedema risk flag kept true to the visits (a ``person.patch``),
  the appointments it attends, the next visit booked (or an open episode's schedule moved on,
  a ``care_episode.patch``), the ``encounter.create`` op and the audit entry;
- an admission, an exit, a void (``episodes.services.admit``/``close``,
  ``encounters.services.void``) with their appointments, ops and audit entries.

HLC stamps come from the device clock in the same order as the services tick it; ops carry the
bases :func:`sync.outbox.record_op` would find; audit entries are linked into the hash chain by
:func:`contigo.audit.chain.append_rows`. At the end of the transaction the persons, their blind
indexes and episodes are flushed by the ORM (so the reporting feed's hook builds their facts,
visits included, before the commit, as it does for the services'), and every other table is
inserted with one ``executemany`` per table. ``tests/test_demo_bulk.py`` builds one plan both
ways and compares the records: a change to what those services write fails it until it is made
here too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import groupby
from typing import Any, cast

from flask import Flask
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from contigo.audit import chain as audit_chain
from contigo.audit.models import AuditEntry
from contigo.auth.models import User
from contigo.db import new_id, utcnow
from contigo.demo.plans import Planner
from contigo.demo.writer import Builder
from contigo.encounters import clinical
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import Appointment, CareEpisode
from contigo.episodes.services import new_episode, visit_interval_days
from contigo.persons import contigo_id, risk_flags
from contigo.persons import services as persons
from contigo.persons.models import Person, PersonIndex
from contigo.persons.services import ENCRYPTED, MUTABLE_FIELDS, PLAIN, PersonView
from contigo.sites.models import Site
from sync.hlc import HLC, Clock
from sync.models import OutboxOp
from sync.outbox import HLC_KEY, device_id, get_state, physical_clock, set_state
from sync.protocol import SCHEMA_VERSION

OEDEMA = "risk_flags.oedema_history"
#: Flushed by the ORM, so that the reporting feed's hook (``contigo.reports.hooks``) sees the
#: persons and episodes and builds their facts, visits included, before the commit.
FLUSHED = (Person, PersonIndex, CareEpisode)
#: Made as plain rows and inserted with ``executemany`` (making 10,000 mapped objects and
#: flushing them cost more than the rest of the build); columns a row leaves out get their
#: defaults, as in a flush.
INSERTED = (Encounter, EncounterVoid, Appointment, OutboxOp)
Row = dict[str, Any]


@dataclass
class _Person:
    """One person being written: the row, their key and view, their open episode and the
    appointments still to be attended or cancelled."""

    row: Person
    key: bytes
    view: PersonView
    episode: CareEpisode | None = None
    appointments: list[Row] = field(default_factory=list)


class BulkBuilder(Builder):
    """A :class:`~contigo.demo.writer.Builder` whose writes make the services' rows in memory
    and insert them once per :meth:`transaction`."""

    def __init__(self, app: Flask, password: str, planner: Planner) -> None:
        super().__init__(app, password, planner)
        self.contigo_ids: set[str] = set()

    def _begin(self, s: Session) -> None:
        self.device = device_id(s)
        stored = get_state(s, HLC_KEY)
        self.clock = Clock(
            self.device, physical_clock(s), last=HLC.decode(stored) if stored else None
        )
        self.last_hlc: HLC | None = None
        self.encrypt_op = self.vault.outbox_encrypter()
        self.sites = {site.id: site for site in s.info["demo_pinned"] if isinstance(site, Site)}
        self.people: dict[str, _Person] = {}
        self.objects: list[Any] = []
        self.rows: dict[type, list[Row]] = {model: [] for model in INSERTED}
        self.encounter_rows: dict[str, Row] = {}
        self.audit_rows: list[Row] = []
        # Per entity, the newest op that wrote each field: a person is written whole in one
        # transaction, so no entity has ops in two.
        self.bases: dict[tuple[str, str], dict[str, str | None]] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Gather the rows of the persons written inside the block; insert them at its end."""
        with super().transaction():
            s = self._session
            assert s is not None
            self._begin(s)
            yield
            self._insert(s)

    def _insert(self, s: Session) -> None:
        for kind in FLUSHED:  # parents first: these tables have no relationship()s
            s.add_all([o for o in self.objects if type(o) is kind])
            s.flush()
        conn = s.connection()
        for made in INSERTED:
            for _keys, run in groupby(self.rows[made], key=lambda row: row.keys()):
                conn.execute(insert(cast(Table, made.__table__)), list(run))
        if self.audit_rows:
            audit_chain.append_rows(conn, self.audit_rows)
            conn.execute(insert(cast(Table, AuditEntry.__table__)), self.audit_rows)
        if self.last_hlc is not None:
            set_state(s, HLC_KEY, self.last_hlc.encode())

    # ── what every write shares: the clock, the outbox op, the audit entry ──────────────────
    def _tick(self) -> str:
        self.last_hlc = self.clock.now()
        return self.last_hlc.encode()

    def _op(
        self,
        op_type: str,
        entity: tuple[str, str],
        person_id: str,
        data: dict[str, Any],
        fields: Iterable[str] = (),
    ) -> None:
        """An outbox op as :func:`sync.outbox.record_op` makes it: each field's base is the
        newest op of this device that wrote it (none yet for a new entity)."""
        op_id = uuid.uuid4().hex
        stamp = self._tick()
        known = self.bases.setdefault(entity, {})
        base = {name: known.get(name) for name in set(fields)}
        known.update(dict.fromkeys(base, op_id))
        self.rows[OutboxOp].append(
            {
                "op_id": op_id,
                "op_type": op_type,
                "entity_type": entity[0],
                "entity_id": entity[1],
                "person_id": person_id,
                "base": json.dumps(base, sort_keys=True),
                "payload_enc": self.encrypt_op(
                    op_id, json.dumps(data, sort_keys=True, default=str).encode()
                ),
                "hlc": stamp,
                "schema_version": SCHEMA_VERSION,
                "created_at": datetime.now(UTC).isoformat(),
            }
        )

    def _audit(
        self, actor: User, action: str, entity: tuple[str, str], person_id: str, site_id: str
    ) -> None:
        """An audit entry as :func:`contigo.audit.services.record` makes it outside a request."""
        self.audit_rows.append(
            {
                "id": new_id(),
                "at": utcnow(),
                "user_id": actor.id,
                "action": action,
                "entity_type": entity[0],
                "entity_id": entity[1],
                "person_id": person_id,
                "site_id": site_id,
                "origin": "",
            }
        )

    # ── persons ─────────────────────────────────────────────────────────────────────────────
    def _contigo_id(self) -> str:
        while (cid := contigo_id.generate()) in self.contigo_ids:
            pass
        self.contigo_ids.add(cid)
        return cid

    def _register(self, s: Session, actor: User, site_id: str, data: dict[str, Any]) -> PersonView:
        """``persons.services.register`` (into an instance with no other person)."""
        v = self.vault
        person_id = new_id()
        key, wrapped = v.new_person_key(person_id)
        row = Person(
            id=person_id,
            contigo_id=self._contigo_id(),
            owning_site_id=site_id,
            data_key_wrapped=wrapped,
            created_hlc=self._tick(),
            created_by_user_id=actor.id,
            **{k: data.get(k) for k in PLAIN},
        )
        for name in ENCRYPTED:
            value = persons._serialise(name, data.get(name))
            if value in (None, [], ""):
                value = None if name not in ("documents",) else []
            setattr(row, f"{name}_enc", v.encrypt_with(key, "persons", person_id, name, value))
        self.objects += [row, *persons._index_entries(v, person_id, data)]
        payload = {k: persons._serialise(k, data.get(k)) for k in MUTABLE_FIELDS} | {
            "contigo_id": row.contigo_id,
            "owning_site_id": site_id,
        }
        entity = ("person", person_id)
        self._op("person.create", entity, person_id, payload, MUTABLE_FIELDS)
        self._audit(actor, "create", entity, person_id, site_id)
        v.index_person(person_id, payload["given_names"], payload["family_names"])
        view = persons.decrypt(v, row)
        self.people[person_id] = _Person(row, key, view)
        return view

    # ── visits ──────────────────────────────────────────────────────────────────────────────
    def _record(
        self, s: Session, actor: User, person_id: str, site_id: str, data: dict[str, Any]
    ) -> str:
        """``encounters.services.record``."""
        self.encounters += 1
        who, site = self.people[person_id], self.sites[site_id]
        on: date = data["occurred_on"]
        assessment = clinical.assess(who.view, site, data)
        enc_id = new_id()
        body = clinical.serialise(data) | {"assessment": assessment}
        encounter = {
            "id": enc_id,
            "person_id": person_id,
            "site_id": site_id,
            "user_id": actor.id,
            "device_id": self.device,
            "kind": who.row.kind,
            "occurred_on": on,
            "country": site.country,
            "recorded_hlc": self._tick(),
            "reference_version": assessment["reference_version"],
            "payload_enc": self.vault.encrypt_with(who.key, "encounters", enc_id, "payload", body),
            "supersedes_id": data.get("supersedes_id"),
        }
        self.rows[Encounter].append(encounter)
        self.encounter_rows[enc_id] = encounter
        if who.row.kind == "child":
            self._note_oedema(actor, who, int(data.get("oedema_grade") or 0))
        for appt in who.appointments:
            if appt["status"] == "due" and appt["due_on"] <= on + timedelta(days=3):
                appt |= {"status": "done", "encounter_id": enc_id}
        if not self._after_visit(who, on):
            nxt = data.get("next_visit_on") or clinical.default_next_visit(
                assessment, on, site.country
            )
            if nxt is not None:
                self._appointment(who, site_id, None, nxt, "follow_up", encounter["recorded_hlc"])
        op = body | {
            "occurred_on": on.isoformat(),
            "site_id": site_id,
            "supersedes_id": data.get("supersedes_id"),
        }
        self._op("encounter.create", ("encounter", enc_id), person_id, op)
        self._audit(actor, "create", ("encounter", enc_id), person_id, site_id)
        return enc_id

    def _appointment(
        self, who: _Person, site_id: str, episode_id: str | None, due: date, why: str, hlc: str
    ) -> None:
        appt = {
            "person_id": who.row.id,
            "site_id": site_id,
            "episode_id": episode_id,
            "due_on": due,
            "reason": why,
            "created_hlc": hlc,
            "status": "due",
            "encounter_id": None,
        }
        who.appointments.append(appt)
        self.rows[Appointment].append(appt)

    def _note_oedema(self, actor: User, who: _Person, grade: int) -> None:
        """``encounters.services._note_oedema``: the flag follows the visits (a patch)."""
        now = risk_flags.read(self.vault, who.row)[OEDEMA]
        wanted = "current" if grade > 0 else ("past" if now == "current" else now)
        if wanted == now:
            return
        risk_flags.write(self.vault, who.row, {OEDEMA: wanted})
        entity = ("person", who.row.id)
        self._op("person.patch", entity, who.row.id, {OEDEMA: wanted}, [OEDEMA])
        self._audit(actor, "update", entity, who.row.id, who.row.owning_site_id)

    def _after_visit(self, who: _Person, on: date) -> bool:
        """``episodes.services.after_visit``: an open episode's next visit moves on."""
        episode = who.episode
        if episode is None:
            return False
        country = self.sites[episode.site_id].country
        episode.next_visit_on = on + timedelta(days=visit_interval_days(episode.programme, country))
        episode.updated_at = utcnow()
        stamp = self._tick()
        self._appointment(
            who, episode.site_id, episode.id, episode.next_visit_on, "episode_visit", stamp
        )
        self._op(
            "care_episode.patch",
            ("care_episode", episode.id),
            who.row.id,
            {"next_visit_on": episode.next_visit_on.isoformat()},
            ("next_visit_on",),
        )
        return True

    def _void(self, s: Session, actor: User, encounter_id: str, reason: str) -> None:
        """``encounters.services.void``."""
        encounter = self.encounter_rows[encounter_id]
        who = self.people[encounter["person_id"]]
        void_id = new_id()
        self.rows[EncounterVoid].append(
            {
                "id": void_id,
                "encounter_id": encounter_id,
                "reason_enc": self.vault.encrypt_with(
                    who.key, "encounter_voids", void_id, "reason", reason
                ),
                "user_id": actor.id,
                "recorded_hlc": self._tick(),
            }
        )
        data = {"encounter_id": encounter_id, "reason": reason}
        self._op("encounter.void", ("encounter_void", void_id), who.row.id, data)
        self._audit(actor, "void", ("encounter", encounter_id), who.row.id, encounter["site_id"])

    # ── episodes ────────────────────────────────────────────────────────────────────────────
    def _open(
        self, s: Session, actor: User, person_id: str, site_id: str, data: dict[str, Any]
    ) -> str:
        """``episodes.services.admit``."""
        who, site = self.people[person_id], self.sites[site_id]
        programme, admitted_on = data["programme"], data["admitted_on"]
        stamp = self._tick()
        episode = new_episode(actor, person_id, site, hlc=stamp, **data)
        nxt = episode.next_visit_on
        assert nxt is not None
        self.objects.append(episode)
        who.episode = episode
        for loose in who.appointments:
            if loose["status"] == "due" and loose["episode_id"] is None:
                loose["status"] = "cancelled"
        self._appointment(who, site_id, episode.id, nxt, "episode_visit", stamp)
        entity = ("care_episode", episode.id)
        op = {
            "programme": programme,
            "admitted_on": admitted_on.isoformat(),
            "criteria": data["criteria"],
            "site_id": site_id,
            "next_visit_on": nxt.isoformat(),
        }
        self._op(
            "care_episode.create", entity, person_id, op, ("programme", "status", "next_visit_on")
        )
        self._audit(actor, "admit", entity, person_id, site_id)
        return episode.id

    def _close(self, s: Session, actor: User, episode_id: str, data: dict[str, Any]) -> None:
        """``episodes.services.close`` (no override: the demo's exits follow the protocol)."""
        who = next(p for p in self.people.values() if p.episode and p.episode.id == episode_id)
        episode = who.episode
        assert episode is not None
        episode.status = "closed"
        episode.exit_on = data["exit_on"]
        episode.exit_outcome = data["outcome"]
        episode.next_visit_on = None
        episode.updated_at = utcnow()
        for appt in who.appointments:
            if appt["episode_id"] == episode_id and appt["status"] == "due":
                appt["status"] = "cancelled"
        entity = ("care_episode", episode_id)
        op = {"outcome": data["outcome"], "exit_on": data["exit_on"].isoformat()}
        self._op(
            "care_episode.close",
            entity,
            who.row.id,
            op,
            ("status", "exit_outcome", "next_visit_on"),
        )
        self._audit(actor, "exit", entity, who.row.id, episode.site_id)
        who.episode = None
