"""The wire format: envelopes are checked strictly, results round-trip, and signed requests can be
neither altered nor replayed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.hlc import HLC
from sync.protocol import (
    ACKNOWLEDGED,
    DEVICE_HEADER,
    HTTP_STATUS,
    MAX_BATCH_BYTES,
    MAX_BATCH_OPS,
    NONCE_HEADER,
    PROTOCOL_VERSION,
    REPLAY_WINDOW_MS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadSignature,
    ErrorCode,
    FieldResult,
    OpResult,
    OpStatus,
    OpType,
    ProtocolError,
    ReplayedRequest,
    SnapshotRequest,
    parse_hello,
    parse_hello_response,
    parse_pull,
    parse_pull_response,
    parse_push,
    parse_push_response,
    parse_snapshot,
    parse_snapshot_response,
    sign_request,
    verify_request,
)

T0 = 1_767_225_600_000
HLC_TEXT = HLC(T0, 3, "d-1").encode()


def _hello(**over: Any) -> dict[str, Any]:
    body = {
        "device_id": "d-1",
        "app_version": "1.4.0",
        "protocol": PROTOCOL_VERSION,
        "schema_version": 7,
        "device_time_ms": T0,
        "hlc": HLC_TEXT,
        "pull_cursor": None,
    }
    return body | over


def _op(op_id: str = "o-1", **over: Any) -> dict[str, Any]:
    op = {
        "op_id": op_id,
        "type": "person.patch",
        "entity_type": "person",
        "entity_id": "p-1",
        "person_id": "p-1",
        "hlc": HLC_TEXT,
        "base": {"phone": "o-77", "birth_date": None},
        "data": {"phone": "+51 1", "birth_date": "2024-03-01"},
    }
    return op | over


def _push(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"batch_id": "b-1", "device_id": "d-1", "schema_version": 7, "ops": list(ops)}


def test_a_valid_hello_is_read() -> None:
    hello = parse_hello(_hello(pull_cursor="abc.def"))
    assert (hello.device_id, hello.schema_version, hello.pull_cursor) == ("d-1", 7, "abc.def")


@pytest.mark.parametrize(
    "body",
    [
        _hello(extra=1),
        _hello(protocol=True),
        _hello(schema_version=-1),
        _hello(hlc="now"),
        _hello(device_id="d 1"),
        _hello(device_id="x" * 65),
        {k: v for k, v in _hello().items() if k != "app_version"},
        [],
        "hello",
    ],
)
def test_a_malformed_hello_is_refused_with_400(body: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_hello(body)
    assert caught.value.code is ErrorCode.INVALID_ENVELOPE and caught.value.http_status == 400


def test_another_protocol_version_is_426() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_hello(_hello(protocol=PROTOCOL_VERSION + 1))
    assert caught.value.code is ErrorCode.UNSUPPORTED_PROTOCOL
    assert caught.value.http_status == 426


def test_a_valid_push_is_read_in_order() -> None:
    batch = parse_push(_push(_op("o-1"), _op("o-2", type="encounter.create", base=None)))
    assert [op.op_id for op in batch.ops] == ["o-1", "o-2"]
    assert batch.ops[0].type is OpType.PERSON_PATCH
    assert batch.ops[0].base == {"phone": "o-77", "birth_date": None}
    assert batch.ops[1].base == {}


def test_a_push_over_the_limits_is_413() -> None:
    ops = [_op(f"o-{i}") for i in range(MAX_BATCH_OPS + 1)]
    too_many: dict[str, Any] = {"body": _push(*ops)}
    too_big: dict[str, Any] = {"body": {}, "body_bytes": MAX_BATCH_BYTES + 1}
    for kwargs in (too_many, too_big):
        with pytest.raises(ProtocolError) as caught:
            parse_push(**kwargs)
        assert caught.value.code is ErrorCode.BATCH_TOO_LARGE
        assert caught.value.http_status == 413
    assert len(parse_push(_push(*ops[:MAX_BATCH_OPS])).ops) == MAX_BATCH_OPS


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (_push(_op(), _op()), "ops"),
        (_push(_op(type="person.teleport")), "ops[0].type"),
        (_push(_op(hlc="x")), "ops[0].hlc"),
        (_push(_op(base={"phone": 5})), "ops[0].base.phone"),
        (_push(_op(data=[1])), "ops[0].data"),
        (_push(_op(surprise=1)), "ops[0]"),
        (_push(_op(person_id="")), "ops[0].person_id"),
        (_push(_op()) | {"ops": "all"}, "ops"),
    ],
)
def test_a_malformed_push_names_the_offending_key(body: dict[str, Any], where: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_push(body)
    assert caught.value.where == where


@pytest.mark.parametrize(
    "raw",
    [
        _op(),
        _op(person_id=None, base=None),
        _op(type="encounter.create", entity_type="encounter", base={}),
    ],
)
def test_the_quick_read_of_a_well_formed_op_is_the_checked_read(raw: dict[str, Any]) -> None:
    from sync.protocol.envelopes import Reader, _quick_op

    quick = _quick_op(raw)
    assert quick is not None
    r = Reader(raw, "op")  # the long way, key by key
    assert quick.op_id == r.ident("op_id") and quick.type.value == r.get("type", str)
    assert dict(quick.base) == (raw["base"] or {}) and quick.data == raw["data"]
    assert (quick.entity_id, quick.person_id, quick.hlc) == (
        raw["entity_id"],
        raw["person_id"],
        raw["hlc"],
    )


@pytest.mark.parametrize(
    "raw",
    [
        _op(type="person.teleport"),
        _op(type=["person.patch"]),
        _op(hlc="x"),
        _op(hlc=5),
        _op(base={"phone": 5}),
        _op(base=[1]),
        _op(data=[1]),
        _op(surprise=1),
        _op(person_id=""),
        _op(op_id="not an id!"),
        {k: v for k, v in _op().items() if k != "person_id"},
        "an op",
    ],
)
def test_anything_unusual_takes_the_checked_read(raw: Any) -> None:
    from sync.protocol.envelopes import _quick_op

    assert _quick_op(raw) is None


def test_every_documented_op_type_is_accepted() -> None:
    for op_type in OpType:
        assert parse_push(_push(_op(type=op_type.value))).ops[0].type is op_type


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, (None, 500)),
        ({"cursor": "c.s", "limit": "20"}, ("c.s", 20)),
        ({"cursor": ""}, (None, 500)),
    ],
)
def test_pull_parameters(args: dict[str, str], expected: tuple[str | None, int]) -> None:
    request = parse_pull(args)
    assert (request.cursor, request.limit) == expected


@pytest.mark.parametrize(
    "args",
    [{"limit": "0"}, {"limit": "1001"}, {"limit": "-1"}, {"limit": "x"}, {"seq": "5"}],
)
def test_bad_pull_parameters_are_refused(args: dict[str, str]) -> None:
    with pytest.raises(ProtocolError):
        parse_pull(args)


def test_snapshot_requests() -> None:
    assert parse_snapshot({"person_ids": ["p-1", "p-2", "p-1"]}).person_ids == ("p-1", "p-2")
    bodies: list[dict[str, Any]] = [
        {"person_ids": []},
        {"person_ids": ["p 1"]},
        {"person_ids": ["p"] * 101},
        {},
    ]
    for body in bodies:
        with pytest.raises(ProtocolError):
            parse_snapshot(body)


def test_an_op_result_round_trips_through_its_wire_form() -> None:
    result = OpResult(
        op_id="o-1",
        status=OpStatus.CONFLICT,
        server_seq=90412,
        conflict_id="c-1",
        fields={
            "phone": FieldResult("+51 1", 90412, "o-1"),
            "birth_date": FieldResult("2024-02-01", 88001, "o-55", in_conflict=True),
        },
    )
    wire = result.to_json()
    assert wire["fields"]["birth_date"]["in_conflict"] is True
    assert "in_conflict" not in wire["fields"]["phone"]
    assert OpResult.from_json(wire, "r") == result
    replayed = OpResult.from_json(wire | {"replayed": True, "new_key": 1}, "r")
    assert replayed.replayed and replayed.to_json() == wire | {"replayed": True}


def test_a_push_response_must_answer_every_op_of_the_batch_in_order() -> None:
    batch = parse_push(_push(_op("o-1"), _op("o-2")))
    results = [
        OpResult("o-1", OpStatus.APPLIED).to_json(),
        OpResult("o-2", OpStatus.REJECTED).to_json(),
    ]
    body = {"batch_id": "b-1", "server_hlc": HLC_TEXT, "results": results}
    assert [r.status for r in parse_push_response(body, batch).results] == [
        OpStatus.APPLIED,
        OpStatus.REJECTED,
    ]
    for bad in (
        body | {"results": results[:1]},
        body | {"results": results[::-1]},
        body | {"batch_id": "b-2"},
        body | {"results": [results[0] | {"status": "lost"}, results[1]]},
    ):
        with pytest.raises(ProtocolError):
            parse_push_response(bad, batch)


def test_acknowledged_statuses_leave_the_outbox_but_rejected_and_deferred_stay() -> None:
    assert OpStatus.REJECTED not in ACKNOWLEDGED and OpStatus.DEFERRED not in ACKNOWLEDGED
    assert set(OpStatus) - ACKNOWLEDGED == {OpStatus.REJECTED, OpStatus.DEFERRED}


def _page(*seqs: int, **over: Any) -> dict[str, Any]:
    changes = [
        {
            "seq": s,
            "kind": "fields",
            "entity_type": "person",
            "entity_id": "p-1",
            "fields": {"phone": {"value": "1", "version_seq": s, "last_op_id": "o-1"}},
        }
        for s in seqs
    ]
    return {
        "changes": changes,
        "next_cursor": "c.s",
        "has_more": False,
        "server_hlc": HLC_TEXT,
    } | over


def test_a_pull_page_must_increase_strictly_past_the_cursor() -> None:
    page = parse_pull_response(_page(5, 6, 9), after_seq=4)
    assert [c.seq for c in page.changes] == [5, 6, 9]
    assert page.changes[0].fields == {"phone": FieldResult("1", 5, "o-1")}
    for bad, after in ((_page(5, 5), 0), (_page(6, 5), 0), (_page(4), 4)):
        with pytest.raises(ProtocolError, match="increasing"):
            parse_pull_response(bad, after_seq=after)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"seq": True}, "changes[0].seq"),
        ({"entity_id": "not an id!"}, "changes[0].entity_id"),
        ({"data": ["x"]}, "changes[0].data"),
        ({"fields": {"phone": {"value": 1, "version_seq": -2, "last_op_id": "o"}}}, None),
        ({"fields": {"phone": {"value": 1, "version_seq": 2, "last_op_id": "o o"}}}, None),
        (
            {
                "fields": {
                    "phone": {"value": 1, "version_seq": 2, "last_op_id": "o", "in_conflict": 1}
                }
            },
            None,
        ),
    ],
)
def test_a_malformed_pulled_change_names_the_offending_key(
    change: dict[str, Any], where: str | None
) -> None:
    body = _page(1)
    body["changes"][0] |= change
    with pytest.raises(ProtocolError) as caught:
        parse_pull_response(body)
    assert caught.value.where == (where or caught.value.where)
    assert str(caught.value.where).startswith("changes[0]")


def test_a_well_formed_pulled_change_is_read_whole() -> None:
    body = _page(3)
    body["changes"][0]["fields"]["phone"]["in_conflict"] = True
    [change] = parse_pull_response(body).changes
    assert change.fields == {"phone": FieldResult("1", 3, "o-1", in_conflict=True)}
    assert (change.seq, change.entity_id) == (3, body["changes"][0]["entity_id"])
    assert change.data == body["changes"][0].get("data")


def test_an_unknown_change_kind_is_kept_for_parking() -> None:
    body = _page(1)
    body["changes"][0]["kind"] = "hologram"
    assert parse_pull_response(body).changes[0].kind == "hologram"


def test_a_hello_reply_never_raises_the_batch_cap() -> None:
    body = {
        "server_time_ms": T0,
        "server_hlc": HLC_TEXT,
        "schema_version": 8,
        "min_push_schema": 5,
        "min_pull_schema": 7,
        "max_batch_ops": 10_000,
        "max_batch_bytes": 2_000_000,
        "clock_offset_ms": -259_200_000,
        "clock_suspect": True,
        "backfill": [],
        "alerts": [],
        "control": None,
    }
    reply = parse_hello_response(body)
    assert reply.max_batch_ops == MAX_BATCH_OPS and reply.clock_offset_ms == -259_200_000
    assert reply.max_pull_limit == 500  # a server that does not announce its page cap


@pytest.mark.parametrize(("announced", "asked"), [(700, 700), (50_000, 1000), (0, 500)])
def test_hello_sets_the_pull_page_within_the_clients_cap(announced: int, asked: int) -> None:
    body = {
        "server_time_ms": T0,
        "server_hlc": HLC_TEXT,
        "schema_version": 2,
        "min_push_schema": 1,
        "min_pull_schema": 1,
        "max_batch_ops": 200,
        "max_pull_limit": announced,
        "clock_offset_ms": 0,
        "clock_suspect": False,
    }
    assert parse_hello_response(body).max_pull_limit == asked


def test_a_snapshot_reply_holds_only_persons_asked_for() -> None:
    request = SnapshotRequest(("p-1",))
    assert parse_snapshot_response({"as_of_seq": 9, "persons": [{"id": "p-1"}]}, request) == (
        9,
        [{"id": "p-1"}],
    )
    with pytest.raises(ProtocolError):
        parse_snapshot_response({"as_of_seq": 9, "persons": [{"id": "p-2"}]}, request)


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)


# ── signing ─────────────────────────────────────────────────────────────────────────────


KEY = Ed25519PrivateKey.generate()
NONCE = "n0nce-0123456789abcdef"
BODY = b'{"batch_id": "b-1"}'
PATH = "/sync/v1/push"


class Nonces:
    """A nonce store: records each nonce and says whether it was seen before."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, nonce: str) -> bool:
        if nonce in self.seen:
            return True
        self.seen.add(nonce)
        return False


