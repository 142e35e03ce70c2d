"""Contigo IDs: 8 random Crockford base32 symbols and a check symbol, printed on the family's card.

Crockford's alphabet drops I, L, O and U so that an ID read aloud or copied by hand survives; the
mod-37 check symbol catches every single-symbol error and every adjacent transposition.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})
BODY_LENGTH = 8


def _check_symbol(body: str) -> str:
    value = 0
    for ch in body:
        value = value * 32 + _DECODE[ch]
    return CHECK_ALPHABET[value % 37]


def generate() -> str:
    """A new random Contigo ID (9 symbols, no separator)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + _check_symbol(body)


def normalise(text: str) -> str | None:
    """Canonical form of a typed ID (case, hyphens, spaces, O/I/L folded), or None if invalid."""
    cleaned = text.strip().upper().replace("-", "").replace(" ", "")
    if len(cleaned) != BODY_LENGTH + 1:
        return None
    body, check = cleaned[:BODY_LENGTH], cleaned[BODY_LENGTH]
    if any(ch not in _DECODE for ch in body):
        return None
    body = "".join(ALPHABET[_DECODE[ch]] for ch in body)
    check = ALPHABET[_DECODE[check]] if check in _DECODE else check  # O, I and L fold here too
    return body + check if _check_symbol(body) == check else None


def display(cid: str) -> str:
    """Grouped for reading aloud: ``ABCD-EFGH-J``."""
    return f"{cid[:4]}-{cid[4:8]}-{cid[8:]}"
