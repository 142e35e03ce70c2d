"""The laptop side of sync: enrolment with the central server and sync runs.

The device's Ed25519 private key is stored only encrypted under a key derived from the master
key, so the laptop must be unlocked to enrol or sync.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask

from contigo.auth.models import KeyEntry
from contigo.db import session_scope
from contigo.sites.services import by_code
from contigo.sync_handlers import build_registry
from contigo.vault import Vault, get_vault
from sync.client.engine import SyncEngine, SyncFailed, SyncReport
from sync.client.transport import RequestsTransport, Transport
from sync.outbox import device_id, get_state, set_state

SIGNING_KEY = "device_signing_key"
CENTRAL_URL = "central_url"
SITE_CODE = "site_code"


def _raw(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


Post = Callable[[str, dict[str, Any]], tuple[int, Any]]


def _requests_post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    try:
        resp = requests.post(url, json=body, timeout=30)
    except requests.RequestException as exc:
        raise SyncFailed(f"central server unreachable ({type(exc).__name__})") from exc
    return resp.status_code, resp.json() if resp.status_code == 200 else None


def enrol_laptop(
    app: Flask, *, central_url: str, code: str, label: str = "laptop", post: Post | None = None
) -> str:
    """Create this laptop's key pair and register it with a one-time code; returns the site
    code. The vault must be unlocked. Nothing is stored unless the server accepts."""
    vault = get_vault(app)
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    with session_scope(app) as s:
        if get_state(s, CENTRAL_URL):
            raise SyncFailed("this laptop is already enrolled")
        dev = device_id(s)
    body = {
        "code": code,
        "device_id": dev,
        "label": label,
        "public_key": base64.urlsafe_b64encode(public).decode(),
    }
    status, answer = (post or _requests_post)(central_url.rstrip("/") + "/sync/v1/enrol", body)
    if status != 200:
        raise SyncFailed(f"enrolment refused (HTTP {status})")
    site_code = str(answer["site_code"])
    with session_scope(app) as s:
        if by_code(s, site_code) is None:
            raise SyncFailed(f"this laptop has no site {site_code}")
        blob = vault.outbox_encrypter()(SIGNING_KEY, _raw(private))
        s.add(KeyEntry(name=SIGNING_KEY, blob=blob))
        set_state(s, CENTRAL_URL, central_url.rstrip("/"))
        set_state(s, SITE_CODE, site_code)
    return site_code


def signing_key(app: Flask) -> tuple[str, str, Ed25519PrivateKey]:
    """``(device id, central URL, private key)`` of an enrolled, unlocked laptop."""
    vault = get_vault(app)
    with session_scope(app) as s:
        url, entry = get_state(s, CENTRAL_URL), s.get(KeyEntry, SIGNING_KEY)
        if not url or entry is None:
            raise SyncFailed("this laptop is not enrolled (contigo enrol)")
        raw = vault.outbox_decrypt(SIGNING_KEY, entry.blob)
        return device_id(s), url, Ed25519PrivateKey.from_private_bytes(raw)


def engine_for(
    app: Flask, transport: Transport | None = None, progress: Callable[[str], None] | None = None
) -> SyncEngine:
    """A sync engine over this laptop's database (real HTTP unless a transport is given)."""
    vault: Vault = get_vault(app)
    if transport is None:
        dev, url, key = signing_key(app)
        transport = RequestsTransport(url, dev, key)
    return SyncEngine(
        app.extensions["contigo.sessionmaker"],
        transport,
        build_registry(vault),
        decrypt=vault.outbox_decrypt,
        encrypt=vault.outbox_encrypter(),
        app_version="0.1.0",
        progress=progress,
    )


def run_sync(
    app: Flask, transport: Transport | None = None, progress: Callable[[str], None] | None = None
) -> SyncReport:
    """One sync run (hello, push, pull) inside the app's context."""
    with app.app_context():
        return engine_for(app, transport, progress).run()