def _signed(**over: Any) -> dict[str, str]:
    args: dict[str, Any] = {
        "method": "POST",
        "path": PATH,
        "body_bytes": BODY,
        "timestamp_ms": T0,
        "nonce": NONCE,
    }
    args |= over
    return sign_request(KEY, device_id="d-1", **args)


def _verify(
    headers: dict[str, str], nonces: Callable[[str], bool] | None = None, **over: Any
) -> None:
    args: dict[str, Any] = {"method": "POST", "path": PATH, "body": BODY, "now_ms": T0}
    args |= over
    verify_request(KEY.public_key(), headers, seen_nonce=nonces or Nonces(), **args)


def test_a_signed_request_verifies_once() -> None:
    headers, nonces = _signed(), Nonces()
    assert headers[DEVICE_HEADER] == "d-1"
    _verify(headers, nonces)
    with pytest.raises(ReplayedRequest, match="nonce"):
        _verify(headers, nonces)


def test_header_names_are_case_insensitive() -> None:
    _verify({k.lower(): v for k, v in _signed().items()})


@pytest.mark.parametrize(
    "over",
    [
        {"method": "PUT"},
        {"path": "/sync/v1/pull"},
        {"path": PATH + "?cursor=x"},
        {"body": BODY + b" "},
    ],
)
def test_any_altered_part_fails_verification(over: dict[str, Any]) -> None:
    with pytest.raises(BadSignature):
        _verify(_signed(), **over)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (TIMESTAMP_HEADER, str(T0 + 1)),
        (NONCE_HEADER, "n0nce-0123456789abcdeX"),
        (DEVICE_HEADER, "d-2"),
        (SIGNATURE_HEADER, "AAAA"),
        (SIGNATURE_HEADER, "!!"),
        (TIMESTAMP_HEADER, "soon"),
        (NONCE_HEADER, "short"),
    ],
)
def test_altered_headers_fail_verification(header: str, value: str) -> None:
    headers = _signed() | {header: value}
    with pytest.raises(BadSignature):
        _verify(headers)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_missing_headers_fail_verification(missing: str) -> None:
    headers = {k: v for k, v in _signed().items() if k != missing}
    with pytest.raises(BadSignature, match="missing"):
        _verify(headers)


