"""Admitting to and exiting from care episodes, and their visit schedule.

Which exits are *derived* (defaulter, non-responder) is the clinical engine's decision over the
visit log; a worker can confirm such an exit, but the page shows what the log says.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.auth.scope import check_read, check_write
from contigo.db import new_id, utcnow
from contigo.episodes.models import Appointment, CareEpisode
from contigo.errors import UnknownPerson, ValidationFailed
from contigo.i18n import translate
from contigo.nutrition.profiles import get_profile
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.vault import Vault
from sync.outbox import record_op, tick


def visit_interval_days(programme: str, country: str) -> int:
    """Days between scheduled visits of ``programme`` under the country's profile."""
    follow = get_profile(country).follow_up
    if programme.startswith("sam"):
        return follow.sam_days
    if programme.startswith("mam"):
        return follow.mam_days
    return follow.plw_days


def active_episode(s: Session, person_id: str) -> CareEpisode | None:
    """The person's open episode, if any."""
    return s.scalar(
        select(CareEpisode).where(
            CareEpisode.person_id == person_id, CareEpisode.status == "active"
        )
    )


def episodes_of(s: Session, actor: User, person_id: str) -> list[CareEpisode]:
    """Every episode of a person, newest first."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_read(s, actor, person)
    return list(
        s.scalars(
            select(CareEpisode)
            .where(CareEpisode.person_id == person_id)
            .order_by(CareEpisode.admitted_on.desc())
        )
    )


def new_episode(
    actor: User,
    person_id: str,
    site: Site,
    *,
    programme: str,
    admitted_on: date,
    criteria: list[str],
    hlc: str,
) -> CareEpisode:
    """An admission's episode row, its first visit on the programme's schedule (not added to
    any session: :func:`admit`, and the demo's bulk writer, write it)."""
    return CareEpisode(
        id=new_id(),
        person_id=person_id,
        site_id=site.id,
        programme=programme,
        admitted_on=admitted_on,
        admission_criteria=json.dumps(criteria),
        next_visit_on=admitted_on + timedelta(days=visit_interval_days(programme, site.country)),
        created_hlc=hlc,
        created_by_user_id=actor.id,
    )


def admit(
    s: Session,
    v: Vault,
    actor: User,
    person_id: str,
    site_id: str,
    *,
    programme: str,
    admitted_on: date,
    criteria: list[str],
) -> CareEpisode:
    """Admit a person to a programme and book the first follow-up visit."""
    person = s.get(Person, person_id)
    if person is None:
        raise UnknownPerson()
    check_write(s, actor, person)
    if active_episode(s, person_id) is not None:
        raise ValidationFailed(fields={"programme": [translate("v.episode_open")]})
    site = s.get(Site, site_id)
    if site is None:
        raise ValidationFailed(fields={"site_id": [translate("v.site")]})
    stamp = tick(s).encode()
    episode = new_episode(
        actor, person_id, site, programme=programme, admitted_on=admitted_on, criteria=criteria,
        hlc=stamp,
    )  # fmt: skip
    nxt = episode.next_visit_on
    assert nxt is not None
    s.add(episode)
    s.flush()
    # The programme's schedule replaces any loose follow-up booked by the last visit.
    for loose in s.scalars(
        select(Appointment).where(
            Appointment.person_id == person_id,
            Appointment.status == "due",
            Appointment.episode_id.is_(None),
        )
    ):
        loose.status = "cancelled"
    s.add(
        Appointment(
            person_id=person_id,
            site_id=site_id,
            episode_id=episode.id,
            due_on=nxt,
            reason="episode_visit",
            created_hlc=stamp,
        )
    )
    record_op(
        s,
        op_type="care_episode.create",
        entity_type="care_episode",
        entity_id=episode.id,
        person_id=person_id,
        data={
            "programme": programme,
            "admitted_on": admitted_on.isoformat(),
            "criteria": criteria,
            "site_id": site_id,
            "next_visit_on": nxt.isoformat(),
        },
        fields=("programme", "status", "next_visit_on"),
        encrypt=v.outbox_encrypter(),
    )
    audit(
        s,
        user_id=actor.id,
        action="admit",
        entity_type="care_episode",
        entity_id=episode.id,
        person_id=person_id,
        site_id=site_id,
    )
    return episode


def after_visit(s: Session, v: Vault, person_id: str, visit_on: date) -> date | None:
    """Move an open episode's next visit on after an attended visit (a synced change, like any
    other); returns the new date."""
    episode = active_episode(s, person_id)
    if episode is None:
        return None
    site = s.get(Site, episode.site_id)
    assert site is not None
    episode.next_visit_on = visit_on + timedelta(
        days=visit_interval_days(episode.programme, site.country)
    )
    episode.updated_at = utcnow()
    s.add(
        Appointment(
            person_id=person_id,
            site_id=episode.site_id,
            episode_id=episode.id,
            due_on=episode.next_visit_on,
            reason="episode_visit",
            created_hlc=tick(s).encode(),
        )
    )
    record_op(
        s,
        op_type="care_episode.patch",
        entity_type="care_episode",
        entity_id=episode.id,
        person_id=person_id,
        data={"next_visit_on": episode.next_visit_on.isoformat()},
        fields=("next_visit_on",),
        encrypt=v.outbox_encrypter(),
    )
    return episode.next_visit_on


def close(
    s: Session,
    v: Vault,
    actor: User,
    episode_id: str,
    *,
    outcome: str,
    exit_on: date,
    override_reason: str | None = None,
) -> CareEpisode:
    """Exit an episode with its outcome; open appointments of the episode are cancelled.

    Records the exit as given: whether the protocol supports it is decided by
    :func:`contigo.episodes.treatment.exit_episode`, which passes ``override_reason`` for a
    supervisor's override (sealed with the person's key, synced as ``exit_override``, audited).
    """
    episode = s.get(CareEpisode, episode_id)
    if episode is None or episode.status != "active":
        raise ValidationFailed(fields={"episode": [translate("v.episode_closed")]})
    person = s.get(Person, episode.person_id)
    assert person is not None
    check_write(s, actor, person)
    if exit_on < episode.admitted_on:
        raise ValidationFailed(fields={"exit_on": [translate("v.exit_before_admission")]})
    episode.status = "closed"
    episode.exit_on = exit_on
    episode.exit_outcome = outcome
    episode.next_visit_on = None
    episode.updated_at = utcnow()
    data: dict[str, object] = {"outcome": outcome, "exit_on": exit_on.isoformat()}
    fields: tuple[str, ...] = ("status", "exit_outcome", "next_visit_on")
    if override_reason is not None:
        override = {"reason": override_reason}
        episode.exit_override_enc = v.encrypt_with(
            v.person_key(person), "care_episodes", episode_id, "exit_override", override
        )
        data["override"] = override
        fields += ("exit_override",)
    for appt in s.scalars(
        select(Appointment).where(Appointment.episode_id == episode_id, Appointment.status == "due")
    ):
        appt.status = "cancelled"
    record_op(
        s,
        op_type="care_episode.close",
        entity_type="care_episode",
        entity_id=episode_id,
        person_id=person.id,
        data=data,
        fields=fields,
        encrypt=v.outbox_encrypter(),
    )
    for action in ("exit", "exit_override") if override_reason is not None else ("exit",):
        audit(
            s,
            user_id=actor.id,
            action=action,
            entity_type="care_episode",
            entity_id=episode_id,
            person_id=person.id,
            site_id=episode.site_id,
        )
    return episode


def override_of(v: Vault, person: Person, episode: CareEpisode) -> str | None:
    """The reason of a supervisor's override of the discharge rule, if the exit was one."""
    if episode.exit_override_enc is None:
        return None
    found = v.decrypt_with(
        v.person_key(person), "care_episodes", episode.id, "exit_override",
        episode.exit_override_enc,
    )  # fmt: skip
    return str(found.get("reason", "")) if isinstance(found, dict) else None


def next_visit(s: Session, person_id: str) -> Appointment | None:
    """The person's earliest follow-up still due (an episode visit or a booked follow-up)."""
    return s.scalar(
        select(Appointment)
        .where(Appointment.person_id == person_id, Appointment.status == "due")
        .order_by(Appointment.due_on)
        .limit(1)
    )


def schedule(
    s: Session, actor: User, episode_id: str
) -> tuple[CareEpisode, list[Appointment]] | None:
    """An episode (checked against the reader's scope) and its visits in date order; None when
    there is no such episode."""
    episode = s.get(CareEpisode, episode_id)
    person = s.get(Person, episode.person_id) if episode is not None else None
    if episode is None or person is None:
        return None
    check_read(s, actor, person)
    visits = s.scalars(
        select(Appointment).where(Appointment.episode_id == episode_id).order_by(Appointment.due_on)
    )
    return episode, list(visits)
