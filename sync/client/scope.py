"""Scope changes and transfers on the device (SYNC.md §2.7, §2.8, §2.10).

A pull page may carry ``scope: {"add": [...], "remove": [...]}``. Both lists are noted in
``sync_state`` in the same transaction as the page (so a crash loses nothing), and settled after
the pull:

* **add** — the person's full history is fetched with ``POST /sync/v1/snapshot`` and applied
  with the ordinary, version-gated apply (overlap with the feed is harmless);
* **remove** — the person is purged locally (rows and data key: a crypto-shred), but only once
  no outbox op names the person; until then it is kept and retried on every sync;
* **visits** — ``{person_id: expires_at}``: visits of the site that began or were extended
  since the cursor (a visitor lookup, or a transfer sent to it), noted with the page and handed
  to the application once the person is on the laptop, so the site's users may read the
  person until then.

``transfer`` changes upsert the local mirror of ``person_transfers`` and set the person's owner.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sync.client.transport import Transport
from sync.handlers import HandlerRegistry
from sync.models import AckedOp, OutboxOp
from sync.outbox import Encrypt, get_state, set_state
from sync.protocol import (
    MAX_SNAPSHOT_PERSONS,
    Change,
    SnapshotRequest,
    parse_snapshot_response,
    snapshot_changes,
)
from sync.transfer_models import TRANSFER_STATES, PersonTransfer

ADD_KEY = "scope_add_pending"
REMOVE_KEY = "scope_remove_pending"
VISITS_KEY = "scope_visits_pending"
SITES_KEY = "sites"


@dataclass
class ClientHooks:
    """The application's part on the device: set a person's owner by site code, purge a person
    (rows and key), store the sites directory from ``hello``, and note a visit."""

    set_owner: Callable[[Session, str, str], None] | None = None
    purge_person: Callable[[Session, str], None] | None = None
    store_sites: Callable[[Session, list[dict[str, Any]]], None] | None = None
    note_visit: Callable[[Session, str, str], bool] | None = None
    """``(person_id, expires_at)``: the site may read a person it visits until then; returns
    False when the person is not on the laptop (yet)."""
    hello_readers: list[Callable[[Session, dict[str, Any]], None]] = field(default_factory=list)
    """Each is handed the whole ``hello`` answer, in the transaction that stores it (what
    central tells every laptop besides sites: the card authority, revocations)."""


_HOOKS: WeakKeyDictionary[HandlerRegistry, ClientHooks] = WeakKeyDictionary()


def hooks(registry: HandlerRegistry) -> ClientHooks:
    """The device hooks of ``registry`` (created empty on first use)."""
    found = _HOOKS.get(registry)
    if found is None:
        found = _HOOKS[registry] = ClientHooks()
    return found


def _pending(s: Session, key: str) -> list[str]:
    raw = get_state(s, key)
    return list(json.loads(raw)) if raw else []


def _store(s: Session, key: str, ids: list[str]) -> None:
    set_state(s, key, json.dumps(sorted(set(ids))))


def note_scope(s: Session, body: Any) -> None:
    """Note a page's scope changes in the page's transaction. Keeps: a person both removed and
    re-added ends up only in the list named last; nothing noted is lost on a crash."""
    scope = body.get("scope") if isinstance(body, dict) else None
    if not isinstance(scope, dict):
        return
    add = [p for p in scope.get("add") or [] if isinstance(p, str)]
    remove = [p for p in scope.get("remove") or [] if isinstance(p, str)]
    adds, removes = set(_pending(s, ADD_KEY)), set(_pending(s, REMOVE_KEY))
    adds = (adds - set(remove)) | set(add)
    removes = (removes - set(add)) | set(remove)
    _store(s, ADD_KEY, list(adds))
    _store(s, REMOVE_KEY, list(removes))
    visits = scope.get("visits")
    before = _visits(s)
    noted = before | (
        {p: e for p, e in visits.items() if isinstance(e, str)} if isinstance(visits, dict) else {}
    )
    noted = {p: e for p, e in noted.items() if p not in removes}
    if noted != before:
        set_state(s, VISITS_KEY, json.dumps(noted))


def _visits(s: Session) -> dict[str, str]:
    raw = get_state(s, VISITS_KEY)
    found = json.loads(raw) if raw else {}
    return found if isinstance(found, dict) else {}


def note_hello(s: Session, registry: HandlerRegistry, body: Any) -> None:
    """Hand the sites directory of a ``hello`` answer, and the whole answer to its readers, to
    the application."""
    sites = body.get("sites") if isinstance(body, dict) else None
    store = hooks(registry).store_sites
    if isinstance(sites, list) and store is not None:
        store(s, [x for x in sites if isinstance(x, dict)])
    if isinstance(body, dict):
        for read in hooks(registry).hello_readers:
            read(s, body)


ApplyChange = Callable[[Session, HandlerRegistry, Change, Encrypt], object]


def fetch_snapshots(
    sessions: Callable[[], Session],
    transport: Transport,
    registry: HandlerRegistry,
    encrypt: Encrypt,
    apply_change: ApplyChange,
) -> int:
    """Fetch and apply the snapshot of every person noted as added; returns how many.

    Keeps: a person leaves the pending list only in the transaction that applied its snapshot;
    a failed request leaves it pending for the next sync.
    """
    with sessions() as s:
        wanted = _pending(s, ADD_KEY)
    done = 0
    for i in range(0, len(wanted), MAX_SNAPSHOT_PERSONS):
        ids = tuple(wanted[i : i + MAX_SNAPSHOT_PERSONS])
        resp = transport.send("POST", "/sync/v1/snapshot", {"person_ids": list(ids)})
        if resp.status != 200:
            return done
        _as_of, persons = parse_snapshot_response(resp.body, SnapshotRequest(ids))
        changes = snapshot_changes(persons)
        with sessions() as s, s.begin():
            for change in changes:
                apply_change(s, registry, change, encrypt)
            _store(s, ADD_KEY, [p for p in _pending(s, ADD_KEY) if p not in ids])
        done += len(ids)
    return done


def note_visits(s: Session, registry: HandlerRegistry, now: str) -> int:
    """Hand every noted visit whose person is on this laptop to the application; returns how
    many. Keeps: a visit whose person has not arrived yet (its snapshot is still to come)
    stays noted until it does or the visit has ended (``now``, ISO text)."""
    visits = _visits(s)
    note = hooks(registry).note_visit
    if note is None or not visits:
        return 0
    kept, done = {}, 0
    for person_id, expires in visits.items():
        if note(s, person_id, expires):
            done += 1
        elif expires > now:
            kept[person_id] = expires
    set_state(s, VISITS_KEY, json.dumps(kept))
    return done


def purge_removed(s: Session, registry: HandlerRegistry) -> list[str]:
    """Purge every person noted as removed from scope that no outbox op names; returns them.

    Keeps: a person with any op still in the outbox (pending, deferred or rejected) is kept and
    stays noted, so an unsent clinical write is never destroyed with its person.
    """
    purge = hooks(registry).purge_person
    removes = _pending(s, REMOVE_KEY)
    if purge is None or not removes:
        return []
    purged = []
    for person_id in removes:
        waiting = s.scalar(
            select(func.count()).select_from(OutboxOp).where(OutboxOp.person_id == person_id)
        )
        if waiting:
            continue
        purge(s, person_id)
        # Acknowledged ops kept for a restore of central hold the person's values too.
        s.execute(delete(AckedOp).where(AckedOp.person_id == person_id))
        purged.append(person_id)
    _store(s, REMOVE_KEY, [p for p in removes if p not in purged])
    return purged


def apply_transfer(s: Session, registry: HandlerRegistry, change: Change, encrypt: Encrypt) -> bool:
    """Upsert the mirror of a transfer from a ``transfer`` change; returns False if malformed.

    Keeps: the mirror only moves forward (an older change is ignored); the person's owner is set
    from the newest change even when the person arrives later in the same snapshot replay.
    """
    body = (change.data or {}).get("body")
    if not isinstance(body, dict) or body.get("id") != change.entity_id:
        return False
    if body.get("state") not in TRANSFER_STATES or not isinstance(body.get("person_id"), str):
        return False
    row = s.get(PersonTransfer, change.entity_id)
    if row is not None and row.updated_seq > change.seq:
        return True
    if row is None:
        row = PersonTransfer(id=change.entity_id)
        s.add(row)
    row.person_id = body["person_id"]
    row.from_site_code = str(body.get("from_site") or "")
    row.to_site_code = str(body.get("to_site") or "")
    row.state = body["state"]
    row.base_owner_op_id = body.get("base_owner_op_id")
    row.requested_op_id = str(body.get("requested_op_id") or "")
    row.decided_op_id = body.get("decided_op_id")
    row.requested_by = body.get("requested_by")
    row.initiator = "to" if body.get("initiator") == "to" else "from"
    row.requested_hlc = str(body.get("requested_hlc") or "")
    row.requested_at = str(body.get("requested_at") or "")
    row.decided_at = body.get("decided_at")
    row.updated_seq = change.seq
    reason = str(body.get("reason") or "").encode()
    row.reason_enc = encrypt(reason_aad(row.id), reason)
    s.flush()
    owner, set_owner = body.get("owner_site"), hooks(registry).set_owner
    if isinstance(owner, str) and set_owner is not None:
        set_owner(s, row.person_id, owner)
    return True


def reason_aad(transfer_id: str) -> str:
    """The AAD binding a transfer's encrypted reason to its row (same text on every side)."""
    return f"person_transfers:{transfer_id}:reason"
