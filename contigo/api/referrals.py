"""Referrals in the JSON API (``/api/v1/referrals``, issue 14): the receiving site's inbox, a
person's referral trail, one referral, writing a referral and recording what happened to it.

The routes are added to the API's blueprint (:data:`contigo.api.endpoint.bp`) when this module is
imported, which the app factory does before it registers the blueprint; each declares its
OpenAPI operation like the rest of the API. Role, scope and audit are the referral services'
(:mod:`contigo.referrals.services`).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from marshmallow import fields, validate

from contigo.api.endpoint import body, bp, context, reply
from contigo.api.openapi import operation
from contigo.api.schemas import JsonBodySchema
from contigo.auth.current import current_site_id
from contigo.auth.scope import CLINICAL_WRITERS
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.referrals import reading
from contigo.referrals import services as referrals
from contigo.referrals.models import EVENT_STATES, REASONS, STATES, URGENCIES
from contigo.schemas import ContigoSchema, Date, Str, id_text, one_of

NOTES = validate.Length(max=2000, error="v.length|min=0|max=2000")


class ReferralCreateSchema(JsonBodySchema):
    """A referral: to a Contigo site (``to_site_id``) or an outside facility of the directory
    (``to_facility_id``), exactly one; the reason code, the urgency and free-text notes. The
    sending site is the user's current site; the person's follow-up schedule travels with it."""

    to_site_id = Str(load_default=None, allow_none=True, validate=id_text())
    to_facility_id = Str(load_default=None, allow_none=True, validate=id_text())
    reason = Str(required=True, validate=one_of(REASONS))
    urgency = Str(required=True, validate=one_of(URGENCIES))
    notes = Str(load_default="", validate=NOTES)
    encounter_id = Str(load_default=None, allow_none=True, validate=id_text())


class ReferralEventRequestSchema(JsonBodySchema):
    """What happened to a referral; a ``closed`` event needs the feedback in ``note``."""

    state = Str(required=True, validate=one_of(EVENT_STATES))
    note = Str(load_default="", validate=NOTES)


class ReferralEventOutSchema(ContigoSchema):
    """One event of a referral: what, when, where and by whom."""

    id = Str()
    state = Str(validate=one_of(EVENT_STATES))
    occurred_on = Date()
    site_id = Str()
    site_country = Str()
    user_id = Str()
    note = Str()
    encounter_id = Str(allow_none=True)


class ReferralOutSchema(ContigoSchema):
    """A referral with its derived state and its events (the sent state is the referral itself)."""

    id = Str()
    code = Str(metadata={"description": "As printed on the slip: R-XXXX-XXXX-C."})
    person_id = Str()
    from_site_id = Str()
    from_country = Str()
    to_site_id = Str(allow_none=True)
    to_facility_id = Str(allow_none=True)
    to_name = Str()
    to_country = Str()
    reason = Str(validate=one_of(REASONS))
    urgency = Str(validate=one_of(URGENCIES))
    sent_on = Date()
    state = Str(validate=one_of(STATES))
    arrived = fields.Boolean()
    contested = fields.Boolean(
        metadata={"description": "The two ends recorded contradicting events; see events."}
    )
    notes = Str()
    schedule = fields.List(fields.Dict(keys=fields.String()))
    events = fields.List(fields.Nested(ReferralEventOutSchema))


class ReferralListOutSchema(ContigoSchema):
    """Referrals, most urgent or newest first."""

    referrals = fields.List(fields.Nested(ReferralOutSchema))


def _out(view: reading.ReferralView) -> dict[str, Any]:
    r = view.referral
    return {
        "id": r.id,
        "code": view.code,
        "person_id": r.person_id,
        "from_site_id": r.from_site_id,
        "from_country": view.from_site.country,
        "to_site_id": r.to_site_id,
        "to_facility_id": r.to_facility_id,
        "to_name": view.to_name,
        "to_country": view.to_country,
        "reason": r.reason,
        "urgency": r.urgency,
        "sent_on": r.sent_on,
        "state": view.derived.state,
        "arrived": view.derived.arrived,
        "contested": view.derived.contested,
        "notes": view.notes,
        "schedule": view.schedule,
        "events": [
            {
                "id": e.event.id,
                "state": e.event.state,
                "occurred_on": e.event.occurred_on,
                "site_id": e.event.site_id,
                "site_country": e.site_country,
                "user_id": e.event.user_id,
                "note": e.note,
                "encounter_id": e.event.encounter_id,
            }
            for e in view.events
        ],
    }


@bp.get("/referrals")
@operation("Referrals waiting at the user's sites", tag="referrals", response=ReferralListOutSchema)
def referral_inbox() -> Response:
    """Referrals to the user's sites that still expect something (the person's arrival,
    attendance or feedback), most urgent first. Audited as a view of the inbox."""
    s, v, user = context(CLINICAL_WRITERS)
    rows = reading.inbox(s, v, user)
    return reply(ReferralListOutSchema(), {"referrals": [_out(r) for r in rows]})


@bp.get("/referrals/<referral_id>")
@operation("One referral", tag="referrals", response=ReferralOutSchema, errors=(403, 404))
def get_referral(referral_id: str) -> Response:
    """Checked against the user's scope for the person; audited."""
    s, v, user = context()
    return reply(ReferralOutSchema(), _out(reading.get(s, v, user, referral_id)))


