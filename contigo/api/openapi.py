"""The OpenAPI 3.1 document of the JSON API, generated from the code that serves it.

Each view declares its operation with :func:`operation` (summary, request and response schemas,
the errors it can answer with); :func:`build_document` walks the blueprint's URL rules and turns
those declarations and their marshmallow schemas into the document. A route without a declaration
is an error, so the document cannot silently fall behind the API.

The converter from marshmallow fields to JSON Schema (2020-12, which OpenAPI 3.1 uses) is small
on purpose: it knows the field types and validators Contigo's schemas use, and refuses others
rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from http import HTTPStatus
from typing import Any, Literal, TypeVar

from flask import Flask
from marshmallow import RAISE, Schema, fields, missing, validate

from contigo.schemas import Unique
from contigo.version import __version__

F = TypeVar("F", bound=Callable[..., Any])
Mode = Literal["input", "output"]

ERROR_SCHEMA = "ErrorOut"
SECURITY_SCHEME = "bearer"
_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@dataclass(frozen=True)
class Operation:
    """What a view promises: the schema it reads, the schema it answers with, and its errors."""

    summary: str
    tag: str
    status: int = 200
    request: type[Schema] | None = None
    response: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    description: str = ""
    example: dict[str, Any] | None = None


_OPERATIONS: dict[Callable[..., Any], Operation] = {}


def operation(
    summary: str,
    *,
    tag: str,
    status: int = 200,
    request: type[Schema] | None = None,
    response: type[Schema] | None = None,
    errors: tuple[int, ...] = (),
    public: bool = False,
    example: dict[str, Any] | None = None,
) -> Callable[[F], F]:
    """Declare a view's operation for the OpenAPI document (place it under the route decorator).

    Bearer-authenticated operations answer 401 and operations with a body answer 400 and 422
    without saying so; ``errors`` lists the others. The view's docstring becomes the description.
    ``example`` is a valid request body (for readers, and as the starting point of generated
    requests in the schemathesis test).
    """

    def declare(view: F) -> F:
        _OPERATIONS[view] = Operation(
            summary=summary,
            tag=tag,
            status=status,
            request=request,
            response=response,
            errors=errors,
            public=public,
            description=(view.__doc__ or "").strip(),
            example=example,
        )
        return view

    return declare


# ── marshmallow → JSON Schema ──────────────────────────────────────────────────


class Components:
    """The ``components.schemas`` being built; each schema class is converted once per mode."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self._names: dict[tuple[type[Schema], Mode], str] = {}

    def ref(self, schema_cls: type[Schema], mode: Mode) -> dict[str, str]:
        """A ``$ref`` to ``schema_cls`` as read (input) or as written (output), converting it on
        first use."""
        key = (schema_cls, mode)
        name = self._names.get(key)
        if name is None:
            name = schema_cls.__name__.removesuffix("Schema")
            if mode == "output" and (schema_cls, "input") in self._names:
                name += "Out"
            elif (schema_cls, "output") in self._names:
                name += "In"
            self._names[key] = name
            self.schemas[name] = {}  # reserve the name first: schemas may nest recursively
            self.schemas[name] = schema_object(schema_cls, self, mode)
        return {"$ref": f"#/components/schemas/{name}"}


def schema_object(schema_cls: type[Schema], components: Components, mode: Mode) -> dict[str, Any]:
    """The JSON Schema of one marshmallow schema.

    Input schemas list the fields a client must send as ``required``; output schemas list every
    field, since responses are dumped from complete views. Unknown keys are refused on input
    (``unknown = RAISE``), and outputs never add keys, so both close ``additionalProperties``.
    """
    schema = schema_cls()
    bound = schema.load_fields if mode == "input" else schema.dump_fields
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in bound.items():
        key = field.data_key or name
        properties[key] = field_schema(field, components, mode)
        if mode == "output" or field.required:
            required.append(key)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    doc = (schema_cls.__doc__ or "").strip()
    if doc:
        out["description"] = " ".join(doc.split())
    if mode == "output" or schema.unknown == RAISE:
        out["additionalProperties"] = False
    return out


def _base_type(field: fields.Field[Any], components: Components, mode: Mode) -> dict[str, Any]:
    if isinstance(field, fields.Nested):
        nested = field.schema
        ref = components.ref(type(nested), mode)
        return {"type": "array", "items": ref} if nested.many else ref
    if isinstance(field, fields.List):
        return {"type": "array", "items": field_schema(field.inner, components, mode)}
    if isinstance(field, fields.Dict):
        out: dict[str, Any] = {"type": "object"}
        if field.value_field is not None:
            out["additionalProperties"] = field_schema(field.value_field, components, mode)
        return out
    if isinstance(field, fields.Boolean):
        return {"type": "boolean"}
    if isinstance(field, fields.Integer):
        return {"type": "integer"}
    if isinstance(field, fields.Number):
        return {"type": "number"}
    if isinstance(field, fields.Date):
        return {"type": "string", "format": "date"}
    if isinstance(field, fields.DateTime):
        return {"type": "string", "format": "date-time"}
    if isinstance(field, fields.String):
        return {"type": "string"}
    raise TypeError(f"no JSON Schema for {type(field).__name__}")


