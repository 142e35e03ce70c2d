"""The OpenAPI document: its structure covers every route, and the API's real responses (successes
and errors) conform to what it documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from marshmallow import fields, validate
from werkzeug.test import TestResponse

from contigo.api.openapi import Components, build_document, field_schema, operation
from contigo.api.schemas import ErrorOutSchema
from contigo.errors import ErrorCode
from contigo.schemas import ContigoSchema, Int, Str, StrList
from tests.conftest import PASSWORD

DOC = "/api/v1/openapi.json"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def doc(client: FlaskClient) -> dict[str, Any]:
    resp = client.get(DOC)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    return dict(resp.json)


def refs(node: Any) -> Iterator[str]:
    """Every ``$ref`` in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def api_rules(app: Flask) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            out |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    return out


def test_every_route_is_documented_and_nothing_else(app: Flask, doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    documented = {(p, m) for p, item in doc["paths"].items() for m in item if m in METHODS}
    assert documented == api_rules(app)
    assert len(documented) >= 8


def test_every_operation_has_responses_and_a_unique_id(doc: dict[str, Any]) -> None:
    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op["summary"]
            responses = op["responses"]
            success = [s for s in responses if s.startswith("2")]
            assert len(success) == 1, (path, method)
            for status, response in responses.items():
                assert response["description"]
                assert "application/json" in response["content"], (path, method, status)
                if not status.startswith("2"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorOut"}
            placeholders = set(re.findall(r"{([^}]+)}", path))
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert placeholders == declared, (path, method)
            assert all(p["required"] for p in op.get("parameters", []))
    assert len(ids) == len(set(ids))


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    found = list(refs(doc))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[-1] in schemas, ref
    for name, schema in schemas.items():
        assert schema["type"] == "object", name
        assert set(schema.get("required", [])) <= set(schema["properties"]), name


def test_security_is_bearer_except_for_the_token_and_the_document(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert doc["security"] == [{"bearer": []}]
    public = set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op.get("security") == []:
                public.add((path, method))
            else:
                assert "401" in op["responses"], (path, method)
    assert public == {("/api/v1/auth/token", "post"), ("/api/v1/openapi.json", "get")}


def test_request_bodies_refuse_unknown_keys_and_name_required_fields(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    bodies = {
        (path, method): op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if "requestBody" in op
    }
    assert len(bodies) == 7  # with the two of referrals (issue 14)
    for ref in bodies.values():
        schema = schemas[ref.rsplit("/", 1)[-1]]
        assert schema["additionalProperties"] is False
    person = schemas["PersonCreate"]
    assert set(person["required"]) == {"kind", "given_names", "family_names", "birth_date", "sex"}
    assert person["properties"]["kind"]["enum"] == ["child", "woman"]
    assert person["properties"]["documents"]["items"] == {"$ref": "#/components/schemas/Document"}
    visit = schemas["EncounterCreate"]["properties"]
    assert visit["gestational_weeks"] == {
        "type": ["integer", "null"],
        "minimum": 4,
        "maximum": 44,
        "default": None,
    }
    assert visit["weight_kg"]["type"] == ["number", "null"]
    assert visit["supplements"]["items"]["enum"][0] == "rutf"
    assert visit["occurred_on"] == {"type": "string", "format": "date"}


def test_every_error_code_is_documented(doc: dict[str, Any]) -> None:
    detail = doc["components"]["schemas"]["ErrorDetailOut"]
    assert set(detail["properties"]["code"]["enum"]) == {c.value for c in ErrorCode}
    error = doc["components"]["schemas"]["ErrorOut"]
    assert error["required"] == ["error"]
    assert detail["properties"]["fields"]["additionalProperties"]["items"] == {"type": "string"}


# ── the API's answers against its own document ────────────────────────────────


def check(schema: dict[str, Any], value: Any, doc: dict[str, Any], where: str = "$") -> None:
    """Validate ``value`` against the JSON Schema subset the document uses."""
    if "$ref" in schema:
        check(doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]], value, doc, where)
        return
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                check(option, value, doc, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: matches no option: {errors}")
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        python = {
            "object": dict,
            "array": list,
            "string": str,
            "boolean": bool,
            "null": type(None),
            "integer": int,
            "number": (int, float),
        }
        ok = any(
            isinstance(value, python[t])
            and not (t in ("integer", "number") and isinstance(value, bool))
            for t in allowed
        )
        assert ok, f"{where}: {value!r} is not {allowed}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in enum"
    if isinstance(value, str) and schema.get("format") == "date":
        date.fromisoformat(value)
    if isinstance(value, str) and schema.get("format") == "date-time":
        assert datetime.fromisoformat(value).tzinfo is not None, f"{where}: naive date-time"
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            assert name in value, f"{where}: missing {name}"
        for name, item in value.items():
            if name in props:
                check(props[name], item, doc, f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                raise AssertionError(f"{where}: undocumented key {name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                check(schema["additionalProperties"], item, doc, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(schema["items"], item, doc, f"{where}[{i}]")


class Conformance:
    """Sends requests and checks each answer against the operation's documented response."""

    def __init__(self, client: FlaskClient, doc: dict[str, Any]) -> None:
        self.client = client
        self.doc = doc
        self.seen: set[tuple[str, str, str]] = set()

    def call(self, method: str, path: str, template: str, **kw: Any) -> TestResponse:
        resp = self.client.open(path, method=method.upper(), **kw)
        op = self.doc["paths"][template][method]
        status = str(resp.status_code)
        assert status in op["responses"], f"{method} {template}: undocumented {status}"
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        check(schema, resp.json, self.doc)
        self.seen.add((template, method, status))
        return resp


def test_real_answers_conform_to_the_document(client: FlaskClient, doc: dict[str, Any]) -> None:
    api = Conformance(client, doc)
    token_path = "/api/v1/auth/token"
    api.call("post", token_path, token_path, json={"username": "sup", "password": "wrong!"})
    api.call("post", token_path, token_path, data="x", content_type="text/plain")
    api.call("post", token_path, token_path, json={"username": "sup"})
    tok = api.call("post", token_path, token_path, json={"username": "sup", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {tok.json['token']}"}

    persons = "/api/v1/persons"
    child = {
        "kind": "child",
        "given_names": "Ana",
        "family_names": "Pérez",
        "birth_date": "2024-05-01",
        "sex": "F",
        "documents": [{"country": "VE", "type": "passport", "number": "P123"}],
    }
    api.call("post", persons, persons, json=child)  # 401
    api.call("post", persons, persons, json={**child, "sex": "X"}, headers=auth)  # 422
    person = api.call("post", persons, persons, json=child, headers=auth).json
    api.call("post", persons, persons, json={**child, "site_id": "0" * 32}, headers=auth)  # 403
    search = f"{persons}/search"
    found = api.call("post", search, search, json={"q": "ana"}, headers=auth)
    assert len(found.json["results"]) == 1

    one = f"{persons}/{{person_id}}"
    api.call("get", f"{persons}/{person['id']}", one, headers=auth)
    api.call("get", f"{persons}/{'0' * 32}", one, headers=auth)  # 404

    encs = f"{persons}/{{person_id}}/encounters"
    url = f"{persons}/{person['id']}/encounters"
    visit = {"occurred_on": "2025-06-01", "weight_kg": 8.1, "lenhei_cm": 72, "muac_mm": 131}
    enc = api.call("post", url, encs, json=visit, headers=auth).json
    api.call("post", url, encs, json={"occurred_on": "2025-06-01", "muac_mm": 1}, headers=auth)
    api.call("get", url, encs, headers=auth)

    void = "/api/v1/encounters/{encounter_id}/void"
    api.call(
        "post", f"/api/v1/encounters/{enc['id']}/void", void, json={"reason": "error"}, headers=auth
    )
    api.call(
        "post", f"/api/v1/encounters/{enc['id']}/void", void, json={"reason": "error"}, headers=auth
    )
    api.call(
        "post", f"/api/v1/encounters/{'0' * 32}/void", void, json={"reason": "error"}, headers=auth
    )
    listed = api.call("get", url, encs, headers=auth).json
    assert listed["encounters"][0]["voided"] is True

    statuses = {status for _t, _m, status in api.seen}
    assert statuses >= {"200", "201", "400", "401", "403", "404", "409", "422"}


# ── the generator itself ──────────────────────────────────────────────────────


def test_a_route_without_a_declared_operation_is_an_error(tmp_path: Any) -> None:
    app = Flask("t", instance_path=str(tmp_path))
    bp = Blueprint("x", "t")

    @bp.get("/declared")
    @operation("Declared", tag="t", public=True)
    def declared() -> str:
        return ""

    @bp.get("/forgotten")
    def forgotten() -> str:
        return ""

    app.register_blueprint(bp)
    with pytest.raises(LookupError, match=r"x\.forgotten"):
        build_document(app, "x", ErrorOutSchema)


class _Sample(ContigoSchema):
    """A sample."""

    colour = Str(allow_none=True, load_default=None, validate=validate.OneOf(["red", "blue"]))
    tags = StrList(load_default=list, validate=validate.ContainsOnly(["a", "b"]))
    count = Int(required=True, validate=validate.Range(min=0, max=9, min_inclusive=False))
    born = fields.Date(load_default=date(2020, 1, 2))
    child = fields.Nested(lambda: _Sample(), allow_none=True)


def test_the_converter_maps_fields_and_validators() -> None:
    components = Components()
    assert components.ref(_Sample, "input") == {"$ref": "#/components/schemas/_Sample"}
    props = components.schemas["_Sample"]["properties"]
    assert props["colour"] == {
        "type": ["string", "null"],
        "enum": ["red", "blue", None],
        "default": None,
    }
    assert props["tags"] == {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}
    assert props["count"] == {"type": "integer", "exclusiveMinimum": 0, "maximum": 9}
    assert props["born"] == {"type": "string", "format": "date", "default": "2020-01-02"}
    assert props["child"] == {"anyOf": [{"$ref": "#/components/schemas/_Sample"}, {"type": "null"}]}
    assert components.schemas["_Sample"]["required"] == ["count"]
    components.ref(_Sample, "output")
    assert components.schemas["_SampleOut"]["required"] == list(props)


def test_the_converter_refuses_fields_it_does_not_know() -> None:
    with pytest.raises(TypeError, match="Raw"):
        field_schema(fields.Raw(), Components(), "output")
