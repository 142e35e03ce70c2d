"""Damaged ciphertexts: reported, audited, and hidden one value at a time.

A stored value whose ciphertext fails authentication (a flipped bit, a value copied from another
row, a shredded key) is never shown as data. The code that decrypts it marks only that value as
unreadable and calls :func:`damaged`; the rest of the record is shown. Each damaged value is
logged (ids only) and, when the answer is served, written to the audit trail as an
``integrity_error`` naming the table, column and row: never the value, which cannot be read.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, has_request_context

log = logging.getLogger(__name__)

#: ``(table, row id, column, person id)`` of each damaged value met during the request.
_KEY = "contigo_integrity_damage"


def damaged(table: str, row_id: str, column: str, person_id: str | None) -> None:
    """Record that ``table.column`` of row ``row_id`` failed its integrity check."""
    log.warning("integrity: %s.%s of row %s cannot be decrypted", table, column, row_id)
    if has_request_context():
        found: set[tuple[str, str, str, str | None]] = g.setdefault(_KEY, set())
        found.add((table, row_id, column, person_id))


def init_app(app: Flask) -> None:
    """Audit the damaged values met by each request, in the request's own transaction (so
    register after :func:`contigo.db.init_app`, whose commit then runs after this)."""

    @app.after_request
    def _audit(response: Response) -> Response:
        found: set[tuple[str, str, str, str | None]] | None = g.pop(_KEY, None)
        if not found:
            return response
        from contigo import db
        from contigo.audit.services import record

        user = g.get("user")
        s = db.session()
        for table, row_id, column, person_id in sorted(found, key=str):
            record(
                s,
                user_id=user.id if user is not None else None,
                action="integrity_error",
                entity_type=f"{table}.{column}"[:24],
                entity_id=row_id,
                person_id=person_id,
            )
        return response
