"""Recording, voiding and listing encounters.

An encounter stores the raw measurements *and* what they meant when recorded (z-scores with the
reference version, the classification under the profile of the country where it happened), in
one encrypted payload. It is never updated: corrections supersede, mistakes are voided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo import integrity
from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import check_read, check_record, check_write
from contigo.crypto import KeyUnwrapError, TamperedCiphertext
from contigo.db import new_id
from contigo.encounters import clinical, currency
from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import Appointment
from contigo.episodes.services import after_visit
from contigo.errors import (
    AlreadyVoided,
    RecordUnreadable,
    UnknownEncounter,
    UnknownPerson,
    ValidationFailed,
)
from contigo.i18n import translate
from contigo.nutrition.sequences import Reading, point_of_care_warnings
from contigo.persons import lifecycle, risk_flags
from contigo.persons.models import Person
from contigo.persons.services import PersonView, record_change
from contigo.persons.services import decrypt as decrypt_person
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.models import ReviewItem
from sync.outbox import device_id, record_op, tick
from sync.protocol import ConflictKind


@dataclass(frozen=True)
class EncounterView:
    """An encounter decrypted for an authorised reader."""

    id: str
    person_id: str
    site_id: str
    country: str
    occurred_on: date
    kind: str
    reference_version: str
    data: dict[str, Any]
    assessment: dict[str, Any]
    supersedes_id: str | None
    voided_reason: str | None = None
    superseded_by: str | None = None
    in_review: bool = False
    """A clinical review decides between this value and a concurrent correction or void
    (:mod:`contigo.encounters.currency`); until then a provisional one is current."""
    extra: dict[str, Any] = field(default_factory=dict)
    #: The payload failed its integrity check: ``data`` and ``assessment`` are empty, and the
    #: visit is shown as unreadable, never counted (see :mod:`contigo.integrity`).
    unreadable: bool = False

    @property
    def active(self) -> bool:
        """Neither voided, superseded nor unreadable: counts in the history and charts."""
        return self.voided_reason is None and self.superseded_by is None and not self.unreadable


def _person_and_site(s: Session, actor: User, person_id: str, site_id: str) -> tuple[Person, Site]:
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_record(s, actor, person)
    site = s.get(Site, site_id)
    if site is None or site_id not in actor.site_ids:
        raise ValidationFailed(fields={"site_id": [translate("v.site")]})
    return person, site


#: Visit fields that only a woman's visit may carry.
PREGNANCY_FIELDS = ("pregnancy_status", "gestational_weeks")


def check_fits_person(person: PersonView, data: dict[str, Any]) -> None:
    """Refuse visit values that cannot belong to ``person``: pregnancy data on a child's or a
    male's visit (``pregnancy_status: "neither"`` says nothing and is accepted)."""
    if person.kind == "woman" and person.sex == "F":
        return
    wrong = [name for name in PREGNANCY_FIELDS if data.get(name) not in (None, "neither")]
    if wrong:
        message = translate("apierr.v.pregnancy_child")
        raise ValidationFailed(fields={name: [message] for name in wrong})


