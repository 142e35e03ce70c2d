"""Referral codes: ``R`` and a Contigo-ID-like body with its check symbol, printed on the slip
(``R-XXXX-XXXX-C``) and its QR code, typed or scanned back in when the family returns with the
counter-referral. The check symbol catches a mistyped symbol or two swapped ones."""

from __future__ import annotations

from contigo.persons import contigo_id

PREFIX = "R"


def new_code() -> str:
    """A new referral code: ``R`` and a Contigo-ID-like body with its check symbol."""
    return PREFIX + contigo_id.generate()


def normalise_code(text: str) -> str | None:
    """The canonical form of a typed or scanned code (case, hyphens, spaces, O/I/L folded, the
    ``R`` optional), or ``None`` if it is not a valid code (a typo the check symbol caught)."""
    cleaned = text.strip().upper().replace("-", "").replace(" ", "")
    if cleaned.startswith(PREFIX) and len(cleaned) == contigo_id.BODY_LENGTH + 2:
        cleaned = cleaned[1:]
    body = contigo_id.normalise(cleaned)
    return PREFIX + body if body else None


def display_code(code: str) -> str:
    """``R-XXXX-XXXX-C``: the code as printed on the slip."""
    return f"{PREFIX}-{contigo_id.display(code[1:])}"
