"""Site-scoped changes: what belongs to a site rather than to a person (the user directory).

They share the one ``server_seq`` counter and the one pull log with person changes, so the
cursor and its no-gap guarantee cover them unchanged; pull sends a row with ``site_id`` only to
devices of that site (:mod:`sync.server.changelog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from sync.merge import canonical
from sync.models import SyncChange
from sync.protocol import ChangeKind
from sync.server import ServerConfig, integrity, iso
from sync.server.apply import lock_counter

ORIGIN = "central"


def emit_site_change(
    s: Session,
    cfg: ServerConfig,
    *,
    site_id: str,
    entity_type: str,
    entity_id: str,
    body: Mapping[str, Any],
    now_ms: int,
) -> int:
    """Append a ``directory`` change for the devices of ``site_id`` in the caller's transaction
    and return its seq.

    Keeps: the seq comes from the locked ``server_seq`` counter (held until the caller commits),
    so site changes, like push batches, are numbered in commit order and a pull never skips one;
    the body is sealed with the server's key at rest.
    """
    counter = lock_counter(s)
    counter.value += 1
    seq = counter.value
    payload = {"body": dict(body), "fields": {}}
    s.add(
        SyncChange(
            server_seq=seq,
            person_id=None,
            site_id=site_id,
            entity_type=entity_type,
            entity_id=entity_id,
            kind=ChangeKind.DIRECTORY.value,
            fields=None,
            payload_enc=cfg.seal(
                integrity.change_aad(seq, None, site_id), canonical(payload).encode()
            ),
            origin_op_id=None,
            origin_device_id=ORIGIN,
            hlc=cfg.clock.now().encode(),
            committed_at=iso(now_ms),
        )
    )
    s.flush()
    return seq
