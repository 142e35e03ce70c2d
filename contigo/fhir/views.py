"""The IPS download of a person's record (the API's is ``GET /api/v1/persons/<id>/ips``)."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from contigo import db
from contigo.auth.current import current_site_id, current_user, login_required
from contigo.fhir.services import person_bundle
from contigo.vault import get_vault

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
MEDIA_TYPE = "application/fhir+json"


@bp.get("/persons/<person_id>/ips.json")
@login_required
def download(person_id: str) -> Response:
    """The person's International Patient Summary, as a file to save (scope checked, audited)."""
    bundle = person_bundle(db.session(), get_vault(), current_user(), person_id, current_site_id())
    body = json.dumps(bundle, ensure_ascii=False, indent=1)
    response = Response(body, mimetype=MEDIA_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="ips-{person_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
