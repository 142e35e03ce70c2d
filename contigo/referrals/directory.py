"""The directory of outside facilities: kept on the central server, one list per country, and
sent to every laptop as site-scoped ``facility`` changes (:mod:`sync.server.directory`), so a
laptop offline for weeks can still refer to a hospital across the border.

Facilities travel by code (ids differ between instances). A referral that names a facility a
laptop has not received yet creates it from the referral's descriptor; the directory's entry
completes it when it arrives (:func:`apply_facility`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.errors import ValidationFailed
from contigo.exchange.extensions import server_config
from contigo.i18n import translate
from contigo.referrals.models import FACILITY_KINDS, Facility
from contigo.sites.models import Site
from sync.handlers import InvalidOp
from sync.server.directory import emit_site_change

ENTITY_TYPE = "facility"
COUNTRIES = ("CO", "EC", "PE", "VE", "BR", "PA", "CL", "BO")


def descriptor(facility: Facility) -> dict[str, Any]:
    """A facility as the wire carries it."""
    return {
        "code": facility.code,
        "country": facility.country,
        "name": facility.name,
        "kind": facility.kind,
        "inpatient": facility.inpatient,
        "place": facility.place,
        "serves": serves(facility),
        "priority": facility.priority,
        "active": facility.active,
    }


def serves(facility: Facility) -> list[str]:
    """The codes of the sites for which ``facility`` is the first choice."""
    found = json.loads(facility.serves or "[]")
    return [str(code) for code in found] if isinstance(found, list) else []


def _fill(facility: Facility, desc: Mapping[str, Any]) -> None:
    kind = desc.get("kind")
    facility.code = str(desc["code"])[:32]
    facility.country = str(desc.get("country") or "")[:2].upper()
    facility.name = str(desc.get("name") or desc["code"])[:160]
    facility.kind = kind if kind in FACILITY_KINDS else "health_centre"
    facility.inpatient = desc.get("inpatient") is True
    facility.place = str(desc.get("place") or "")[:120]
    codes = desc.get("serves")
    facility.serves = json.dumps([str(c) for c in codes] if isinstance(codes, list) else [])
    priority = desc.get("priority")
    facility.priority = priority if isinstance(priority, int) else 100
    facility.active = desc.get("active") is not False


def ensure_facility(s: Session, desc: Any) -> Facility:
    """The local facility with the descriptor's code, created from it when unknown here."""
    if not isinstance(desc, Mapping) or not isinstance(desc.get("code"), str) or not desc["code"]:
        raise InvalidOp({"to_facility": ["required"]})
    found = s.scalar(select(Facility).where(Facility.code == desc["code"]))
    if found is None:
        found = Facility()
        _fill(found, desc)
        s.add(found)
        s.flush()
    return found


def apply_facility(s: Session, seq: int, entity_id: str, body: Mapping[str, Any]) -> None:
    """Apply one directory entry on a laptop. Keeps: entries apply in seq order only (an older
    or replayed one is a no-op); a facility made from a referral's descriptor is completed."""
    if not isinstance(body.get("code"), str) or not body["code"]:
        raise InvalidOp({"code": ["required"]})
    found = s.scalar(select(Facility).where(Facility.code == body["code"]))
    if found is not None and found.directory_seq is not None and found.directory_seq >= seq:
        return
    if found is None:
        found = Facility()
        s.add(found)
    _fill(found, body)
    found.directory_seq = seq
    s.flush()


def facilities(s: Session, country: str | None = None, *, active: bool = True) -> list[Facility]:
    """The directory (of one country), inpatient facilities first, then by priority and name."""
    query = select(Facility)
    if country:
        query = query.where(Facility.country == country)
    if active:
        query = query.where(Facility.active.is_(True))
    rows = s.scalars(query.order_by(Facility.country, Facility.priority, Facility.name))
    return list(rows)


def nearest_inpatient(s: Session, site: Site) -> Facility | None:
    """The inpatient facility a complicated SAM from ``site`` is sent to: of the site's
    country's directory, one that lists the site as served first, then by priority."""
    candidates = [f for f in facilities(s, site.country) if f.inpatient]
    candidates.sort(key=lambda f: (site.code not in serves(f), f.priority, f.name))
    return candidates[0] if candidates else None


def save_facility(s: Session, desc: Mapping[str, Any], *, actor_id: str | None) -> Facility:
    """Add or update a facility of the directory (on the central server), checked, audited,
    and sent to every site's laptops. Raises :class:`ValidationFailed` naming the field."""
    errors: dict[str, list[str]] = {}
    code = str(desc.get("code") or "").strip().upper()
    if not code or len(code) > 32:
        errors["code"] = [translate("v.length", min=1, max=32)]
    if str(desc.get("country") or "").upper() not in COUNTRIES:
        errors["country"] = [translate("referrals.v.country")]
    if not str(desc.get("name") or "").strip():
        errors["name"] = [translate("v.required")]
    if desc.get("kind") not in FACILITY_KINDS:
        errors["kind"] = [translate("referrals.v.kind")]
    if errors:
        raise ValidationFailed(fields=errors)
    facility = s.scalar(select(Facility).where(Facility.code == code))
    if facility is None:
        facility = Facility()
        s.add(facility)
    _fill(facility, {**desc, "code": code, "name": str(desc["name"]).strip()})
    s.flush()
    audit(
        s,
        user_id=actor_id,
        action="facility_save",
        entity_type="facility",
        entity_id=facility.id,
    )
    publish(s, [facility])
    return facility


def publish(s: Session, rows: list[Facility], site_ids: list[str] | None = None) -> int:
    """On the central server, append ``rows`` to the directory feed of every site (or of
    ``site_ids``: a site added later is sent the whole directory with ``site_ids=[its id]``).
    Elsewhere a no-op. Returns the number of changes written."""
    if current_app.config["CONTIGO_MODE"] != "central":
        return 0
    cfg = server_config(current_app)
    now_ms = time.time_ns() // 1_000_000
    targets = site_ids if site_ids is not None else list(s.scalars(select(Site.id)))
    written = 0
    for site_id in sorted(targets):
        for facility in rows:
            emit_site_change(
                s,
                cfg,
                site_id=site_id,
                entity_type=ENTITY_TYPE,
                entity_id=facility.id,
                body=descriptor(facility),
                now_ms=now_ms,
            )
            written += 1
    return written
