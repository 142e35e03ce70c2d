"""Recording accesses and changes in the audit trail (ids and codes only)."""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy.orm import Session

from contigo.audit.models import AuditEntry


def record(
    s: Session,
    *,
    user_id: str | None,
    action: str,
    entity_type: str,
    entity_id: str | None = None,
    person_id: str | None = None,
    site_id: str | None = None,
) -> None:
    """Add an audit entry in the caller's transaction; ``origin`` says where the access came from
    (the API or a page, and the peer address), never what was seen."""
    origin = ""
    if has_request_context():
        channel = "api" if request.path.startswith("/api/") else "web"
        origin = f"{channel}:{request.remote_addr or ''}"[:40]
    s.add(
        AuditEntry(
            user_id=user_id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            person_id=person_id,
            site_id=site_id,
            origin=origin,
        )
    )
