"""Closing the loop on safety signals: the outcome a user records for an alert or a missed
visit, and which alerts and missed visits are still open (:mod:`contigo.nutrition.followup`).

An outcome is an append-only, synced event (``follow_up_outcome.record``), so an alert closed on
one laptop is closed on every laptop of the site and on central. Services flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import check_record
from contigo.db import new_id
from contigo.episodes.models import CareEpisode, FollowUpOutcome
from contigo.errors import UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.nutrition.followup import Acknowledgement, SubjectKind
from contigo.persons.models import Person
from contigo.vault import Vault
from sync.outbox import record_op, tick


def record_outcome(
    s: Session,
    v: Vault,
    actor: User,
    person_id: str,
    site_id: str,
    *,
    kind: SubjectKind,
    subject_on: date,
    outcome: str,
    reason: str,
) -> FollowUpOutcome:
    """Record what following up an alert (``kind='alert'``, dated by its visit) or a missed
    visit (``'trace'``, dated by its due date) found, with the reason; synced and audited."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_record(s, actor, person)
    if site_id not in actor.site_ids:
        raise ValidationFailed(fields={"site_id": [translate("v.site")]})
    row_id = new_id()
    row = FollowUpOutcome(
        id=row_id,
        person_id=person_id,
        site_id=site_id,
        kind=kind,
        subject_on=subject_on,
        outcome=outcome,
        reason_enc=v.encrypt_with(
            v.person_key(person), "follow_up_outcomes", row_id, "reason", reason
        ),
        user_id=actor.id,
        recorded_hlc=tick(s).encode(),
    )
    s.add(row)
    s.flush()
    record_op(
        s,
        op_type="follow_up_outcome.record",
        entity_type="follow_up_outcome",
        entity_id=row_id,
        person_id=person_id,
        data={
            "kind": kind,
            "subject_on": subject_on.isoformat(),
            "outcome": outcome,
            "reason": reason,
            "site_id": site_id,
        },
        encrypt=v.outbox_encrypter(),
    )
    audit(
        s,
        user_id=actor.id,
        action="follow_up",
        entity_type="follow_up_outcome",
        entity_id=row_id,
        person_id=person_id,
        site_id=site_id,
    )
    return row


def acknowledgements(s: Session, person_ids: Iterable[str]) -> dict[str, list[Acknowledgement]]:
    """The recorded outcomes of each of ``person_ids`` (one query)."""
    ids = list(set(person_ids))
    out: dict[str, list[Acknowledgement]] = {}
    for start in range(0, len(ids), 500):
        rows = s.execute(
            select(
                FollowUpOutcome.person_id,
                FollowUpOutcome.kind,
                FollowUpOutcome.subject_on,
                FollowUpOutcome.outcome,
            ).where(FollowUpOutcome.person_id.in_(ids[start : start + 500]))
        )
        for person_id, kind, on, outcome in rows:
            out.setdefault(person_id, []).append(Acknowledgement(kind, on, outcome))
    return out


def in_programme(s: Session, person_ids: Iterable[str]) -> set[str]:
    """Which of ``person_ids`` are in an open care episode (one query per 500)."""
    ids = list(set(person_ids))
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found |= set(
            s.scalars(
                select(CareEpisode.person_id).where(
                    CareEpisode.person_id.in_(ids[start : start + 500]),
                    CareEpisode.status == "active",
                )
            )
        )
    return found
