"""Recording accesses and changes in the audit trail (ids and codes only), and checking it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

from flask import has_request_context, request
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from contigo.audit import chain
from contigo.audit.models import AuditEntry
from contigo.db import new_id, utcnow

CODE = re.compile(r"[a-z][a-z0-9_.]{0,23}")
IDENT = re.compile(r"[A-Za-z0-9_.:-]{1,32}")


def _check_codes(action: str, entity_type: str, ids: tuple[str | None, ...]) -> None:
    """Refuse what is not a code or an id: a name or a date of birth must never reach the trail,
    which is kept in plaintext on central and checked without any key."""
    if not CODE.fullmatch(action) or not CODE.fullmatch(entity_type):
        raise ValueError("audit actions and entity types are lower-case codes")
    if any(value is not None and not IDENT.fullmatch(value) for value in ids):
        raise ValueError("audit entries hold ids, never free text")


def _origin() -> str:
    if not has_request_context():
        return ""
    channel = "api" if request.path.startswith("/api/") else "web"
    return f"{channel}:{request.remote_addr or ''}"[:40]


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
    """Add an audit entry in the caller's transaction, linked to the hash chain (which locks the
    chain head until the transaction ends); ``origin`` says where the access came from (the API
    or a page, and the peer address), never what was seen."""
    _check_codes(action, entity_type, (user_id, entity_id, person_id, site_id))
    origin = _origin()
    entry = AuditEntry(
        id=new_id(),
        at=utcnow(),
        user_id=user_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        person_id=person_id,
        site_id=site_id,
        origin=origin,
    )
    chain.append(s, entry)


def record_many(
    s: Session,
    *,
    user_id: str | None,
    action: str,
    entity_type: str,
    items: Iterable[tuple[str | None, str | None, str | None]],
) -> None:
    """One audit entry per ``(entity id, person id, site id)`` of ``items``, as :func:`record`
    would add each, linked to the chain in order under a single lock of its head and inserted
    in one statement (a search result list audits every person it shows)."""
    origin, now = _origin(), utcnow()
    rows: list[dict[str, Any]] = []
    for entity_id, person_id, site_id in items:
        _check_codes(action, entity_type, (user_id, entity_id, person_id, site_id))
        rows.append({"id": new_id(), "at": now, "user_id": user_id, "action": action,
                     "entity_type": entity_type, "entity_id": entity_id,
                     "person_id": person_id, "site_id": site_id, "origin": origin})  # fmt: skip
    if not rows:
        return
    s.flush()  # entries the session still holds come first in the chain
    conn = s.connection()
    chain.append_rows(conn, rows)
    conn.execute(insert(cast(Table, AuditEntry.__table__)), rows)


def verify(s: Session) -> chain.Verdict:
    """Check the whole audit chain (see :func:`contigo.audit.chain.verify`)."""
    return chain.verify(s)
