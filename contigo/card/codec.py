"""The card's wire form: a small CBOR subset, zlib, Base45, and the hand-typed short code.

Pure functions, no database and no keys. The QR text is ``CTG1:`` + Base45(zlib(CBOR)) (the
layout of the EU digital COVID certificate: Base45 fills a QR code's alphanumeric mode, which a
phone camera and every decoder read as plain text, at 3 % over raw bytes). The decoder is strict
and bounded: it reads untrusted bytes from paper before any signature is checked.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

PREFIX = "CTG1:"
MAX_INFLATED = 16_384
"""A card never inflates past this (a version-25 QR holds 1.4 kB); more is refused as a bomb."""

_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_INDEX = {c: i for i, c in enumerate(_B45)}
_MAX_DEPTH = 8


class MalformedCard(ValueError):
    """Bytes or text that are not a well-formed card (before any signature is checked)."""


# ── CBOR (RFC 8949), the subset a card uses: ints, bytes, text, arrays, null, booleans ──────────


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes([major << 5 | 26]) + struct.pack(">I", n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


def cbor_dumps(value: Any) -> bytes:
    """Deterministic CBOR of ``value`` (None, bool, int, bytes, str, list/tuple)."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, list | tuple):
        return _head(4, len(value)) + b"".join(cbor_dumps(v) for v in value)
    raise TypeError(f"a card carries no {type(value).__name__}")


def cbor_loads(data: bytes) -> Any:
    """The value of ``data``; raises :class:`MalformedCard` on anything else or trailing bytes."""
    value, end = _item(data, 0, 0)
    if end != len(data):
        raise MalformedCard("trailing bytes")
    return value


def _item(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH or pos >= len(data):
        raise MalformedCard("truncated or too deep")
    first = data[pos]
    major, info = first >> 5, first & 0x1F
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info not in simple:
            raise MalformedCard("unsupported simple value")
        return simple[info], pos
    if info < 24:
        n = info
    elif info <= 27:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise MalformedCard("truncated")
        n = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    else:
        raise MalformedCard("indefinite lengths are not used")
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        if pos + n > len(data):
            raise MalformedCard("truncated")
        raw = data[pos : pos + n]
        if major == 2:
            return bytes(raw), pos + n
        try:
            return raw.decode("utf-8"), pos + n
        except UnicodeDecodeError:
            raise MalformedCard("bad text") from None
    if major == 4:
        if n > len(data) - pos:
            raise MalformedCard("truncated")
        items = []
        for _ in range(n):
            value, pos = _item(data, pos, depth + 1)
            items.append(value)
        return items, pos
    raise MalformedCard("unsupported CBOR type")


# ── Base45 (RFC 9285) ───────────────────────────────────────────────────────────────────────────


def b45encode(data: bytes) -> str:
    """``data`` in Base45: every two bytes as three characters of the QR alphanumeric set."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += [_B45[c], _B45[d], _B45[e]]
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += [_B45[c], _B45[d]]
    return "".join(out)


def b45decode(text: str) -> bytes:
    """The bytes of Base45 ``text``; raises :class:`MalformedCard`."""
    try:
        values = [_B45_INDEX[c] for c in text]
    except KeyError:
        raise MalformedCard("not Base45") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        chunk = values[i : i + 3]
        if len(chunk) == 1:
            raise MalformedCard("not Base45")
        n = sum(v * 45**k for k, v in enumerate(chunk))
        if len(chunk) == 3:
            if n > 0xFFFF:
                raise MalformedCard("not Base45")
            out += bytes([n >> 8, n & 0xFF])
        else:
            if n > 0xFF:
                raise MalformedCard("not Base45")
            out.append(n)
    return bytes(out)


# ── the QR text ─────────────────────────────────────────────────────────────────────────────────


def to_text(envelope: bytes) -> str:
    """The QR text of a signed envelope (its CBOR bytes)."""
    return PREFIX + b45encode(zlib.compress(envelope, 9))


def from_text(text: str) -> bytes:
    """The envelope bytes of a QR text; raises :class:`MalformedCard` (bounded inflation)."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise MalformedCard("not a Contigo card")
    packed = b45decode(text[len(PREFIX) :])
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(packed, MAX_INFLATED + 1)
    except zlib.error:
        raise MalformedCard("not a Contigo card") from None
    if len(raw) > MAX_INFLATED or inflater.unconsumed_tail or not inflater.eof:
        raise MalformedCard("not a Contigo card")
    return raw


# ── the short code ──────────────────────────────────────────────────────────────────────────────

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})
CODE_BODY = 12


def _check(body: str) -> str:
    value = 0
    for ch in body:
        value = value * 32 + _DECODE[ch]
    return CHECK_ALPHABET[value % 37]


def short_code(envelope: bytes) -> str:
    """The card's short code: 60 bits of the SHA-256 of its signed envelope in 12 Crockford
    base32 symbols, and a mod-37 check symbol (every single-symbol error and adjacent
    transposition is caught before any lookup). Grouped ``XXXX-XXXX-XXXX-C``."""
    bits = int.from_bytes(hashlib.sha256(envelope).digest()[:8], "big") >> 4
    body = "".join(ALPHABET[(bits >> (5 * (CODE_BODY - 1 - i))) & 31] for i in range(CODE_BODY))
    return f"{body[:4]}-{body[4:8]}-{body[8:]}-{_check(body)}"


def normalise_code(text: str) -> str | None:
    """The canonical grouped form of a typed short code, or None when it fails its check."""
    cleaned = "".join(text.split()).upper().replace("-", "")
    if len(cleaned) != CODE_BODY + 1:
        return None
    body, check = cleaned[:CODE_BODY], cleaned[CODE_BODY]
    if any(ch not in _DECODE for ch in body):
        return None
    body = "".join(ALPHABET[_DECODE[ch]] for ch in body)
    if _check(body) != check:
        return None
    return f"{body[:4]}-{body[4:8]}-{body[8:]}-{check}"
