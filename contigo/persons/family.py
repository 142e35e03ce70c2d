"""Registering a child into a family (issue 15.3): what a child shares with the mother, the
sites a registration may belong to, and the mother found by name from inside the form."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.persons import services
from contigo.persons.services import PersonView
from contigo.sites.models import Site
from contigo.vault import Vault

#: What a child usually shares with the mother, pre-filled from her record (each can be changed).
FAMILY_SHARED = ("family_names", "address", "phone", "nationality", "population_type")
#: Shared fields the mother's value replaces even when the form already holds one: the form's
#: default population type is a guess, the mother's is what the family is.
ALWAYS_FROM_MOTHER = ("population_type",)
#: Mothers a search inside the form lists (the rest: a more precise name or her Contigo ID).
MOTHER_RESULTS = 8


def shared_values(mother: PersonView) -> dict[str, str]:
    """The mother's values of :data:`FAMILY_SHARED`, as form text."""
    return {name: str(getattr(mother, name) or "") for name in FAMILY_SHARED}


def fill_from_mother(values: dict[str, object], mother: PersonView) -> None:
    """Fill what the family shares into ``values`` where nothing was typed yet."""
    for name, value in shared_values(mother).items():
        if name in ALWAYS_FROM_MOTHER or not str(values.get(name) or "").strip():
            values[name] = value


def site_choices(s: Session, user: User) -> list[tuple[str, str]]:
    """The sites ``user`` works at, named, for the registration's site (several sites only)."""
    rows = s.execute(select(Site.id, Site.name).where(Site.id.in_(user.site_ids)))
    return sorted(((sid, name) for sid, name in rows), key=lambda row: row[1])


def default_site(user: User, current: str, mother: PersonView | None) -> str:
    """The mother's site when the user works there, else the site the user works at now."""
    if mother is not None and mother.owning_site_id in user.site_ids:
        return mother.owning_site_id
    return current


def chosen_site(user: User, typed: str, current: str) -> str:
    """The site a registration belongs to: one the user works at, else a field error."""
    site_id = typed.strip() or current
    if site_id not in user.site_ids:
        raise ValidationFailed(fields={"site_id": [translate("field2.register.site_not_yours")]})
    return site_id


def mothers_matching(s: Session, v: Vault, user: User, query: str) -> list[PersonView]:
    """Women the user may read whose name, Contigo ID, document or phone matches ``query``."""
    if not query.strip():
        raise ValidationFailed(fields={"mother_query": [translate("field2.mother.query_empty")]})
    found = services.search(s, v, user, query, limit=MOTHER_RESULTS * 3)
    return [p for p in found if p.kind == "woman"][:MOTHER_RESULTS]
