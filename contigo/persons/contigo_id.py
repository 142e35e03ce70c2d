"""Contigo IDs: 8 random Crockford base32 symbols and a check symbol, printed on the family's card.

Crockford's alphabet drops I, L, O and U so that an ID read aloud or copied by hand survives; the
mod-37 check symbol catches every single-symbol error and every adjacent transposition.

Mod 37 needs five check symbols beyond the alphabet (``*~$=U``): they cannot be read aloud or
told apart when handwritten (``U``/``V``). New IDs therefore only use bodies whose check falls in
the 32 ordinary symbols (:func:`generate` draws again otherwise, 5 times in 37), so the check is
computed and verified exactly as before and every ID issued earlier, with any check symbol, stays
valid (issue 15.3).
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
#: Check symbols of IDs issued before issue 15.3: still accepted, never issued again.
LEGACY_CHECKS = frozenset(CHECK_ALPHABET[len(ALPHABET) :])
_DECODE = {c: i for i, c in enumerate(ALPHABET)}
_DECODE.update({"O": 0, "I": 1, "L": 1})
BODY_LENGTH = 8


def _check_symbol(body: str) -> str:
    value = 0
    for ch in body:
        value = value * 32 + _DECODE[ch]
    return CHECK_ALPHABET[value % 37]


def generate() -> str:
    """A new random Contigo ID (9 symbols, no separator) whose check symbol is one of the 32
    ordinary symbols: readable aloud and by hand."""
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
        check = _check_symbol(body)
        if check not in LEGACY_CHECKS:
            return body + check


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
