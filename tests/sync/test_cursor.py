"""The pull cursor round-trips, and any cursor the server did not issue is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.cursor import (
    BadCursor,
    Cursor,
    decode_cursor,
    encode_cursor,
    scope_fingerprint,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _forge(body: object, key: bytes = KEY) -> str:
    """A cursor signed with the right key whose payload the server never wrote."""
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@given(
    st.integers(0, 2**62),
    st.text(max_size=40),
    st.integers(0, 10_000),
)
def test_a_cursor_round_trips(seq: int, scope: str, schema: int) -> None:
    cursor = Cursor(seq, scope, schema)
    text = encode_cursor(cursor, KEY)
    assert decode_cursor(text, KEY) == cursor
    assert text == encode_cursor(cursor, KEY)
    assert text.isascii() and "=" not in text and "+" not in text and "/" not in text


def test_the_payload_is_the_documented_json() -> None:
    text = encode_cursor(Cursor(90415, "3fa", 7), KEY)
    payload = text.split(".")[0]
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body == {"v": 1, "seq": 90415, "scope": "3fa", "schema": 7}


def test_every_single_character_change_is_detected() -> None:
    text = encode_cursor(Cursor(1234, "abc", 3), KEY)
    for i, char in enumerate(text):
        for other in {"A", "b", "-", "_", "."} - {char}:
            tampered = text[:i] + other + text[i + 1 :]
            with pytest.raises(BadCursor):
                decode_cursor(tampered, KEY)


def test_a_cursor_from_another_key_is_refused() -> None:
    with pytest.raises(BadCursor, match="signature"):
        decode_cursor(encode_cursor(Cursor(1, "s", 1), OTHER_KEY), KEY)


@pytest.mark.parametrize(
    "text",
    ["", "abc", ".", "abc.", ".sig", "é.é", "x" * 2000 + ".y", "eyJ2IjoxfQ.not-a-signature"],
)
def test_malformed_cursors_are_refused(text: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(text, KEY)


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "seq": 1, "scope": "s", "schema": 1},
        {"v": 1, "seq": -1, "scope": "s", "schema": 1},
        {"v": 1, "seq": True, "scope": "s", "schema": 1},
        {"v": 1, "seq": "1", "scope": "s", "schema": 1},
        {"v": 1, "seq": 1, "scope": 5, "schema": 1},
        {"v": 1, "seq": 1, "scope": "s"},
        {"v": 1, "seq": 1, "scope": "s", "schema": 1, "admin": True},
        [1, 2],
    ],
)
def test_signed_but_unexpected_payloads_are_refused(body: object) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(_forge(body), KEY)


def test_a_signed_payload_that_is_not_json_is_refused() -> None:
    payload = base64.urlsafe_b64encode(b"\xff\xfe").rstrip(b"=").decode()
    mac = hmac.new(KEY, payload.encode(), hashlib.sha256).digest()
    text = f"{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(BadCursor, match="JSON"):
        decode_cursor(text, KEY)


def test_a_short_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="key"):
        encode_cursor(Cursor(1, "s", 1), b"short")


def test_negative_positions_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="negative"):
        Cursor(-1, "s", 1)


pairs = st.lists(st.tuples(st.sampled_from("pqrs"), st.sampled_from("AB")), max_size=8)


@given(pairs, st.randoms())
def test_the_scope_fingerprint_ignores_order_and_repeats(
    access: list[tuple[str, str]], rnd: object
) -> None:
    shuffled = list(access) * 2
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert scope_fingerprint(shuffled) == scope_fingerprint(access)
    assert len(scope_fingerprint(access)) == 32


def test_the_scope_fingerprint_changes_when_access_changes() -> None:
    base = [("p1", "A"), ("p2", "A")]
    prints = {
        scope_fingerprint(base),
        scope_fingerprint([*base, ("p3", "A")]),
        scope_fingerprint(base[:1]),
        scope_fingerprint([("p1", "A"), ("p2", "B")]),
        scope_fingerprint([]),
    }
    assert len(prints) == 5
