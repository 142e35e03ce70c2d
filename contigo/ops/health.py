"""Readiness of the central server: what ``/readyz`` and ``contigo central check`` report.

Ready means: the database answers, the server key is loaded (the vault is unlocked, so sync
can seal and open), and the database is at the newest migration. Each check is a name, a
verdict and a short detail with no personal value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import or_, select, text
from sqlalchemy.engine import Engine

from contigo.db import session_scope
from contigo.migrate import current_revision, head_revision
from contigo.sites.models import Site
from contigo.vault import get_vault
from sync.models import Device
from sync.server.incarnation import current as current_incarnation


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check."""

    name: str
    ok: bool
    detail: str


def _database(engine: Engine) -> Check:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database is the answer
        return Check("database", False, type(exc).__name__)
    return Check("database", True, engine.dialect.name)


def _migrations(engine: Engine) -> Check:
    try:
        at, head = current_revision(engine), head_revision()
    except Exception as exc:  # an unreachable database is reported by its own check
        return Check("migrations", False, type(exc).__name__)
    return Check("migrations", at == head, f"{at} (head {head})")


def readiness(app: Flask) -> list[Check]:
    """Every readiness check of ``app``, in a fixed order."""
    engine: Engine = app.extensions["contigo.engine"]
    database = _database(engine)
    key = Check(
        "server_key",
        get_vault(app).is_unlocked,
        "loaded" if get_vault(app).is_unlocked else "not loaded",
    )
    checks = [database, key, _migrations(engine)]
    if database.ok:
        checks.append(_incarnation(app))
    return checks


def _incarnation(app: Flask) -> Check:
    try:
        with session_scope(app) as s:
            inc = current_incarnation(s)
            detail = (
                f"{inc.number} {inc.incarnation_id} since {inc.started_at} ({inc.reason})"
                if inc
                else "none yet"
            )
    except Exception as exc:  # the table is missing before the migration
        return Check("incarnation", False, type(exc).__name__)
    return Check("incarnation", True, detail)


def ready(checks: list[Check]) -> bool:
    """All checks passed."""
    return all(c.ok for c in checks)


@dataclass(frozen=True, slots=True)
class Unseen:
    """An enrolled, unrevoked device that has not reached central for a while."""

    device_id: str
    label: str
    site: str
    last_seen_at: str | None


def unseen_devices(app: Flask, days: int, now: datetime | None = None) -> list[Unseen]:
    """Unrevoked devices whose last contact is older than ``days`` (or that never synced)."""
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat()
    with session_scope(app) as s:
        codes = {site_id: code for site_id, code in s.execute(select(Site.id, Site.code))}
        rows = s.execute(
            select(Device.id, Device.label, Device.site_id, Device.last_seen_at)
            .where(
                Device.revoked_at.is_(None),
                or_(Device.last_seen_at.is_(None), Device.last_seen_at < cutoff),
            )
            .order_by(Device.last_seen_at)
        )
        return [Unseen(d, label, codes.get(site, "?"), seen) for d, label, site, seen in rows]
