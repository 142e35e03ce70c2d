"""The card's codec reads untrusted bytes from paper before any signature is checked: whatever
it is given, it answers with a value or a refusal, never another exception."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contigo.card import claims, codec
from contigo.card.trust import CardRefused, open_card

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=30,
)  # fmt: skip


@given(VALUES)
def test_cbor_round_trips(value: Any) -> None:
    assert codec.cbor_loads(codec.cbor_dumps(value)) == value


@given(st.binary(max_size=64))
def test_base45_round_trips(raw: bytes) -> None:
    assert codec.b45decode(codec.b45encode(raw)) == raw


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_any_bytes_are_a_value_or_a_refusal(raw: bytes) -> None:
    with contextlib.suppress(codec.MalformedCard):
        codec.cbor_loads(raw)
    with contextlib.suppress(codec.MalformedCard):
        claims.decode(raw)
    with contextlib.suppress(CardRefused):
        open_card(raw, b"\x01" * 32, {})


@settings(max_examples=300)
@given(VALUES)
def test_any_structure_is_claims_or_a_refusal(value: Any) -> None:
    with contextlib.suppress(codec.MalformedCard):
        claims.decode(codec.cbor_dumps(value))


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_is_a_card_or_a_refusal(text: str) -> None:
    for candidate in (text, codec.PREFIX + text):
        with contextlib.suppress(codec.MalformedCard):
            codec.from_text(candidate)


def test_a_zlib_bomb_is_refused_before_it_inflates() -> None:
    import zlib

    bomb = codec.PREFIX + codec.b45encode(zlib.compress(b"\0" * 10_000_000, 9))
    try:
        codec.from_text(bomb)
    except codec.MalformedCard:
        return
    raise AssertionError("a 10 MB payload was accepted")


def test_claims_round_trip() -> None:
    from datetime import date

    c = claims.Claims(
        "ab" * 16, "ABCD1234X", "child", "Ana", "Pérez", "F", date(2024, 1, 2), "month", "pt",
        1_700_000_000, "dev", "CO-NEC", "Necoclí", "CO",
        (claims.Visit("cd" * 16, date(2024, 6, 1), 7100, 700, "l", 118, 440, 0, 950, -241, -190,
                      -220, "mam", "moderate", "CO-NEC", "CO"),),
        ("mam_tsfp", date(2024, 6, 1), "active"), date(2024, 6, 15),
        ("Hospital X", "referral.sam", date(2024, 6, 1)), 1,
    )  # fmt: skip
    assert claims.decode(claims.encode(c)) == c
