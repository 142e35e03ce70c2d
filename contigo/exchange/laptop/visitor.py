"""The laptop side of visitor access: on an enrolled laptop that reaches the central server, a
health worker or supervisor looks a person up by exact Contigo ID and date of birth with a
reason (``POST /sync/v1/visitor``, signed by the device); the central server gives this site
visitor access until an expiry, and the laptop fetches the person's full record with
``POST /sync/v1/snapshot`` and applies it.

The laptop keeps a ``site`` grant with the same expiry, so its scope checks
(:mod:`contigo.auth.scope`) let the site's clinical users open the record until then, and
refuse it afterwards. Nothing of the lookup is kept but the grant, its encrypted reason and the
audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy.orm import Session

from contigo.auth.models import KeyEntry, User
from contigo.auth.scope import CLINICAL_WRITERS
from contigo.errors import ContigoError, ErrorCode, Forbidden
from contigo.exchange.handlers import build_registry
from contigo.exchange.laptop.client import CENTRAL_URL, SIGNING_KEY
from contigo.glass.models import AccessGrant
from contigo.glass.services import Lookup, LookupLocked, NoMatch, add_site_grant
from contigo.persons.models import Person
from contigo.vault import Vault
from sync.client.snapshot import SnapshotFailed, fetch_snapshot
from sync.client.transport import RequestsTransport, Transport, TransportError
from sync.outbox import device_id, get_state

#: ``app.extensions`` key of a ``(session) -> Transport`` factory (tests give an in-process one).
TRANSPORT = "contigo.exchange.laptop.visitor.transport"
TransportFactory = Callable[[Session], Transport]


class CentralUnavailable(ContigoError):
    """The laptop is not enrolled, or the central server cannot be reached or answered
    something else than a grant: nothing was changed here."""

    code = ErrorCode.CENTRAL_UNAVAILABLE
    status = 503
    message_id = "glass.error.central"


def _http_transport(s: Session, v: Vault) -> Transport:
    # Read with the request's own session: SQLite writers hold the file, a second session waits.
    url, entry = get_state(s, CENTRAL_URL), s.get(KeyEntry, SIGNING_KEY)
    if not url or entry is None:
        raise CentralUnavailable()
    key = Ed25519PrivateKey.from_private_bytes(v.outbox_decrypt(SIGNING_KEY, entry.blob))
    return RequestsTransport(url, device_id(s), key, timeout=30.0)


def _ask(transport: Transport, actor: User, lookup: Lookup) -> tuple[str, datetime]:
    body = {
        "contigo_id": lookup.contigo_id,
        "birth_date": lookup.birth_date.isoformat(),
        "reason": lookup.reason,
        "user_id": actor.id,
    }
    try:
        resp = transport.send("POST", "/sync/v1/visitor", body)
    except TransportError:
        raise CentralUnavailable() from None
    if resp.status == 404:
        raise NoMatch()
    if resp.status == 429:
        raise LookupLocked()
    answer = resp.body if isinstance(resp.body, dict) else {}
    try:
        person_id = str(answer["person_id"])
        expires_at = datetime.fromisoformat(str(answer["expires_at"]))
    except (KeyError, ValueError):
        raise CentralUnavailable() from None
    if resp.status != 200 or expires_at.tzinfo is None:
        raise CentralUnavailable()
    return person_id, expires_at


def request_visitor(
    s: Session, app: Flask, v: Vault, actor: User, site_id: str, lookup: Lookup
) -> AccessGrant:
    """Ask the central server for visitor access for ``site_id``, apply the person's snapshot
    and keep the site's grant, all in the caller's transaction (audited as ``glass_grant``).

    Raises :class:`NoMatch` (the same for an unknown ID and a wrong date of birth),
    :class:`LookupLocked`, :class:`CentralUnavailable`, or
    :class:`~contigo.errors.Forbidden` for a role that may not ask.
    """
    if actor.role not in CLINICAL_WRITERS or site_id not in actor.site_ids:
        raise Forbidden()
    factory: TransportFactory | None = app.extensions.get(TRANSPORT)
    transport = factory(s) if factory is not None else _http_transport(s, v)
    person_id, expires_at = _ask(transport, actor, lookup)
    try:
        fetch_snapshot(s, transport, build_registry(v), (person_id,), v.outbox_encrypter())
    except (SnapshotFailed, TransportError):
        raise CentralUnavailable() from None
    if s.get(Person, person_id) is None:
        raise CentralUnavailable()
    return add_site_grant(
        s,
        v,
        person_id=person_id,
        site_id=site_id,
        expires_at=expires_at,
        reason=lookup.reason,
        user_id=actor.id,
        action="glass_grant",
    )
