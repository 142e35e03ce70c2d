"""The marshmallow base for every boundary: unknown input is refused, and every error message is a
message id that is translated into the user's language when the error is raised.

A message id may carry parameters after ``|`` (``"v.range|min=0|max=80"``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from contigo.errors import ValidationFailed
from contigo.i18n import current_language, translate
from contigo.numbers import AmbiguousNumber, localise_number, parse_decimal

_COMMON = {"required": "v.required", "null": "v.required", "validator_failed": "v.invalid"}


class Str(fields.String):
    """Text that is valid Unicode: a lone surrogate (``"\\ud800"`` is valid JSON) could be
    neither encrypted, indexed nor stored, so it is refused here, naming the field."""

    default_error_messages = {**_COMMON, "invalid": "v.text", "invalid_utf8": "v.text"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.make_error("invalid_utf8") from exc
        return text


class Int(fields.Integer):
    """A whole number: ``1.5`` is refused, not truncated to 1 (``1.0`` and ``"1"`` are fine)."""

    default_error_messages = {**_COMMON, "invalid": "v.integer", "too_large": "v.number"}

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._validated(value)


class Float(fields.Float):
    """A decimal typed with a comma or a point (:func:`~contigo.numbers.parse_decimal`).

    ``label`` is the message id of the field's name on the page: an ambiguous number
    (``1.234,5``) is refused with a message that names the field.
    """

    default_error_messages = {
        **_COMMON,
        "invalid": "v.number",
        "too_large": "v.number",
        "special": "v.number",
    }

    def __init__(self, *, label: str | None = None, **kwargs: Any) -> None:
        self.label = label
        super().__init__(**kwargs)

    def _validated(self, value: Any) -> float:
        if isinstance(value, str):
            try:
                value = parse_decimal(value)
            except AmbiguousNumber as exc:
                name = f"@{self.label}" if self.label else "?"
                raise ValidationError(f"clin1.v.ambiguous|field={name}") from exc
            except ValueError as exc:
                raise self.make_error("invalid", input=value) from exc
        return super()._validated(value)


class Date(fields.Date):
    default_error_messages = {**_COMMON, "invalid": "v.date", "format": "v.date"}


class Bool(fields.Boolean):
    default_error_messages = {**_COMMON, "invalid": "v.boolean"}


class StrList(fields.List[str]):
    default_error_messages = {**_COMMON, "invalid": "v.list"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(Str(), **kwargs)


class Unique(validate.Validator):
    """A list without repeated items (a checkbox group ticks each option once)."""

    error = "apierr.v.unique"

    def __call__(self, value: Any) -> Any:
        if len(value) != len(set(value)):
            raise ValidationError(self.error)
        return value


def max_items(count: int) -> validate.Length:
    """A cap on a list's length, whose message names it in the user's language."""
    return validate.Length(max=count, error=f"apierr.v.max_items|max={count}")


def id_text() -> validate.Length:
    """The length of a row id (a UUID as 32 hex digits) sent as a reference."""
    return validate.Length(min=1, max=32, error="v.length|min=1|max=32")


def one_of(choices: tuple[str, ...]) -> validate.OneOf:
    """A choice validator whose message is translatable."""
    return validate.OneOf(choices, error="v.choice")


def in_range(low: float | None = None, high: float | None = None) -> validate.Range:
    """A range validator whose message names the bounds in the user's language."""
    if low is not None and high is not None:
        msg = f"v.range|min={low:g}|max={high:g}"
    elif low is not None:
        msg = f"v.min|min={low:g}"
    else:
        msg = f"v.max|max={high:g}"
    return validate.Range(min=low, max=high, error=msg)


class ContigoSchema(Schema):
    """Base schema: input from outside with unknown keys is an error, not silently dropped."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "v.unknown", "type": "v.invalid"}


def translate_message(message: str, lang: str | None = None) -> str:
    """Translate ``id|k=v|…``; text that is not an id passes through.

    A parameter ``@id`` is itself translated (a field's name); a decimal parameter is written
    with the language's decimal mark ("entre 0,5 y 250").
    """
    language = lang or current_language()
    key, *pairs = message.split("|")
    params = {}
    for name, value in (p.split("=", 1) for p in pairs if "=" in p):
        if value.startswith("@"):
            params[name] = translate(value[1:], language)
        else:
            params[name] = localise_number(value, language)
    return translate(key, language, **params)


def translate_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested error mapping into ``{field: [translated messages]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for name, value in messages.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            for field, msgs in translate_errors(value, key).items():
                out.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, str):
                out.setdefault(prefix or "_schema", []).append(translate_message(item))
            else:
                for field, msgs in translate_errors(item, prefix).items():
                    out.setdefault(field, []).extend(msgs)
    elif isinstance(messages, str):
        out.setdefault(prefix or "_schema", []).append(translate_message(messages))
    return out


def load(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate ``data``; on failure raise :class:`ValidationFailed` naming every wrong field."""
    try:
        result: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        raise ValidationFailed(fields=translate_errors(exc.messages)) from exc
    return result
