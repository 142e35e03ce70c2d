"""Sites as the wire carries them: by code (site ids differ between instances), with the name,
country, kind and elevation a receiving instance needs to create one it does not know yet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.sites.models import SITE_KINDS, Site
from sync.handlers import InvalidOp
from sync.server import batchcache


def site_descriptor(s: Session, site_id: str) -> dict[str, Any]:
    """A site as the wire carries it (by code); made once per session and site (a push batch
    names the same site on nearly every op)."""
    made: dict[str, dict[str, Any]] = s.info.setdefault("contigo_site_descriptors", {})
    found = made.get(site_id)
    if found is not None:
        return dict(found)
    site = s.get(Site, site_id)
    if site is None:
        raise InvalidOp({"site": ["unknown site"]})
    made[site_id] = {
        "code": site.code,
        "name": site.name,
        "country": site.country,
        "kind": site.kind,
        "elevation_m": site.elevation_m,
    }
    return dict(made[site_id])


def ensure_site(s: Session, desc: Any) -> Site:
    """The local site with the descriptor's code, created from it when unknown here."""
    if not isinstance(desc, dict) or not isinstance(desc.get("code"), str):
        raise InvalidOp({"site": ["required"]})
    cache = batchcache.current(s)  # a push batch: held while exact (dropped on any rollback)
    held: dict[str, Site] = cache.memo("contigo.sites", dict) if cache is not None else {}
    if desc["code"] in held:
        return held[desc["code"]]
    # A pulled page names the same site on nearly every change: remember the id per session
    # and find the row in the identity map (a rolled-back savepoint drops it: then query).
    known: dict[str, str] = s.info.setdefault("contigo_site_ids", {})
    cached = known.get(desc["code"])
    site = s.get(Site, cached) if cached else None
    if site is not None and site.code == desc["code"]:
        held[site.code] = site
        return site
    site = s.scalar(select(Site).where(Site.code == desc["code"]))
    if site is None:
        kind = desc.get("kind") if desc.get("kind") in SITE_KINDS else "mobile_unit"
        site = Site(
            code=desc["code"][:32],
            name=str(desc.get("name") or desc["code"])[:120],
            country=str(desc.get("country") or "")[:2].upper(),
            kind=kind,
            elevation_m=int(desc.get("elevation_m") or 0),
        )
        s.add(site)
        s.flush()
    known[site.code] = site.id
    held[site.code] = site
    return site


def site_directory(s: Session) -> list[dict[str, Any]]:
    """Every site as ``hello`` carries it, so laptops can choose a destination."""
    return [
        {
            "code": site.code,
            "name": site.name,
            "country": site.country,
            "kind": site.kind,
            "elevation_m": site.elevation_m,
        }
        for site in s.scalars(select(Site).order_by(Site.code))
    ]
