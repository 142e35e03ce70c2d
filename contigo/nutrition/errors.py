"""Errors raised by the clinical engine.

Every error names the field it is about and carries a stable code, so that the application can
show a message in the user's language next to the right input.
"""

from __future__ import annotations


class MeasurementError(ValueError):
    """A measurement is physically impossible or in the wrong unit.

    :param field: the input field at fault (``weight_kg``, ``muac_mm`` …).
    :param code: a stable, machine-readable code (``negative``, ``out_of_range``, ``unit`` …).
    :param message: an English sentence for logs and analysts; user interfaces translate
        ``code`` instead.
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message
