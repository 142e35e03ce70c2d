"""A dead laptop's unsent ops, brought to central from its disk (``contigo recover --from``).

The administrator holds central's key, which opens the laptop's recovery copy (sealed to it at
enrolment, :mod:`contigo.recovery`) and so the laptop's database. The ops still in its outbox
are then pushed to central exactly as the laptop would have pushed them (the laptop's own sync
engine, over a transport that hands each batch straight to central's apply as that device):

* they are **that device's ops**: same op ids, HLCs, bases and authors, under its device id;
* they are **authorised as at the time they were recorded**: central applies them even if the
  device has since been revoked, except ops recorded (by their HLC) after the revocation,
  which no one was allowed to make and which are refused and counted;
* **nothing is duplicated**: central's op-id ledger replays the stored result of every op that
  had already arrived.

The folder given is never written: its files are copied to a temporary folder first.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from contigo.db import session_scope
from contigo.errors import ValidationFailed
from contigo.exchange.extensions import server_config
from contigo.exchange.handlers import build_registry
from contigo.i18n import translate
from contigo.recovery import open_laptop
from contigo.vault import Vault, get_vault
from sync import fastjson
from sync.client.engine import SyncEngine, SyncReport
from sync.client.transport import Response
from sync.hlc import HLC
from sync.models import Device, OutboxOp
from sync.protocol import parse_push
from sync.server import apply as push_apply
from sync.server import wall_ms

REFUSED = "recorded after the device was revoked"


@dataclass
class Recovered:
    """What a recovery did."""

    device_id: str
    sent: int = 0
    results: Counter[str] = field(default_factory=Counter)
    already_on_central: int = 0
    refused_after_revocation: int = 0


class CentralDirect:
    """A transport that hands pushes straight to central's apply, as one device (the
    administrator's authority replaces the device's signature)."""

    def __init__(self, app: Flask, device_id: str, recovered: Recovered) -> None:
        self.app = app
        self.device_id = device_id
        self.recovered = recovered

    def send(self, method: str, path: str, body: Any = None) -> Response:
        if (method, path) != ("POST", "/sync/v1/push"):
            return Response(404, None)
        batch = parse_push(body)
        with session_scope(self.app) as s:
            device = s.get(Device, self.device_id)
            assert device is not None
            reply = push_apply.apply_batch(s, server_config(self.app), device, batch, wall_ms())
        for result in reply["results"]:
            self.recovered.results[str(result["status"])] += 1
            self.recovered.already_on_central += 1 if result.get("replayed") else 0
        return Response(200, fastjson.loads(fastjson.dumps(reply)))


def _copy(folder: Path, into: Path) -> Path:
    """The top-level files of an instance folder (database, WAL, keystore) copied to ``into``."""
    into.mkdir()
    for item in folder.iterdir():
        if item.is_file():
            shutil.copy2(item, into / item.name)
    return into


def _refuse_after(sessions: sessionmaker[Any], revoked_at: str | None) -> int:
    """Mark rejected (in the copy) the pending ops recorded after ``revoked_at``."""
    if revoked_at is None:
        return 0
    cutoff = int(datetime.fromisoformat(revoked_at).timestamp() * 1000)
    refused = 0
    with sessions() as s, s.begin():
        for op in s.scalars(select(OutboxOp).where(OutboxOp.state.in_(("pending", "deferred")))):
            if HLC.decode(op.hlc).wall_ms > cutoff:
                op.state, op.last_error = "rejected", REFUSED
                refused += 1
    return refused


def recover_from(app: Flask, folder: Path) -> Recovered:
    """Push the unsent ops of the laptop whose instance folder (or a copy of it) is
    ``folder`` to central ``app``, as that laptop's. Raises ``FileNotFoundError`` without a
    laptop database, ``crypto.CryptoError`` when central's key does not open it, and
    :class:`ValidationFailed` for a device central never enrolled."""
    with tempfile.TemporaryDirectory(prefix="contigo-recover-") as tmp:
        laptop = open_laptop(
            _copy(folder, Path(tmp) / "laptop"), get_vault(app).master_for_sealing()
        )
        vault = Vault()
        try:
            with session_scope(app) as s:
                device = s.get(Device, laptop.device_id)
                if device is None:
                    raise ValidationFailed(
                        fields={"from": [translate("ops.recover.unknown_device")]}
                    )
                revoked_at = device.revoked_at
            recovered = Recovered(device_id=laptop.device_id)
            sessions = sessionmaker(bind=laptop.engine, expire_on_commit=False)
            recovered.refused_after_revocation = _refuse_after(sessions, revoked_at)
            vault.unlock_with_key(laptop.master)
            engine = SyncEngine(
                sessions,
                CentralDirect(app, laptop.device_id, recovered),
                build_registry(vault),
                decrypt=vault.outbox_decrypt,
                encrypt=vault.outbox_encrypter(),
            )
            report = SyncReport()
            engine.push(report)
            recovered.sent = report.pushed
            return recovered
        finally:
            vault.lock()
            laptop.engine.dispose()
