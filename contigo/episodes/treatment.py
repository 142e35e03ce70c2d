"""The protocol at the episode's exit, and the treatment card.

The bridge between the episode pages and the pure discharge rules
(:mod:`contigo.nutrition.discharge`): the visit log is read from the person's encounters (active
ones only: voided and superseded visits never count), and an exit the log does not support (a
cure before the criteria are met, a default the log does not show) is recorded only as a
supervisor's override with a reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import get_args

from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.display import clinical_label, date_text
from contigo.encounters import services as encounters
from contigo.encounters.services import EncounterView
from contigo.episodes import services
from contigo.episodes.models import CareEpisode
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.nutrition.discharge import (
    CURE_CHECKED,
    CureCheck,
    Weighing,
    WeightGain,
    check_cure,
    days_in_programme,
    target_weight_kg,
    weight_gain,
)
from contigo.nutrition.episodes import Episode, Programme, Visit, derive_status
from contigo.nutrition.profiles import Profile, get_profile
from contigo.persons.models import Person
from contigo.sites.models import Site
from contigo.vault import Vault

DERIVED = ("defaulted", "non_responder")
PRODUCTS = frozenset({"rutf", "rusf", "lns_sq", "lns_mq"})


def visit_of(e: EncounterView) -> Visit:
    """An encounter as the clinical engine's visit."""
    return Visit(
        on=e.occurred_on,
        whz=(e.assessment.get("zscores") or {}).get("whz"),
        muac_mm=e.data.get("muac_mm"),
        oedema_grade=int(e.data.get("oedema_grade") or 0),
        flags=frozenset(e.assessment.get("flags") or ()),
    )


def model_of(episode: CareEpisode) -> Episode:
    """A stored episode as the clinical engine's episode (its recorded exit left out: the log
    is what is checked)."""
    criteria = tuple(json.loads(episode.admission_criteria or "[]"))
    return Episode(episode.programme, episode.admitted_on, criteria)  # type: ignore[arg-type]


def _profile(s: Session, episode: CareEpisode) -> Profile:
    site = s.get(Site, episode.site_id)
    return get_profile(site.country if site else None)


def _refusal(
    episode: CareEpisode, visits: list[Visit], profile: Profile, outcome: str, exit_on: date
) -> str | None:
    """Why the visit log does not support this exit (a translated sentence), or ``None``."""
    if episode.programme not in get_args(Programme):
        return None
    model = model_of(episode)
    if outcome == "cured" and episode.programme in CURE_CHECKED:
        check = check_cure(model, visits, profile, exit_on)
        if check.met:
            return None
        reasons = "; ".join(_reason_text(r, check) for r in check.reasons)
        return translate("clin2.v.cure_not_met", reasons=reasons)
    if outcome in DERIVED:
        status = derive_status(model, visits, profile, exit_on)
        if status.state != outcome:
            return translate("clin2.v.log_disagrees", state=clinical_label(status.reason_key))
    return None


def _reason_text(reason: str, check: CureCheck) -> str:
    if reason == "min_stay":
        return translate("clin2.cure.min_stay", date=date_text(check.earliest_on))
    return translate(f"clin2.cure.{reason}")


def exit_episode(
    s: Session,
    v: Vault,
    actor: User,
    episode_id: str,
    *,
    outcome: str,
    exit_on: date,
    override_reason: str | None = None,
) -> CareEpisode:
    """Close an episode as the protocol allows (see module notes).

    :raises ValidationFailed: on ``outcome`` when the log does not support the exit and no
        override reason was given; on ``override_reason`` when the actor is not a supervisor.
    """
    episode = s.get(CareEpisode, episode_id)
    if episode is None or episode.status != "active":
        raise ValidationFailed(fields={"episode": [translate("v.episode_closed")]})
    history = encounters.history(s, v, actor, episode.person_id)
    visits = [visit_of(e) for e in history if e.active]
    refusal = _refusal(episode, visits, _profile(s, episode), outcome, exit_on)
    if refusal is None:
        override_reason = None
    elif override_reason is None:
        hint = translate("clin2.v.override_hint")
        raise ValidationFailed(fields={"outcome": [f"{refusal} {hint}"]})
    elif actor.role != "supervisor":
        raise ValidationFailed(fields={"override_reason": [translate("clin2.v.supervisor_only")]})
    return services.close(
        s, v, actor, episode_id, outcome=outcome, exit_on=exit_on, override_reason=override_reason
    )


@dataclass(frozen=True)
class CardVisit:
    """One row of the treatment card."""

    on: date
    weight_kg: float | None
    muac_mm: float | None
    oedema_grade: int
    appetite_test: str | None
    products: tuple[str, ...]
    medicines: tuple[str, ...]
    sachets: int | None
    whz: float | None


@dataclass(frozen=True)
class TreatmentCard:
    """What the episode page shows of the treatment (see the module notes of
    :mod:`contigo.nutrition.discharge` for each figure)."""

    admission: CardVisit | None
    visits: tuple[CardVisit, ...]
    gain: WeightGain | None
    days: int
    target_weight_kg: float | None
    cure: CureCheck | None
    next_visit_on: date | None
    override_reason: str | None


def _row(e: EncounterView) -> CardVisit:
    given = tuple(e.data.get("supplements") or ())
    return CardVisit(
        on=e.occurred_on,
        weight_kg=e.data.get("weight_kg"),
        muac_mm=e.data.get("muac_mm"),
        oedema_grade=int(e.data.get("oedema_grade") or 0),
        appetite_test=e.data.get("appetite_test"),
        products=tuple(g for g in given if g in PRODUCTS),
        medicines=tuple(g for g in given if g not in PRODUCTS),
        sachets=e.data.get("sachets"),
        whz=(e.assessment.get("zscores") or {}).get("whz"),
    )


def card(s: Session, v: Vault, actor: User, episode: CareEpisode, today: date) -> TreatmentCard:
    """The treatment card of an episode, as of ``today`` (or its exit date once closed)."""
    person = s.get(Person, episode.person_id)
    assert person is not None
    until = episode.exit_on or today
    history = [e for e in encounters.history(s, v, actor, episode.person_id) if e.active]
    before = [e for e in history if e.occurred_on <= episode.admitted_on]
    during = [e for e in history if episode.admitted_on <= e.occurred_on <= until]
    admission = before[-1] if before else (during[0] if during else None)
    weighed = [e for e in during if e.data.get("weight_kg")]
    if admission is not None and admission not in during and admission.data.get("weight_kg"):
        weighed.insert(0, admission)
    gain = weight_gain([Weighing(e.occurred_on, float(e.data["weight_kg"])) for e in weighed])
    measured = [e for e in history if e.occurred_on <= until and e.assessment.get("clenhei")]
    target = None
    if measured and person.kind == "child":
        latest = measured[-1]
        target = target_weight_kg(
            str(latest.assessment.get("sex") or ""),
            latest.assessment.get("age_days"),
            latest.assessment.get("clenhei"),
        )
    cure = None
    if episode.programme in CURE_CHECKED:
        visits = [visit_of(e) for e in history]
        cure = check_cure(model_of(episode), visits, _profile(s, episode), until)
    return TreatmentCard(
        admission=_row(admission) if admission is not None else None,
        visits=tuple(_row(e) for e in during),
        gain=gain,
        days=days_in_programme(model_of(episode), until),
        target_weight_kg=target,
        cure=cure,
        next_visit_on=episode.next_visit_on,
        override_reason=services.override_of(v, person, episode),
    )
