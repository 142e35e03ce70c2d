"""Boundary schemas for persons: the registration form/API input and the API output."""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from contigo.persons.models import DOB_PRECISION, PERSON_KINDS, POPULATION_TYPES
from contigo.schemas import ContigoSchema, Date, Int, Str, id_text, in_range, max_items, one_of

NATIONALITIES = ("VE", "CO", "EC", "PE", "PA", "BR", "CL", "AR", "BO", "HT", "CU", "XX")
DOCUMENT_TYPES = ("passport", "national_id", "birth_certificate", "ppt", "refugee_id", "other")
SEXES = ("F", "M")
NAME_LENGTH = validate.Length(min=1, max=80, error="v.length|min=1|max=80")
PHONE_LENGTH = validate.Length(max=30, error="v.length|min=0|max=30")
ADDRESS_LENGTH = validate.Length(max=200, error="v.length|min=0|max=200")
SEARCH_LENGTH = validate.Length(max=200, error="v.length|min=0|max=200")
#: Identity documents one person may hold (passports, ids and permits of several countries).
MAX_DOCUMENTS = 10


class DocumentSchema(ContigoSchema):
    """An identity document from any country."""

    country = Str(required=True, validate=one_of(NATIONALITIES))
    type = Str(required=True, validate=one_of(DOCUMENT_TYPES))
    number = Str(
        required=True, validate=validate.Length(min=2, max=40, error="v.length|min=2|max=40")
    )


class PersonFormSchema(ContigoSchema):
    """What a health worker types to register a child or a woman."""

    kind = Str(required=True, validate=one_of(PERSON_KINDS))
    given_names = Str(required=True, validate=NAME_LENGTH)
    family_names = Str(required=True, validate=NAME_LENGTH)
    birth_date = Date(required=True)
    birth_date_precision = Str(load_default="exact", validate=one_of(DOB_PRECISION))
    sex = Str(required=True, validate=one_of(SEXES))
    nationality = Str(load_default=None, allow_none=True, validate=one_of(NATIONALITIES))
    population_type = Str(load_default="in_transit", validate=one_of(POPULATION_TYPES))
    mother_id = Str(load_default=None, allow_none=True, validate=id_text())
    phone = Str(load_default=None, allow_none=True, validate=PHONE_LENGTH)
    address = Str(load_default=None, allow_none=True, validate=ADDRESS_LENGTH)
    documents = fields.List(
        fields.Nested(DocumentSchema),
        load_default=list,
        validate=max_items(MAX_DOCUMENTS),
        error_messages={"invalid": "v.list", "null": "v.list"},
    )

    @validates_schema
    def _plausible(self, data: dict[str, Any], **_kw: Any) -> None:
        born: date | None = data.get("birth_date")
        if born is None:
            return
        today = date.today()  # noqa: DTZ011 - the local calendar date is meant
        if born > today:
            raise ValidationError("v.future_date", "birth_date")
        age_days = (today - born).days
        if data.get("kind") == "child" and age_days / 30.4375 >= 60:
            raise ValidationError("v.child_too_old", "birth_date")
        if data.get("kind") == "woman":
            if data.get("sex") != "F":
                raise ValidationError("v.woman_sex", "sex")
            if not 3650 <= age_days <= 65 * 365:
                raise ValidationError("v.woman_age", "birth_date")


class PersonEditSchema(ContigoSchema):
    """Corrections to a registered person's details. Kind, household link and documents are
    not edited here; each field changed becomes one synced, per-field write."""

    given_names = Str(required=True, validate=NAME_LENGTH)
    family_names = Str(required=True, validate=NAME_LENGTH)
    birth_date = Date(required=True)
    birth_date_precision = Str(load_default="exact", validate=one_of(DOB_PRECISION))
    sex = Str(required=True, validate=one_of(SEXES))
    nationality = Str(load_default=None, allow_none=True, validate=one_of(NATIONALITIES))
    population_type = Str(load_default="in_transit", validate=one_of(POPULATION_TYPES))
    phone = Str(load_default=None, allow_none=True, validate=PHONE_LENGTH)
    address = Str(load_default=None, allow_none=True, validate=ADDRESS_LENGTH)

    @validates_schema
    def _not_future(self, data: dict[str, Any], **_kw: Any) -> None:
        today = date.today()  # noqa: DTZ011 - the local calendar date is meant
        if data.get("birth_date") and data["birth_date"] > today:
            raise ValidationError("v.future_date", "birth_date")


class PersonOutSchema(ContigoSchema):
    """A person as the API returns it (to an authorised user only). A value whose stored
    ciphertext failed its integrity check is null and named in ``unreadable``."""

    id = Str()
    contigo_id = Str()
    kind = Str()
    given_names = Str(allow_none=True)
    family_names = Str(allow_none=True)
    birth_date = Date(allow_none=True)
    birth_date_precision = Str()
    sex = Str(allow_none=True)
    nationality = Str(allow_none=True)
    population_type = Str()
    mother_id = Str(allow_none=True)
    owning_site_id = Str()
    phone = Str(allow_none=True)
    address = Str(allow_none=True)
    documents = fields.List(fields.Dict(), allow_none=True)
    lifecycle = Str()
    unreadable = fields.List(
        Str(),
        metadata={"description": "Fields that cannot be read (integrity error), shown as null."},
    )


class PersonSearchSchema(ContigoSchema):
    """Search parameters."""

    q = Str(load_default="", validate=SEARCH_LENGTH)
    birth_date = Date(load_default=None, allow_none=True)
    limit = Int(load_default=20, validate=in_range(1, 100))
