"""Numbers as people type them: a decimal comma or a decimal point, never both.

Health workers in the region write ``8,5`` as often as ``8.5`` (the pages themselves show
commas in Spanish and Portuguese), so every decimal field accepts either mark. What cannot be
read one way only is refused rather than guessed: ``1.234,5`` (a thousands separator and a
decimal comma) or ``1,2,3`` could be a typing slip, and a weight read a thousand times off is a
clinical error, not a convenience.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")
#: Languages that write a decimal comma.
COMMA_LANGUAGES = frozenset({"es", "pt"})


class AmbiguousNumber(ValueError):
    """More than one decimal or grouping mark: the number could be read more than one way."""


def parse_decimal(text: str) -> float:
    """The number in ``text``, with ``,`` or ``.`` as the decimal mark.

    Surrounding blanks are ignored and a true minus sign (``−``) reads as ``-``.

    :raises AmbiguousNumber: for two or more marks (``1.234,5``, ``1,2,3``, ``1.000.000``).
    :raises ValueError: for anything else that is not a plain decimal (letters, exponents,
        spaces inside, ``nan``, ``inf``).
    """
    value = text.strip().replace("\u2212", "-")
    if value.count(",") + value.count(".") > 1:
        raise AmbiguousNumber(value)
    if not _NUMBER.fullmatch(value):
        raise ValueError(value)
    return float(value.replace(",", "."))


def localise_number(text: str, lang: str) -> str:
    """A number written by the program (``0.5``) as ``lang`` writes it (``0,5`` in es/pt)."""
    if lang in COMMA_LANGUAGES and re.fullmatch(r"[+-]?\d+\.\d+", text):
        return text.replace(".", ",")
    return text
