"""Who may see and change what: every access to a person is checked here against role and scope.

- ``health_worker``: persons owned by one of the user's sites; records and registers there.
- ``supervisor``: the same scope, and manages the site's users.
- ``nutrition_lead``: reads every person owned by a site in the user's country; changes nothing.
- ``admin``: sites, users and devices; no clinical record.

A live break-the-glass grant (:mod:`contigo.glass.grants`) adds one person to a clinical user's
reads until it expires, and lets a writer record encounters for them; each use is audited.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.errors import Forbidden
from contigo.glass import grants
from contigo.persons.models import Person
from contigo.sites.models import Site

CLINICAL_WRITERS = frozenset({"health_worker", "supervisor"})
CLINICAL_READERS = CLINICAL_WRITERS | {"nutrition_lead"}


def visible_site_ids(s: Session, user: User) -> set[str]:
    """The sites whose persons ``user`` may read."""
    if user.role in CLINICAL_WRITERS:
        return user.site_ids
    if user.role == "nutrition_lead" and user.country:
        return set(s.scalars(select(Site.id).where(Site.country == user.country)))
    return set()


def persons_query(s: Session, user: User) -> Select[Person]:
    """A query of the persons ``user`` may read (empty for roles without clinical access),
    persons under a live grant included."""
    in_scope = Person.owning_site_id.in_(visible_site_ids(s, user))
    granted = grants.granted_person_ids(s, user)
    return select(Person).where(or_(in_scope, Person.id.in_(granted)) if granted else in_scope)


def readable(s: Session, user: User, ids: Collection[str]) -> dict[str, str]:
    """Of ``ids``, those ``user`` may read (the rule of :func:`persons_query`), with their
    lifecycle. Read by primary key: a few ids among thousands of persons must not be found by
    walking every person of the user's sites."""
    if not ids:
        return {}
    sites = visible_site_ids(s, user)
    rows = s.execute(
        select(Person.id, Person.owning_site_id, Person.lifecycle).where(Person.id.in_(ids))
    ).all()
    outside = any(site not in sites for _pid, site, _life in rows)
    granted = grants.granted_person_ids(s, user) if outside else set()  # only they need one
    return {pid: life for pid, site, life in rows if site in sites or pid in granted}


def check_read(s: Session, user: User, person: Person) -> None:
    """Refuse a read outside the user's scope, unless the person was transferred away from one
    of a writer's sites (it keeps reading what it sent) or a live grant allows it (audited)."""
    if person.owning_site_id in visible_site_ids(s, user):
        return
    if user.role in CLINICAL_WRITERS and _transferred_away(s, user, person):
        return
    grant = grants.live_grant(s, user, person.id)
    if grant is None:
        raise Forbidden()
    grants.audit_use(s, user, grant)


def require_clinical_writer(user: User) -> None:
    """Refuse a clinical form to a role that could never save it (a nutrition lead, an admin):
    refused when the form is asked for, not after it was filled in (issue 15.4)."""
    if user.role not in CLINICAL_WRITERS:
        raise Forbidden()


def check_write(s: Session, user: User, person: Person | None = None, site_id: str = "") -> None:
    """Refuse a clinical write by a role that cannot write, or outside the user's sites
    (recording an encounter is checked by :func:`check_record`)."""
    if user.role not in CLINICAL_WRITERS:
        raise Forbidden()
    target = person.owning_site_id if person is not None else site_id
    if target not in user.site_ids:
        raise Forbidden()


def _transferred_away(s: Session, user: User, person: Person) -> bool:
    from contigo.transfers.access import transferred_away

    return transferred_away(s, user, person) is not None


def check_record(s: Session, user: User, person: Person) -> None:
    """Refuse recording an encounter unless the user may write for the person, the person was
    transferred away from one of the user's sites (late visits are kept, SYNC.md §2.10), or the
    user is a writer holding a live grant for them (a visitor records what they see; the owner
    keeps the rest)."""
    if user.role not in CLINICAL_WRITERS:
        raise Forbidden()
    if person.owning_site_id in user.site_ids or _transferred_away(s, user, person):
        return
    grant = grants.live_grant(s, user, person.id)
    if grant is None:
        raise Forbidden()
    grants.audit_use(s, user, grant)


def check_manage_users(user: User, site_id: str) -> None:
    """Supervisors manage their own site's users; admins manage all."""
    if user.role == "admin":
        return
    if user.role == "supervisor" and site_id in user.site_ids:
        return
    raise Forbidden()