def record(
    s: Session, v: Vault, actor: User, person_id: str, site_id: str, data: dict[str, Any]
) -> Encounter:
    """Record a visit for ``person_id`` at ``site_id`` from validated ``data``.

    Classifies with the profile of the site's country, closes the appointments it attends, books
    the next visit, and writes the outbox op and audit entry, all in the caller's transaction.
    """
    person, site = _person_and_site(s, actor, person_id, site_id)
    view = decrypt_person(v, person)
    if {"birth_date", "sex"} & set(view.unreadable):  # no age, no z-scores: nothing to assess
        raise RecordUnreadable()
    check_fits_person(view, data)
    if data["occurred_on"] < view.birth_date:
        raise ValidationFailed(fields={"occurred_on": [translate("v.before_birth")]})
    if data.get("supersedes_id"):
        old = s.get(Encounter, data["supersedes_id"])
        if old is None or old.person_id != person_id:
            raise ValidationFailed(fields={"supersedes_id": [translate("v.invalid")]})
    assessment = clinical.assess(view, site, data)
    enc_id = new_id()
    body = clinical.serialise(data) | {"assessment": assessment}
    key = v.person_key(person)
    encounter = Encounter(
        id=enc_id,
        person_id=person_id,
        site_id=site_id,
        user_id=actor.id,
        device_id=device_id(s),
        kind=person.kind,
        occurred_on=data["occurred_on"],
        country=site.country,
        recorded_hlc=tick(s).encode(),
        reference_version=assessment["reference_version"],
        payload_enc=v.encrypt_with(key, "encounters", enc_id, "payload", body),
        supersedes_id=data.get("supersedes_id"),
    )
    s.add(encounter)
    s.flush()
    if person.kind == "child":
        _note_oedema(s, v, actor, person, int(data.get("oedema_grade") or 0))
    _attend_appointments(s, person_id, data["occurred_on"], enc_id)
    if after_visit(s, v, person_id, data["occurred_on"]) is None:
        nxt = data.get("next_visit_on") or clinical.default_next_visit(
            assessment, data["occurred_on"], site.country
        )
        if nxt is not None:
            s.add(
                Appointment(
                    person_id=person_id,
                    site_id=site_id,
                    due_on=nxt,
                    reason="follow_up",
                    created_hlc=encounter.recorded_hlc,
                )
            )
    record_op(
        s,
        op_type="encounter.create",
        entity_type="encounter",
        entity_id=enc_id,
        person_id=person_id,
        data=body
        | {
            "occurred_on": data["occurred_on"].isoformat(),
            "site_id": site_id,
            "supersedes_id": data.get("supersedes_id"),
        },
        encrypt=v.outbox_encrypter(),
    )
    audit(
        s,
        user_id=actor.id,
        action="create",
        entity_type="encounter",
        entity_id=enc_id,
        person_id=person_id,
        site_id=site_id,
    )
    return encounter


def _note_oedema(s: Session, v: Vault, actor: User, person: Person, grade: int) -> None:
    """Keep the oedema-history risk flag true to the visits: oedema seen now sets ``current``;
    a visit without oedema after ``current`` moves it to ``past`` (never back to ``none``). The
    change is an ordinary ``person.patch`` of the flag (SAFETY policy: the more severe value
    wins a concurrent edit)."""
    name = "risk_flags.oedema_history"
    now = risk_flags.read(v, person)[name]
    wanted = "current" if grade > 0 else ("past" if now == "current" else now)
    if wanted == now:
        return
    risk_flags.write(v, person, {name: wanted})
    s.flush()
    record_change(s, v, actor, person, {name: wanted})


def reading_of(data: dict[str, Any], assessment: dict[str, Any], on: date) -> Reading:
    """A visit's values as the history rule reads them (the adjusted length, so a position
    switch is not a change)."""
    weight = data.get("weight_kg")
    length = assessment.get("clenhei")
    return Reading(
        on=on,
        weight_kg=float(weight) if isinstance(weight, int | float) else None,
        length_cm=float(length) if isinstance(length, int | float) else None,
        oedema=bool(data.get("oedema_grade")),
    )


def previous_visit(
    history: list[EncounterView], on: date, supersedes_id: str | None = None
) -> EncounterView | None:
    """The latest active visit on or before ``on`` (the one a correction replaces excluded)."""
    earlier = [
        e for e in history if e.active and e.occurred_on <= on and e.id != (supersedes_id or "")
    ]
    return earlier[-1] if earlier else None


def history_warnings(
    previous: EncounterView | None, data: dict[str, Any], assessment: dict[str, Any]
) -> list[str]:
    """What asks for a re-measure against the child's previous visit (``history_*`` codes;
    :func:`contigo.nutrition.sequences.point_of_care_warnings`)."""
    if previous is None or previous.kind != "child":
        return []
    before = reading_of(previous.data, previous.assessment, previous.occurred_on)
    now = reading_of(data, assessment, data["occurred_on"])
    return [f"history_{code}" for code in point_of_care_warnings(before, now)]


def _attend_appointments(s: Session, person_id: str, on: date, encounter_id: str) -> None:
    due = s.scalars(
        select(Appointment).where(
            Appointment.person_id == person_id,
            Appointment.status == "due",
            Appointment.due_on <= on.fromordinal(on.toordinal() + 3),
        )
    )
    for appt in due:
        appt.status = "done"
        appt.encounter_id = encounter_id


