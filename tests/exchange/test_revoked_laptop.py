"""A revoked laptop's data is unreadable (issue 10.5, DESIGN.md §4), over a real central.

Central revokes the laptop; the laptop learns it at its next sync and destroys every user's copy
of the master key. From then on the right password opens nothing (a clear message, in the
user's language), while the unsent ops stay in the outbox, encrypted, and central's key opens
them through the recovery copy sealed at enrolment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select

from contigo import create_app
from contigo.auth.models import KeyEntry, User
from contigo.db import session_scope
from contigo.i18n import translate
from contigo.recovery import RECOVERY_ENTRY, open_recovery_copy
from contigo.vault import get_vault
from sync.models import OutboxOp
from sync.outbox import device_id
from tests.conftest import csrf_of
from tests.exchange.live import (
    FAST,
    PASSWORD,
    Central,
    Laptop,
    module_central,
    one_line,
    record_visit,
    register_child,
    site_laptops,
)

pytestmark = pytest.mark.slow


central = module_central("live")


laptops = site_laptops()


def _restarted(laptop: Laptop) -> object:
    """A new app over the laptop's folder, as after a restart (starts locked)."""
    return create_app(
        {
            "INSTANCE_PATH": str(laptop.instance),
            "IDLE_WATCH": False,
            "TESTING": True,
            "SCRYPT_N": int(FAST["CONTIGO_SCRYPT_N"]),
        }
    )


def test_revoked_laptop_opens_for_no_password_and_keeps_its_outbox_for_central(
    central: Central, laptops: Callable[[str], Laptop]
) -> None:
    a = laptops("a")
    pid = register_child(a.app)
    assert a.sync().exit_code == 0
    visit = record_visit(a.app, pid)
    pending = [op.op_id for op in a.outbox() if op.state == "pending"]
    assert len(pending) == 1
    dev = a.device_id
    with session_scope(a.app) as s:  # enrolment sealed a recovery copy to central's key
        assert s.get(KeyEntry, RECOVERY_ENTRY) is not None
    assert central.cli("device", "revoke", dev).exit_code == 0

    learned = a.sync()  # the laptop learns it is revoked

    assert learned.exit_code != 0 and "401" in one_line(learned)
    # Every user's copy of the master key is gone: nothing on the laptop opens it any more.
    with session_scope(a.app) as s:
        assert [u.wrapped_master_key for u in s.scalars(select(User))] == [None] * len(
            list(s.scalars(select(User)))
        )
    again = a.sync()
    assert again.exit_code != 0
    assert one_line(again).endswith(translate("cipher.revoked", lang="es"))

    app = _restarted(a)
    client = app.test_client()  # type: ignore[attr-defined]
    for lang in ("es", "pt", "en"):
        token = csrf_of(client)
        local = {"base_url": "http://localhost"}
        client.post("/language", data={"lang": lang, "csrf_token": token}, **local)
        form = {"username": "sup", "password": PASSWORD, "csrf_token": token}
        page = client.post("/login", data=form, **local)
        assert page.status_code == 401
        assert str(escape(translate("cipher.revoked", lang=lang))) in page.get_data(as_text=True)
        assert not get_vault(app).is_unlocked  # type: ignore[arg-type]
        # The records behind the login stay closed: the home page sends back to the login.
        assert client.get("/", **local).status_code == 302
    api = client.post("/api/v1/auth/token", json={"username": "sup", "password": PASSWORD}, **local)
    assert api.status_code == 403
    assert api.get_json()["error"]["code"] == "E206_device_revoked"

    # The outbox is still there, encrypted, and central's key opens it.
    with session_scope(app) as s:  # type: ignore[arg-type]
        rows = list(s.scalars(select(OutboxOp).order_by(OutboxOp.local_seq)))
        assert [op.op_id for op in rows if op.state == "pending"] == pending
        assert all(visit.encode() not in op.payload_enc for op in rows)
        entry = s.get(KeyEntry, RECOVERY_ENTRY)
        assert entry is not None
        central_master = get_vault(central.app).master_for_sealing()
        master = open_recovery_copy(central_master, entry.blob, device_id(s))
        assert len(master) == 32
    app.extensions["contigo.engine"].dispose()  # type: ignore[attr-defined]
    recovered = central.cli("central", "recover-outbox", "--laptop", str(a.instance))
    assert recovered.exit_code == 0, recovered.output
    ops = [json.loads(line) for line in recovered.stdout.splitlines()]
    assert [op["op_id"] for op in ops if op["state"] == "pending"] == pending
    (op,) = [op for op in ops if op["op_id"] == pending[0]]
    assert op["entity_id"] == visit and op["payload"]["occurred_on"]


def test_recovery_copy_opens_with_no_other_central_key(
    central: Central, laptops: Callable[[str], Laptop], tmp_path: Path
) -> None:
    a = laptops("a")
    with session_scope(a.app) as s:
        entry = s.get(KeyEntry, RECOVERY_ENTRY)
        assert entry is not None
        blob, dev = entry.blob, device_id(s)
    from contigo import crypto

    with pytest.raises(crypto.CryptoError):
        open_recovery_copy(crypto.new_key(), blob, dev)
    with pytest.raises(crypto.CryptoError):  # bound to its device
        open_recovery_copy(get_vault(central.app).master_for_sealing(), blob, "another-device")
