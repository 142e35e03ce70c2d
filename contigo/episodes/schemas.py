"""Boundary schemas for care episodes."""

from __future__ import annotations

from marshmallow import validate

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
