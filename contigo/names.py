"""Folding of names and identifiers for comparison: accents, case, punctuation, particles.

Blind indexes (:func:`contigo.crypto.blind_index`) and the in-memory fuzzy index
(:mod:`contigo.search_index`) both compare folded text, so the same person typed as "JOSÉ
Pérez-García" on one laptop and "jose perez garcia" on another meets in both. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata

NAME_PARTICLES = frozenset(
    {"de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "di", "van", "von"}
)
"""Connecting words in Spanish and Portuguese names ("de la Cruz", "Silva e Souza"): they match
nearly everyone, so :func:`name_tokens` leaves them out."""


def normalise_name(text: str) -> str:
    """Fold a name for comparison: casefold, strip accents, hyphens and whitespace to single
    spaces, other punctuation and symbols removed ("  Pérez-García, O'Neil " → "perez garcia
    oneil"). Letters without a decomposition (ø, ł) are kept as they are."""
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
    """Fold a document number: as :func:`normalise_name`, then without spaces
    ("V-12.345.678" → "v12345678")."""
    return normalise_name(text).replace(" ", "")


def name_tokens(text: str) -> list[str]:
    """The distinct tokens of a name, in order, without connecting particles.

    Double surnames split into both parts: "María José Pérez-García" → maria, jose, perez,
    garcia. If a name is nothing but particles, they are kept.
    """
    tokens = list(dict.fromkeys(normalise_name(text).split()))
    meaningful = [t for t in tokens if t not in NAME_PARTICLES]
    return meaningful or tokens
