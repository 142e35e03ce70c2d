"""Contigo's hooks for the sync engine's transfers and scope changes.

On the central server: site codes to ids and back, and the person's owner column. On a laptop:
the owner column by site code, the purge of a person that left the site's scope (its rows and
its data key: a crypto-shred), the sites directory that ``hello`` carries, and the site grant
that lets the site's users read a person it visits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from contigo.encounters.models import Encounter, EncounterVoid
from contigo.episodes.models import Appointment, CareEpisode
from contigo.exchange.extensions import SyncExtension, laptop_site_code, server_config
from contigo.glass.models import AccessGrant
from contigo.persons.models import Person, PersonIndex
from contigo.sites.models import Site
from contigo.sites.wire import ensure_site
from contigo.vault import Vault
from sync.client import scope as client_scope
from sync.handlers import HandlerRegistry
from sync.models import FieldVersion, ReviewItem
from sync.server import transfers as server_transfers
from sync.transfer_models import PersonTransfer

_APPEND_ONLY = ("encounters", "encounter_voids")


def site_id_for_code(s: Session, code: str) -> str | None:
    """The id of the active site with ``code`` on this instance."""
    return s.scalar(select(Site.id).where(Site.code == code))


def site_code_of(s: Session, site_id: str) -> str | None:
    """The code of a site of this instance."""
    site = s.get(Site, site_id)
    return site.code if site is not None else None


def set_owner(s: Session, person_id: str, site_code: str) -> None:
    """Make the site with ``site_code`` the person's owner here (the site is created from the
    code when this instance does not know it yet). A person not held here is left alone."""
    person = s.get(Person, person_id)
    if person is None:
        return
    site = ensure_site(s, {"code": site_code})
    if person.owning_site_id != site.id:
        person.owning_site_id = site.id
        s.flush()


def store_sites(s: Session, sites: list[dict[str, Any]]) -> None:
    """Add the sites of the directory this laptop does not know yet (known ones are kept: this
    laptop's own sites are managed here)."""
    for desc in sites:
        if isinstance(desc.get("code"), str) and desc["code"]:
            ensure_site(s, desc)


def purger(vault: Vault) -> Any:
    """A purge of one person (and its children's link to it) for ``vault``'s laptop."""

    def purge(s: Session, person_id: str) -> None:
        person = s.get(Person, person_id)
        if person is None:
            return
        if s.scalar(select(Person.id).where(Person.mother_id == person_id).limit(1)):
            return  # a child still held here links to her: kept until the child leaves too
        encounters = select(Encounter.id).where(Encounter.person_id == person_id)
        episodes = select(CareEpisode.id).where(CareEpisode.person_id == person_id)
        _without_append_only_guard(s, True)
        s.execute(delete(Appointment).where(Appointment.person_id == person_id))
        s.execute(delete(EncounterVoid).where(EncounterVoid.encounter_id.in_(encounters)))
        s.execute(
            delete(Encounter)
            .where(Encounter.person_id == person_id)
            .where(Encounter.supersedes_id.isnot(None))
        )
        s.execute(delete(Encounter).where(Encounter.person_id == person_id))
        _without_append_only_guard(s, False)
        s.execute(
            delete(FieldVersion).where(
                or_(
                    FieldVersion.entity_id == person_id,
                    FieldVersion.entity_id.in_(episodes),
                )
            )
        )
        s.execute(delete(CareEpisode).where(CareEpisode.person_id == person_id))
        s.execute(delete(ReviewItem).where(ReviewItem.person_id == person_id))
        s.execute(delete(PersonTransfer).where(PersonTransfer.person_id == person_id))
        s.execute(delete(PersonIndex).where(PersonIndex.person_id == person_id))
        # This laptop's record of a visit that has ended (who asked and why stays audited)
        s.execute(delete(AccessGrant).where(AccessGrant.person_id == person_id))
        s.execute(delete(Person).where(Person.id == person_id))
        vault.shred(person_id)
        vault.unindex_person(person_id)
        s.flush()

    return purge


def visit_noter(vault: Vault) -> Any:
    """The laptop's copy of a visit the central server announced with a scope addition: a
    ``site`` grant to the person for this laptop's site until the visit ends, so the site's
    clinical users may read it (as after a visitor lookup made here). Audited, idempotent;
    returns False while the person is not on this laptop."""
    from contigo.glass.services import add_site_grant

    def note(s: Session, person_id: str, expires_at: str) -> bool:
        if s.get(Person, person_id) is None:
            return False
        site_id = site_id_for_code(s, laptop_site_code(s) or "")
        try:
            until = datetime.fromisoformat(expires_at).astimezone(UTC)
        except ValueError:
            return True  # unreadable: nothing to keep
        if site_id is None:
            return True
        held = s.scalar(
            select(AccessGrant.id).where(
                AccessGrant.person_id == person_id,
                AccessGrant.kind == "site",
                AccessGrant.site_id == site_id,
                AccessGrant.expires_at >= until,
            )
        )
        if held is not None:
            return True
        add_site_grant(
            s,
            vault,
            person_id=person_id,
            site_id=site_id,
            expires_at=until,
            reason="",
            user_id=None,
            action="visit_received",
        )
        return True

    return note


def _without_append_only_guard(s: Session, off: bool) -> None:
    """Lift (``off``) or restore the laptop's append-only triggers, inside the purge's own
    transaction, so only a purge of a person out of scope ever deletes an encounter."""
    if s.get_bind().dialect.name != "sqlite":
        return
    for table in _APPEND_ONLY:
        if off:
            s.connection().exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        else:
            s.connection().exec_driver_sql(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'append-only'); END"
            )


def install(registry: HandlerRegistry, vault: Vault) -> None:
    """Give ``registry`` Contigo's transfer hooks (server side and device side)."""
    server = server_transfers.hooks(registry)
    server.site_id_for_code, server.site_code_of = site_id_for_code, site_code_of
    server.set_owner = set_owner
    device = client_scope.hooks(registry)
    device.set_owner, device.store_sites = set_owner, store_sites
    device.purge_person = purger(vault)
    device.note_visit = visit_noter(vault)
    registry.declare_type("person_transfer", since_schema=2)


def install_central(app: Flask) -> None:
    """Central mode: the configurable grace period and the post-transfer-write finder."""
    from sync.server.review import hooks as review_hooks

    registry = server_config(app).registry
    found = server_transfers.hooks(registry)
    found.grace_days = int(app.config["TRANSFER_GRACE_DAYS"])
    found.visitor_days = int(app.config["TRANSFER_VISITOR_DAYS"])
    finders = review_hooks(registry).finders
    if server_transfers.post_transfer_writes not in finders:
        finders.append(server_transfers.post_transfer_writes)


EXTENSION = SyncExtension("transfers", install=install, central=install_central)
