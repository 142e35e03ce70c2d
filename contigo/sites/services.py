"""Creating and listing sites."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.sites.models import SITE_KINDS, Site

COUNTRIES = ("CO", "EC", "PE", "PA", "BR", "VE", "CL")


def add_site(
    s: Session,
    *,
    code: str,
    name: str,
    country: str,
    kind: str = "mobile_unit",
    elevation_m: int = 0,
) -> Site:
    """Add a site; its country chooses the classification profile of encounters there."""
    errors: dict[str, list[str]] = {}
    if country.upper() not in COUNTRIES:
        errors["country"] = [translate("v.choice")]
    if kind not in SITE_KINDS:
        errors["kind"] = [translate("v.choice")]
    if not -500 <= elevation_m <= 6000:
        errors["elevation_m"] = [translate("v.range", min=-500, max=6000)]
    if s.scalar(select(Site.id).where(Site.code == code)):
        errors["code"] = [translate("v.code_taken")]
    if errors:
        raise ValidationFailed(fields=errors)
    site = Site(code=code, name=name, country=country.upper(), kind=kind, elevation_m=elevation_m)
    s.add(site)
    s.flush()
    return site


def by_code(s: Session, code: str) -> Site | None:
    """The site with ``code``."""
    return s.scalar(select(Site).where(Site.code == code))


def all_sites(s: Session) -> list[Site]:
    """Every site, by country and name."""
    return list(s.scalars(select(Site).order_by(Site.country, Site.name)))
