"""Folding of names and identifiers for comparison: accents, case, punctuation, particles.

Blind indexes (:func:`contigo.crypto.blind_index`) and the in-memory fuzzy index
(:mod:`contigo.search_index`) both compare folded text, so the same person typed as "JOSÉ
Pérez-García" on one laptop and "jose perez garcia" on another meets in both. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata

NAME_PARTICLES = frozenset(
    {"de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "di", "van", "von"}
)
"""Connecting words in Spanish and Portuguese names ("de la Cruz", "Silva e Souza"): they match
nearly everyone, so :func:`name_tokens` leaves them out."""


def _ascii_tables() -> tuple[bytes, bytes]:
    """What :func:`normalise_name` does to each ASCII character, as a ``bytes.translate`` table
    and the characters it deletes (derived from the general rule itself, so the two cannot
    disagree)."""
    table, deleted = bytearray(range(256)), bytearray()
    for code in range(128):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Pd" or char == "_" or char.isspace():
            table[code] = ord(" ")
        elif category[0] in "PSC":
            deleted.append(code)
    return bytes(table), bytes(deleted)


_ASCII_TABLE, _ASCII_DELETED = _ascii_tables()


def normalise_name(text: str) -> str:
    """Fold a name for comparison: casefold, strip accents, hyphens and whitespace to single
    spaces, other punctuation and symbols removed ("  Pérez-García, O'Neil " → "perez garcia
    oneil"). Letters without a decomposition (ø, ł) are kept as they are.

    ASCII text (most names and every document number) takes a table instead of the loop over
    characters: there casefolding is lowercasing, NFKD changes nothing and no character is a
    combining mark, so the result is the same (a test compares both on every ASCII character)."""
    if text.isascii():
        folded = text.encode("ascii").lower().translate(_ASCII_TABLE, _ASCII_DELETED)
        return " ".join(folded.decode("ascii").split())
    return _fold(text)


def _fold(text: str) -> str:
    """:func:`normalise_name`'s rule, character by character (any text)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept: list[str] = []
    for char in decomposed:
        category = unicodedata.category(char)
        if category == "Mn":
            continue
        if category == "Pd" or char == "_" or char.isspace():
            kept.append(" ")
        elif category[0] not in "PSC":
            kept.append(char)
    return " ".join("".join(kept).split())


def normalise_identifier(text: str) -> str:
    """Fold a document number as people write it in any spelling: as :func:`normalise_name`,
    without spaces, and a number with a type prefix of one to three letters ("V-", "CC", "PPT")
    or leading zeros reduced to its digits: "V-27.899.728", "27.899.728", "v27899728" and
    "027899728" all fold to "27899728". Other mixes of letters and digits ("AB12C45") stay."""
    folded = normalise_name(text).replace(" ", "")
    prefixed = _PREFIXED.fullmatch(folded)
    if prefixed:
        folded = prefixed.group(1)
    if folded.isdigit():
        folded = folded.lstrip("0") or "0"
    return folded


_PREFIXED = re.compile(r"[a-z]{1,3}(\d+)")
PHONE_DIGITS = 8
"""A phone number is indexed by its last digits: "+57 300 123 4567", "300-123-4567" and
"3001234567" are one number, with or without the country or trunk prefix."""


def normalise_phone(text: str) -> str | None:
    """The digits a phone number is looked up by (its last :data:`PHONE_DIGITS`), or ``None``
    when ``text`` is not a phone number (fewer than 7 digits, or letters in it)."""
    if any(ch.isalpha() for ch in text):
        return None
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 7:
        return None
    return digits[-PHONE_DIGITS:]


def name_tokens(text: str) -> list[str]:
    """The distinct tokens of a name, in order, without connecting particles.

    Double surnames split into both parts: "María José Pérez-García" → maria, jose, perez,
    garcia. If a name is nothing but particles, they are kept.
    """
    tokens = list(dict.fromkeys(normalise_name(text).split()))
    meaningful = [t for t in tokens if t not in NAME_PARTICLES]
    return meaningful or tokens
