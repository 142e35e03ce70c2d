"""Central's part of card trust: the ``card_trust`` of its enrolment and ``hello`` answers.

Called by the central sync endpoints (:mod:`contigo.exchange.central.server`) with the device
just enrolled or authenticated; the authority key is derived from the server's master key on
each call (never stored).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.card.trust import Certificate, authority_public, certify
from contigo.sites.models import Site
from sync.models import Device


def card_trust(s: Session, central_master: bytes, device: Device) -> dict[str, Any]:
    """``{"authority", "certificate", "revoked"}`` for ``device``: the authority's public key,
    the device's certificate (its key, site and country, signed by the authority) and every
    revoked device with its revocation time."""
    site = s.get(Site, device.site_id)
    cert = certify(
        central_master,
        Certificate(
            device_id=device.id,
            public_key=bytes(device.public_key),
            site_code=site.code if site is not None else "",
            country=site.country if site is not None else "",
            enrolled_at=int(datetime.fromisoformat(device.enrolled_at).timestamp()),
        ),
    )
    revoked = s.execute(
        select(Device.id, Device.revoked_at)
        .where(Device.revoked_at.is_not(None))
        .order_by(Device.id)
    )
    return {
        "authority": authority_public(central_master),
        "certificate": base64.urlsafe_b64encode(cert).decode(),
        "revoked": [[dev, at] for dev, at in revoked],
    }
