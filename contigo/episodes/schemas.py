"""Boundary schemas for care episodes."""

from __future__ import annotations

from marshmallow import validate

from contigo.episodes.models import FOLLOW_UP_OUTCOMES
from contigo.schemas import ContigoSchema, Date, Str, StrList, one_of

PROGRAMMES = ("sam_otp", "sam_inpatient", "mam_tsfp", "plw_supplementation")
RECORDED_EXITS = (
    "cured",
    "died",
    "transferred",
    "referred_inpatient",
    "defaulted",
    "non_responder",
)


class EpisodeAdmitSchema(ContigoSchema):
    """Admission to a programme; the criteria that fired come from the last assessment."""

    programme = Str(required=True, validate=one_of(PROGRAMMES))
    admitted_on = Date(required=True)
    criteria = StrList(load_default=list, validate=validate.Length(max=20))


class EpisodeExitSchema(ContigoSchema):
    """Closing an episode with its outcome."""

    outcome = Str(required=True, validate=one_of(RECORDED_EXITS))
    exit_on = Date(required=True)
    #: A supervisor's reason for an exit the protocol does not support (a cure before the
    #: criteria are met); ignored when the visit log supports the exit.
    override_reason = Str(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=3, max=500, error="v.length|min=3|max=500"),
    )


class FollowUpOutcomeSchema(ContigoSchema):
    """What following up an alert or a missed visit found, and why (both required)."""

    outcome = Str(required=True, validate=one_of(FOLLOW_UP_OUTCOMES))
    reason = Str(
        required=True, validate=validate.Length(min=3, max=500, error="v.length|min=3|max=500")
    )
