"""The framed payload of a change (sync.server.payload): a pull page lifts its body and fields
out as written, and only when they cannot be read two ways."""

from __future__ import annotations

import json

from sync import fastjson
from sync.merge import canonical
from sync.server import payload

TRICKY = {
    "notes": 'ends like a frame ,"n":12} and ,"fields":{}}',
    "fields": {"n": 3, "fields": {}},
    "body": [1, 2.5, None, "ñandú"],
}


def _texts(body: object, fields: object) -> tuple[bytes, bytes]:
    return fastjson.dumps(body, sort_keys=True), fastjson.dumps(fields)


def test_packed_payload_is_json_with_body_and_fields() -> None:
    body, fields = _texts(TRICKY, {"phone": {"value": TRICKY, "version_seq": 7}})
    parsed = json.loads(payload.pack(body, fields))
    assert parsed["body"] == TRICKY
    assert parsed["fields"] == {"phone": {"value": TRICKY, "version_seq": 7}}


def test_split_returns_the_texts_written_whatever_they_hold() -> None:
    for body_value, fields_value in [
        (TRICKY, {}),
        (TRICKY, {"fields": {"value": TRICKY, "version_seq": 1, "last_op_id": "o-1"}}),
        (None, {"n": {"value": 12, "version_seq": 2, "last_op_id": "o-2"}}),
        ("x", {}),
        (12, {"a": {"value": '","n":1}', "version_seq": 3, "last_op_id": "o-3"}}),
    ]:
        body, fields = _texts(body_value, fields_value)
        assert payload.split(payload.pack(body, fields)) == (body, fields)


def test_older_payloads_split_only_with_empty_fields() -> None:
    body = fastjson.dumps(TRICKY, sort_keys=True)
    older = b'{"body":' + body + b',"fields":{}}'
    assert payload.split(older) == (body, b"{}")
    written = canonical({"body": TRICKY, "fields": {}}).encode()  # review, transfers, ...
    split = payload.split(written)
    assert split is not None and json.loads(split[0]) == TRICKY
    with_fields = canonical({"body": TRICKY, "fields": {"a": {"value": 1}}}).encode()
    assert payload.split(with_fields) is None  # parsed instead


def test_other_shapes_are_not_split() -> None:
    for plain in [b"{}", b'{"fields":{},"body":1}', b'{"body":1,"fields":{},"n":"1"}', b"null"]:
        assert payload.split(plain) is None
    # a length that does not land on the fields member
    assert payload.split(b'{"body":12,"fields":{},"n":1}') is None
