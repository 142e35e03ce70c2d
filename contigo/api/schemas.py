"""Boundary schemas of the JSON API: what clients send (``…RequestSchema``, and the domain form
schemas extended with the API's few extra keys) and what they receive (``…OutSchema``).

Inputs refuse unknown keys (:class:`~contigo.schemas.ContigoSchema`). Outputs are dumped from the
services' decrypted views, never from ORM rows, so a new column can never leak by accident.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from contigo.encounters.schemas import EncounterFormSchema
from contigo.errors import ErrorCode
from contigo.persons.schemas import PersonFormSchema, PersonOutSchema, PersonSearchSchema
from contigo.schemas import Bool, ContigoSchema, Date, Str

SITE_ID = validate.Length(min=1, max=32, error="v.length|min=1|max=32")


class JsonBodySchema(ContigoSchema):
    """A JSON body: values have the JSON type the document declares.

    The form schemas it extends also read pages, where every value arrives as text ("6.9", "1",
    "on"); through the API a number must be a number and a yes/no a boolean, as the OpenAPI
    document says, so ``"danger_signs": 0`` or ``"oedema_grade": "2"`` is refused, not guessed.
    """

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _json_types(self, data: dict[str, Any], original: Any, **_kw: Any) -> None:
        if not isinstance(original, dict):
            return
        wrong: dict[str, list[str]] = {}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            value = original.get(key)
            if name not in data or value is None:  # absent, null, or already refused by the field
                continue
            if isinstance(field, fields.Boolean) and not isinstance(value, bool):
                wrong[key] = ["v.boolean"]
            elif isinstance(field, fields.Number) and isinstance(value, str | bool):
                wrong[key] = ["v.integer" if isinstance(field, fields.Integer) else "v.number"]
        if wrong:
            raise ValidationError(wrong)


class TokenRequestSchema(JsonBodySchema):
    """Credentials exchanged for a bearer token."""

    username = Str(
        required=True, validate=validate.Length(min=1, max=64, error="v.length|min=1|max=64")
    )
    password = Str(
        required=True, validate=validate.Length(min=1, max=1024, error="v.length|min=1|max=1024")
    )


class PersonCreateSchema(PersonFormSchema, JsonBodySchema):
    """A registration through the API: the registration form, and optionally which of the user's
    sites will own the person (default: the user's home site)."""

    site_id = Str(load_default=None, allow_none=True, validate=SITE_ID)


class PersonSearchRequestSchema(PersonSearchSchema, JsonBodySchema):
    """A search: by Contigo ID, document number or name (``q``), and/or date of birth.

    Sent in a POST body so that names never appear in a URL or an access log.
    """

    q = Str(load_default="", validate=validate.Length(max=200, error="v.length|min=0|max=200"))


class EncounterCreateSchema(EncounterFormSchema, JsonBodySchema):
    """A visit recorded through the API: the visit form, and optionally which of the user's sites
    it happened at (default: the user's home site; the site's country chooses the profile)."""

    site_id = Str(load_default=None, allow_none=True, validate=SITE_ID)


class EncounterVoidRequestSchema(JsonBodySchema):
    """Why an encounter is voided (required: a void without a reason is refused)."""

    reason = Str(
        required=True, validate=validate.Length(min=3, max=500, error="v.length|min=3|max=500")
    )


# ── outputs ────────────────────────────────────────────────────────────────────


class TokenOutSchema(ContigoSchema):
    """A bearer token and when it stops working (aware UTC, ISO 8601)."""

    token = Str(metadata={"description": "Send as `Authorization: Bearer <token>`."})
    expires_at = fields.DateTime(format="iso")


class PersonSummaryOutSchema(ContigoSchema):
    """A search result: enough to tell persons apart, no contact details or documents. A value
    that failed its integrity check is null."""

    id = Str()
    contigo_id = Str()
    kind = Str()
    given_names = Str(allow_none=True)
    family_names = Str(allow_none=True)
    birth_date = Date(allow_none=True)
    birth_date_precision = Str()
    sex = Str(allow_none=True)
    owning_site_id = Str()


class PersonSearchOutSchema(ContigoSchema):
    """Search results within the user's scope, best match first."""

    results = fields.List(fields.Nested(PersonSummaryOutSchema))


class EncounterOutSchema(ContigoSchema):
    """An encounter with what it meant when recorded; voided and superseded ones are marked,
    never hidden."""

    id = Str()
    person_id = Str()
    site_id = Str()
    country = Str(metadata={"description": "Country whose classification profile applied."})
    occurred_on = Date()
    kind = Str()
    reference_version = Str(metadata={"description": "Version of the WHO reference tables."})
    data = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "The measurements as entered (the fields of EncounterCreate; dates ISO)."
        },
    )
    assessment = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "Z-scores, flags, classification and alerts under the site's profile."
        },
    )
    supersedes_id = Str(allow_none=True)
    superseded_by = Str(allow_none=True)
    voided = Bool()
    voided_reason = Str(allow_none=True)
    active = Bool(metadata={"description": "Neither voided, superseded nor unreadable."})
    in_review = Bool(
        metadata={
            "description": "A concurrent correction (or a correction racing a void) of this "
            "visit awaits a supervisor's decision; the active one is provisional."
        }
    )
    unreadable = Bool(
        metadata={
            "description": "The stored visit failed its integrity check: data and assessment "
            "are empty."
        }
    )


class EncounterListOutSchema(ContigoSchema):
    """A person's encounters from every site and country, oldest first."""

    encounters = fields.List(fields.Nested(EncounterOutSchema))


class ErrorDetailOutSchema(ContigoSchema):
    """What went wrong: a stable code, a message in the user's language, and the wrong fields."""

    code = Str(validate=validate.OneOf([c.value for c in ErrorCode]))
    message = Str()
    field_errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        data_key="fields",
        metadata={"description": "Each wrong input field (dotted path) with its messages."},
    )


class ErrorOutSchema(ContigoSchema):
    """Every 4xx response of the API has this body."""

    error = fields.Nested(ErrorDetailOutSchema)


__all__ = [
    "EncounterCreateSchema",
    "EncounterListOutSchema",
    "EncounterOutSchema",
    "EncounterVoidRequestSchema",
    "ErrorOutSchema",
    "PersonCreateSchema",
    "PersonOutSchema",
    "PersonSearchOutSchema",
    "PersonSearchRequestSchema",
    "TokenOutSchema",
    "TokenRequestSchema",
]
