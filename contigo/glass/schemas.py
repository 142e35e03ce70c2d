"""Boundary schemas of a break-the-glass lookup: the central page (and the laptop's page), and
the signed ``POST /sync/v1/visitor`` body a laptop sends."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, validate, validates

from contigo.persons import contigo_id
from contigo.schemas import ContigoSchema, Date, Str

REASON_LENGTH = validate.Length(min=10, max=500, error="v.length|min=10|max=500")


class GlassLookupFormSchema(ContigoSchema):
    """Exact Contigo ID, date of birth and a reason, all required."""

    contigo_id = Str(required=True)
    birth_date = Date(required=True)
    reason = Str(required=True, validate=REASON_LENGTH)

    @validates("contigo_id")
    def _valid_id(self, value: str, **_kw: Any) -> None:
        # The check symbol is public knowledge: refusing a mistyped ID reveals no person.
        if contigo_id.normalise(value) is None:
            raise ValidationError("glass.v.contigo_id")


class VisitorRequestSchema(GlassLookupFormSchema):
    """The laptop's lookup, with the id of the laptop user who asked (users are the laptop's)."""

    user_id = Str(required=True, validate=validate.Length(min=1, max=32, error="v.invalid"))
