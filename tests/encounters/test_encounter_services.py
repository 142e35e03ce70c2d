"""Recording, voiding and listing encounters; the append-only guarantee at both layers."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from contigo.auth.models import User
from contigo.encounters import services
from contigo.encounters.models import Encounter, ImmutableRecord
from contigo.episodes.models import Appointment
from contigo.errors import AlreadyVoided, ValidationFailed
from contigo.vault import get_vault
from sync.models import OutboxOp
from tests.factories import VISIT as BASE_VISIT

VISIT: dict[str, Any] = {
    **BASE_VISIT,
    "supplements": ["rutf"],
    "counselling": ["iycf"],
    "referral": "otp",
}


def _sup(s: Any) -> User:
    user = s.scalar(select(User).where(User.username == "sup"))
    assert user is not None
    return user


def _record(app: Flask, s: Any, pid: str, **over: Any) -> Encounter:
    data = {**VISIT, "occurred_on": date.today() - timedelta(days=1), **over}
    return services.record(s, get_vault(app), _sup(s), pid, _sup(s).home_site_id, data)


def test_sam_by_muac_is_classified_stored_encrypted_and_followed_up(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    enc = _record(app, s, pid)
    assert b"110" not in enc.payload_enc
    view = services.history(s, get_vault(app), _sup(s), pid)[0]
    assert view.assessment["profile"] == "CO"
    assert view.assessment["reference_version"] == enc.reference_version
    assert view.data["muac_mm"] == 110
    assert view.assessment["zscores"]["whz"] is not None
    appt = s.scalar(select(Appointment).where(Appointment.person_id == pid))
    assert appt is not None and appt.status == "due"
    assert s.scalar(select(OutboxOp).where(OutboxOp.entity_id == enc.id)).op_type == (
        "encounter.create"
    )


def test_who_profile_site_reads_muac_110_as_sam(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    from contigo.sites.models import Site

    s = unlocked
    site = s.get(Site, _sup(s).home_site_id)
    site.country = "EC"  # Ecuador uses the WHO profile (unverified)
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    _record(app, s, pid)
    view = services.history(s, get_vault(app), _sup(s), pid)[0]
    assert view.assessment["child"]["acute"] == "sam"
    assert "muac_lt_115" in view.assessment["child"]["criteria"]
    assert "acute.sam" in view.assessment["alerts"]


def test_unit_mistake_names_the_field(app: Flask, unlocked: Any, make_person: Any) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    with pytest.raises(ValidationFailed) as err:
        _record(app, s, pid, weight_kg=120.0)
    assert "weight_kg" in err.value.fields


def test_visit_before_birth_is_refused(app: Flask, unlocked: Any, make_person: Any) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=10))
    with pytest.raises(ValidationFailed) as err:
        _record(app, s, pid, occurred_on=date.today() - timedelta(days=20))
    assert "occurred_on" in err.value.fields


def test_void_keeps_the_encounter_marked_with_reason(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    enc = _record(app, s, pid)
    services.void(s, get_vault(app), _sup(s), enc.id, "wrong child")
    with pytest.raises(AlreadyVoided):
        services.void(s, get_vault(app), _sup(s), enc.id, "again")
    (view,) = services.history(s, get_vault(app), _sup(s), pid)
    assert view.voided_reason == "wrong child" and not view.active


def test_correction_supersedes(app: Flask, unlocked: Any, make_person: Any) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    first = _record(app, s, pid)
    second = _record(app, s, pid, muac_mm=128, supersedes_id=first.id)
    views = {v.id: v for v in services.history(s, get_vault(app), _sup(s), pid)}
    assert views[first.id].superseded_by == second.id
    assert views[second.id].active


def test_encounters_are_append_only_in_orm_and_database(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    enc = _record(app, s, pid)
    s.commit()
    enc.country = "PE"
    with pytest.raises(ImmutableRecord):
        s.flush()
    s.rollback()
    with pytest.raises(DatabaseError, match="append-only"):
        s.execute(text("UPDATE encounters SET country='PE'"))
    s.rollback()
    with pytest.raises(DatabaseError, match="append-only"):
        s.execute(text("DELETE FROM encounters"))


def test_muac_typed_in_cm_gets_the_unit_hint() -> None:
    from contigo.encounters.schemas import EncounterFormSchema
    from contigo.schemas import load

    with pytest.raises(ValidationFailed) as err:
        load(EncounterFormSchema(), {"occurred_on": "2026-01-05", "muac_mm": "11.5"})
    (message,) = err.value.fields["muac_mm"]
    assert "60" in message and "500" in message


def test_admission_replaces_the_loose_follow_up(
    app: Flask, unlocked: Any, make_person: Any
) -> None:
    from contigo.episodes import services as episodes

    s = unlocked
    pid = make_person(s, _sup(s), birth_date=date.today() - timedelta(days=400))
    enc = _record(app, s, pid)
    episodes.admit(
        s,
        get_vault(app),
        _sup(s),
        pid,
        _sup(s).home_site_id,
        programme="sam_otp",
        admitted_on=enc.occurred_on,
        criteria=["muac_lt_115"],
    )
    due = list(
        s.scalars(
            select(Appointment).where(Appointment.person_id == pid, Appointment.status == "due")
        )
    )
    assert len(due) == 1 and due[0].episode_id is not None