def _apply_validators(out: dict[str, Any], field: fields.Field[Any]) -> None:
    array = out.get("type") == "array"
    for check in field.validators:
        if isinstance(check, validate.ContainsOnly) and array:  # a OneOf subclass: test first
            out["items"] = {**out["items"], "enum": list(check.choices)}
        elif isinstance(check, Unique) and array:
            out["uniqueItems"] = True
        elif isinstance(check, validate.OneOf):
            out["enum"] = list(check.choices)
        elif isinstance(check, validate.Range):
            if check.min is not None:
                out["minimum" if check.min_inclusive else "exclusiveMinimum"] = check.min
            if check.max is not None:
                out["maximum" if check.max_inclusive else "exclusiveMaximum"] = check.max
        elif isinstance(check, validate.Length):
            low, high = (
                (check.equal, check.equal) if check.equal is not None else (check.min, check.max)
            )
            if low is not None:
                out["minItems" if array else "minLength"] = low
            if high is not None:
                out["maxItems" if array else "maxLength"] = high


def _default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def field_schema(field: fields.Field[Any], components: Components, mode: Mode) -> dict[str, Any]:
    """The JSON Schema of one field: its type, the constraints of its validators, whether it may
    be null, its default on input, and the description in its metadata."""
    out = _base_type(field, components, mode)
    if "$ref" not in out:
        _apply_validators(out, field)
    if field.allow_none:
        if "$ref" in out:
            out = {"anyOf": [out, {"type": "null"}]}
        else:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
    default = field.load_default
    if mode == "input" and default is not missing and not callable(default):
        out["default"] = _default(default)
    description = field.metadata.get("description")
    if description:
        out["description"] = str(description)
    return out


# ── the document ───────────────────────────────────────────────────────────────


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": _json({"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}),
    }


def _path_of(rule: str) -> str:
    """``/persons/<person_id>`` → ``/persons/{person_id}``."""
    return _RULE_ARG.sub(r"{\1}", rule)


def _operation_object(
    endpoint: str, op: Operation, arguments: list[str], components: Components
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": endpoint.rsplit(".", 1)[-1],
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        out["description"] = " ".join(op.description.split())
    if arguments:
        out["parameters"] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "maxLength": 32},
            }
            for name in arguments
        ]
    errors = set(op.errors)
    if op.request is not None:
        content = _json(components.ref(op.request, "input"))
        if op.example is not None:
            content["application/json"]["example"] = op.example
        out["requestBody"] = {"required": True, "content": content}
        errors |= {400, 422}
    if op.public:
        out["security"] = []
    else:
        errors.add(401)
    success = (
        components.ref(op.response, "output") if op.response is not None else {"type": "object"}
    )
    responses: dict[str, Any] = {
        str(op.status): {"description": HTTPStatus(op.status).phrase, "content": _json(success)}
    }
    for status in sorted(errors):
        responses[str(status)] = _error_response(status)
    out["responses"] = responses
    return out


def build_document(app: Flask, blueprint: str, error_schema: type[Schema]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route of ``blueprint`` in ``app``.

    Raises :class:`LookupError` for a route whose view declared no :func:`operation`.
    """
    components = Components()
    components.ref(error_schema, "output")
    paths: dict[str, dict[str, Any]] = {}
    tags: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith(f"{blueprint}."):
            continue
        op = _OPERATIONS.get(app.view_functions[rule.endpoint])
        if op is None:
            raise LookupError(f"{rule.endpoint} declares no OpenAPI operation")
        tags.add(op.tag)
        arguments = _RULE_ARG.findall(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(_path_of(rule.rule), {})[method.lower()] = _operation_object(
                rule.endpoint, op, arguments, components
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Contigo API",
            "version": __version__,
            "description": (
                "JSON API of Contigo. Every endpoint but the token request and this document "
                "needs `Authorization: Bearer <token>`. Errors are "
                '`{"error": {"code", "message", "fields"}}` with a 4xx status and messages in '
                "the user's language (Accept-Language before signing in). Identifiers only in "
                "URLs: searches are POST so that names never reach a URL or a log."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{SECURITY_SCHEME: []}],
        "tags": [{"name": tag} for tag in sorted(tags)],
        "paths": paths,
        "components": {
            "schemas": components.schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from POST /api/v1/auth/token.",
                }
            },
        },
    }
