"""How a transfer changes what a laptop's users may do with a person.

After an accepted transfer the old site keeps the person (until the grace period ends and the
sync engine purges it) *read-only apart from recording encounters*: its users may read it and
record visits (which reach the new owner as ``post_transfer_write`` review items), nothing else.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.auth.models import User
from contigo.persons.models import Person
from contigo.sites.models import Site
from sync.transfer_models import PersonTransfer


def site_codes(s: Session, site_ids: set[str]) -> set[str]:
    """The codes of the given sites."""
    if not site_ids:
        return set()
    return set(s.scalars(select(Site.code).where(Site.id.in_(site_ids))))


def transferred_away(s: Session, user: User, person: Person) -> PersonTransfer | None:
    """The accepted transfer that moved ``person`` away from one of ``user``'s sites, if the
    person is no longer owned by any of them."""
    if person.owning_site_id in user.site_ids:
        return None
    return s.scalar(
        select(PersonTransfer)
        .where(
            PersonTransfer.person_id == person.id,
            PersonTransfer.state == "accepted",
            PersonTransfer.from_site_code.in_(site_codes(s, user.site_ids)),
        )
        .order_by(PersonTransfer.updated_seq.desc())
        .limit(1)
    )