def void(s: Session, v: Vault, actor: User, encounter_id: str, reason: str) -> EncounterVoid:
    """Void an encounter typed by mistake; it stays in the record, marked, with the reason."""
    encounter = s.get(Encounter, encounter_id)
    if encounter is None:
        raise UnknownEncounter()
    person = s.get(Person, encounter.person_id)
    assert person is not None
    check_write(s, actor, person)
    if s.scalar(select(EncounterVoid.id).where(EncounterVoid.encounter_id == encounter_id)):
        raise AlreadyVoided()
    void_id = new_id()
    row = EncounterVoid(
        id=void_id,
        encounter_id=encounter_id,
        reason_enc=v.encrypt_with(
            v.person_key(person), "encounter_voids", void_id, "reason", reason
        ),
        user_id=actor.id,
        recorded_hlc=tick(s).encode(),
    )
    s.add(row)
    s.flush()
    record_op(
        s,
        op_type="encounter.void",
        entity_type="encounter_void",
        entity_id=void_id,
        person_id=person.id,
        data={"encounter_id": encounter_id, "reason": reason},
        encrypt=v.outbox_encrypter(),
    )
    audit(
        s,
        user_id=actor.id,
        action="void",
        entity_type="encounter",
        entity_id=encounter_id,
        person_id=person.id,
        site_id=encounter.site_id,
    )
    return row


def settled_races(s: Session, encounter_ids: list[str]) -> set[str]:
    """Encounters among ``encounter_ids`` whose concurrent-correction review item is closed."""
    if not encounter_ids:
        return set()
    return set(
        s.scalars(
            select(ReviewItem.entity_id).where(
                ReviewItem.kind == ConflictKind.CONCURRENT_EDIT.value,
                ReviewItem.entity_type == "encounter",
                ReviewItem.entity_id.in_(encounter_ids),
                ReviewItem.status != "open",
            )
        )
    )


def history(s: Session, v: Vault, actor: User, person_id: str) -> list[EncounterView]:
    """Every encounter of a person, oldest first, from every site and country, with voids and
    supersessions marked (never hidden)."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_read(s, actor, person)
    keys = _record_keys(s, v, person)  # a survivor shows the merged records' visits too
    rows = list(
        s.scalars(
            select(Encounter)
            .where(Encounter.person_id.in_(keys))
            .order_by(Encounter.occurred_on, Encounter.recorded_hlc)
        )
    )
    owner = {r.id: r.person_id for r in rows}
    voids = {
        vd.encounter_id: _read(
            v, keys[owner[vd.encounter_id]], "encounter_voids", vd.id, "reason", vd.reason_enc, ""
        )
        for vd in s.scalars(
            select(EncounterVoid).where(EncounterVoid.encounter_id.in_([r.id for r in rows]))
        )
    }
    standing = currency.standings(
        (currency.Visit(r.id, r.supersedes_id, r.recorded_hlc, r.id in voids) for r in rows),
        settled=settled_races(s, [r.id for r in rows]),
    )
    out = []
    for r in rows:
        body = _read(v, keys[r.person_id], "encounters", r.id, "payload", r.payload_enc, None)
        unreadable = body is None
        body = body or {"assessment": {}}
        assessment = body.pop("assessment")
        out.append(
            EncounterView(
                id=r.id,
                person_id=r.person_id,
                site_id=r.site_id,
                country=r.country,
                occurred_on=r.occurred_on,
                kind=r.kind,
                reference_version=r.reference_version,
                data=body,
                assessment=assessment,
                supersedes_id=r.supersedes_id,
                voided_reason=voids.get(r.id),
                superseded_by=standing[r.id].superseded_by,
                in_review=standing[r.id].in_review,
                unreadable=unreadable,
            )
        )
    return out


def _record_keys(s: Session, v: Vault, person: Person) -> dict[str, bytes | None]:
    """The data keys of the record's persons (see :func:`lifecycle.record_keys`); when one is
    damaged, every id maps to its key where it opens and to None where it does not."""
    try:
        return dict(lifecycle.record_keys(s, v, person))
    except (KeyUnwrapError, TamperedCiphertext):
        keys: dict[str, bytes | None] = {}
        for pid in lifecycle.record_ids(s, person.id):
            row = s.get(Person, pid)
            try:
                keys[pid] = v.person_key(row) if row is not None else None
            except (KeyUnwrapError, TamperedCiphertext):
                integrity.damaged("persons", pid, "data_key", pid)
                keys[pid] = None
        return keys


def _read(v: Vault, key: bytes | None, table: str, row_id: str, column: str, blob: bytes,
          blank: Any) -> Any:  # fmt: skip
    """A decrypted value, or ``blank`` (reported as damaged) when it fails its integrity check
    or its person's data key is damaged (``key`` None)."""
    if key is not None:
        try:
            return v.decrypt_with(key, table, row_id, column, blob)
        except TamperedCiphertext:
            pass
    integrity.damaged(table, row_id, column, None)
    return blank
