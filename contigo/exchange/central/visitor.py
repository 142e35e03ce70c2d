"""``POST /sync/v1/visitor`` on the central server: a laptop's signed visitor request.

The device's signature proves which laptop (and so which site) asks; the laptop has checked its
user's role and sends the user's id for the audit. On success the answer names the person and
the expiry; the laptop then fetches the person with ``POST /sync/v1/snapshot``. A wrong pair is
404 ``E108_no_match`` whichever half is wrong; too many misses from one device, 429.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from werkzeug.exceptions import RequestEntityTooLarge

from contigo.db import session
from contigo.exchange.central.server import _body, _json, _protocol_error, _signed, _too_large
from contigo.glass import services
from contigo.glass.schemas import VisitorRequestSchema
from contigo.schemas import load
from contigo.vault import get_vault
from sync.protocol import ProtocolError

bp = Blueprint("glass_sync", __name__, url_prefix="/sync/v1")
bp.register_error_handler(ProtocolError, _protocol_error)
bp.register_error_handler(RequestEntityTooLarge, _too_large)


@bp.post("/visitor")
def visitor() -> Response:
    """Grant the signing device's site visitor access to the person matching the body."""
    device, raw = _signed()
    data = load(VisitorRequestSchema(), _body(raw))
    grant = services.grant_for_device(
        session(),
        get_vault(),
        device.id,
        device.site_id,
        services.Lookup.from_input(data),
        str(data["user_id"]),
        services.Policy.from_config(current_app.config),
    )
    return _json({"person_id": grant.person_id, "expires_at": services.expiry_text(grant)})