@pytest.mark.parametrize(("skew", "ok"), [(REPLAY_WINDOW_MS, True), (REPLAY_WINDOW_MS + 1, False)])
def test_requests_are_accepted_only_within_the_time_window(skew: int, ok: bool) -> None:
    for now in (T0 + skew, T0 - skew):
        if ok:
            _verify(_signed(), now_ms=now)
        else:
            with pytest.raises(ReplayedRequest, match="window"):
                _verify(_signed(), now_ms=now)


def test_a_forged_request_does_not_use_up_the_nonce() -> None:
    nonces = Nonces()
    forged = _signed() | {SIGNATURE_HEADER: _signed(body_bytes=b"other")[SIGNATURE_HEADER]}
    with pytest.raises(BadSignature):
        _verify(forged, nonces)
    _verify(_signed(), nonces)


def test_another_devices_key_fails_verification() -> None:
    other = Ed25519PrivateKey.generate()
    headers = sign_request(other, "POST", PATH, BODY, T0, NONCE, device_id="d-1")
    with pytest.raises(BadSignature):
        _verify(headers)


@pytest.mark.parametrize("nonce", ["short", "has space in it 123", "x" * 65])
def test_signing_refuses_a_weak_nonce(nonce: str) -> None:
    with pytest.raises(ValueError, match="nonce"):
        _signed(nonce=nonce)


def test_a_newline_in_a_signed_part_is_refused() -> None:
    with pytest.raises(BadSignature, match="newline"):
        _signed(path="/sync/v1/push\nX: y")


def test_responses_are_read_leniently_but_requests_strictly() -> None:
    body = copy.deepcopy(_hello())
    body["future"] = True
    with pytest.raises(ProtocolError):
        parse_hello(body)