@bp.post("/referrals/<referral_id>/events")
@operation(
    "Record what happened to a referral",
    tag="referrals",
    status=201,
    request=ReferralEventRequestSchema,
    response=ReferralOutSchema,
    errors=(403, 404),
    example={"state": "received", "note": ""},
)
def record_referral_event(referral_id: str) -> Response:
    """At the user's current site: the receiving site marks received, attended or declined;
    the sending site cancels; either end closes with feedback or marks not arrived. A change
    the referral's state does not lead to answers 422 on ``state``."""
    s, v, user = context(CLINICAL_WRITERS)
    data = body(ReferralEventRequestSchema())
    referrals.record_event(
        s, v, user, referral_id, data["state"], site_id=current_site_id(), note=data["note"]
    )
    return reply(ReferralOutSchema(), _out(reading.get(s, v, user, referral_id)), 201)


@bp.get("/persons/<person_id>/referrals")
@operation(
    "A person's referral trail",
    tag="referrals",
    response=ReferralListOutSchema,
    errors=(403, 404),
)
def person_referrals(person_id: str) -> Response:
    """Every referral of the person, newest first, from every site and country."""
    s, v, user = context()
    rows = reading.trail(s, v, user, person_id)
    return reply(ReferralListOutSchema(), {"referrals": [_out(r) for r in rows]})


@bp.post("/persons/<person_id>/referrals")
@operation(
    "Refer a person",
    tag="referrals",
    status=201,
    request=ReferralCreateSchema,
    response=ReferralOutSchema,
    errors=(403, 404),
    example={
        "to_site_id": "0123456789abcdef0123456789abcdef",
        "reason": "sam",
        "urgency": "priority",
        "notes": "Family moving on to the next town",
    },
)
def create_referral(person_id: str) -> Response:
    """From the user's current site to a Contigo site or an outside facility (exactly one);
    recorded as a synced op and audited. The receiving Contigo site gets the person's whole
    history on its next sync."""
    s, v, user = context(CLINICAL_WRITERS)
    data = body(ReferralCreateSchema())
    if bool(data["to_site_id"]) == bool(data["to_facility_id"]):
        raise ValidationFailed(fields={"to_site_id": [translate("referrals.v.one")]})
    target = (
        f"site:{data['to_site_id']}" if data["to_site_id"] else f"facility:{data['to_facility_id']}"
    )
    form = {
        "to": target,
        "reason": data["reason"],
        "urgency": data["urgency"],
        "notes": data["notes"],
        "encounter_id": data["encounter_id"] or "",
    }
    try:
        row = referrals.create(s, v, user, person_id, current_site_id(), form)
    except ValidationFailed as exc:
        if "to" in exc.fields:
            exc.fields["to_site_id"] = exc.fields.pop("to")
        raise
    return reply(ReferralOutSchema(), _out(reading.get(s, v, user, row.id)), 201)
