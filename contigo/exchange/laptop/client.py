"""The laptop side of sync: enrolment with the central server and sync runs.

The device's Ed25519 private key is stored only encrypted under a key derived from the master
key, so the laptop must be unlocked to enrol or sync.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import func, select

from contigo import crypto
from contigo.auth.models import KeyEntry, User
from contigo.card.store import note_trust
from contigo.db import session_scope
from contigo.exchange.extensions import SITE_CODE
from contigo.exchange.handlers import build_registry
from contigo.i18n import translate, translate_plural
from contigo.keystore import RECOVERY_ENTRY
from contigo.recovery import forget_user_keys, seal_recovery_copy
from contigo.sites.models import Site
from contigo.sites.services import by_code
from contigo.unlock import unlock_as
from contigo.vault import Vault, get_vault
from sync.client.engine import CLOCK_OFFSET_KEY, ClockRefused, SyncEngine, SyncFailed, SyncReport
from sync.client.transport import RequestsTransport, SigningClock, Transport, TransportError
from sync.models import OutboxOp
from sync.outbox import device_id, get_state, physical_clock, set_state
from sync.protocol import Control, ErrorCode

SIGNING_KEY = "device_signing_key"
CENTRAL_URL = "central_url"
DEFERRED_INDEXES = ("ix_person_index_bidx", "ix_encounters_occurred_on_site_id")
"""Indexes a new laptop's first pull builds at its end instead of row by row
(:mod:`sync.client.deferral`): the two whose keys arrive in random order (keyed hashes; visit
dates across the site's years), so each group's commit rewrote leaves all over them. Only the
UI's searches and the home page's window read them (and central's review finders): nothing a
pull runs does, and neither is unique or backs an ``ON CONFLICT``. An index whose keys arrive
in order is appended to at one leaf and costs less kept than built again (a build scans its
whole table): docs/sync.md gives the check and the figures."""


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
    if resp.status_code != 200:
        return resp.status_code, None
    try:
        return resp.status_code, resp.json()
    except ValueError:
        raise SyncFailed("not a Contigo central server (the answer is not JSON)") from None


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
        site_codes = sorted(s.scalars(select(Site.code)))
    body = {
        "code": code,
        "site_codes": site_codes,
        "device_id": dev,
        "label": label,
        "public_key": base64.urlsafe_b64encode(public).decode(),
    }
    status, answer = (post or _requests_post)(central_url.rstrip("/") + "/sync/v1/enrol", body)
    if status == 409:
        raise SyncFailed("enrolment refused: the code is for a site this laptop does not have")
    if status != 200:
        raise SyncFailed(f"enrolment refused (HTTP {status})")
    if not isinstance(answer, dict) or not isinstance(answer.get("site_code"), str):
        raise SyncFailed("not a Contigo central server (unexpected enrolment answer)")
    site_code = str(answer["site_code"])
    try:
        recovery = seal_recovery_copy(
            vault.master_for_sealing(), str(answer.get("recovery_public_key", "")), dev
        )
    except crypto.CryptoError:
        raise SyncFailed("not a Contigo central server (no recovery key)") from None
    with session_scope(app) as s:
        if by_code(s, site_code) is None:
            raise SyncFailed(f"this laptop has no site {site_code}")
        blob = vault.outbox_encrypter()(SIGNING_KEY, _raw(private))
        s.add(KeyEntry(name=SIGNING_KEY, blob=blob))
        s.merge(KeyEntry(name=RECOVERY_ENTRY, blob=recovery))
        set_state(s, CENTRAL_URL, central_url.rstrip("/"))
        set_state(s, SITE_CODE, site_code)
        note_trust(s, answer.get("card_trust"))  # the family cards' certificate (contigo.card)
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


def device_clock(app: Flask) -> Callable[[], int]:
    """The laptop's physical clock: the one its HLC reads (:func:`sync.outbox.physical_clock`;
    a test may skew it on the session factory), so requests are signed on the same clock."""
    maker = app.extensions["contigo.sessionmaker"]

    def now() -> int:
        with maker() as s:  # no connection is opened: the clock is in the session's info
            return physical_clock(s)()

    return now


def http_transport(app: Flask, timeout: float = 60.0) -> RequestsTransport:
    """Real HTTP to this laptop's central server, signed with its key; requests are stamped
    with the server's time as learned (a laptop's clock days off still syncs), starting from
    the offset the last ``hello`` measured, so a clock that stays off costs no refused request
    per run. Close its ``session`` when done."""
    dev, url, key = signing_key(app)
    clock = SigningClock(device_clock(app))
    with session_scope(app) as s:
        stored = get_state(s, CLOCK_OFFSET_KEY) or ""
    if stored.lstrip("-").isdigit():
        clock.offset_ms = -int(stored)  # stored: the device's clock minus the server's
    return RequestsTransport(url, dev, key, timeout=timeout, clock=clock)


def clock_reason(offset_ms: int, lang: str | None = None) -> str:
    """One line for a user whose laptop cannot sync because its clock is ``offset_ms`` off the
    central server's (positive: ahead)."""
    minutes = abs(offset_ms) // 60_000
    if minutes >= 48 * 60:
        span = translate_plural("syncui.span.days", minutes // (24 * 60), lang)
    elif minutes >= 120:
        span = translate_plural("syncui.span.hours", minutes // 60, lang)
    else:
        span = translate_plural("syncui.span.minutes", minutes, lang)
    key = "clock.refused.ahead" if offset_ms > 0 else "clock.refused.behind"
    return translate(key, lang, span=span)


def engine_for(
    app: Flask,
    transport: Transport | None = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> SyncEngine:
    """A sync engine over this laptop's database (real HTTP unless a transport is given);
    ``options`` go to :class:`SyncEngine` (tests run an older client with ``schema_version``)."""
    vault: Vault = get_vault(app)
    if transport is None:
        transport = http_transport(app)
    return SyncEngine(
        app.extensions["contigo.sessionmaker"],
        transport,
        build_registry(vault),
        decrypt=vault.outbox_decrypt,
        encrypt=vault.outbox_encrypter(),
        app_version="0.1.0",
        progress=progress,
        **(
            {"keep_acked_days": int(app.config["SYNC_KEEP_ACKED_DAYS"])}
            | {"deferrable": DEFERRED_INDEXES}
            | options
        ),
    )


def run_sync(
    app: Flask,
    transport: Transport | None = None,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> SyncReport:
    """One sync run (hello, push, pull) inside the app's context.

    A run that learns this laptop was revoked destroys every user's copy of the master key and
    locks it (DESIGN.md §4): no password opens it again; the outbox stays, encrypted, for
    central's recovery key.
    """
    with app.app_context():
        try:
            return engine_for(app, transport, progress, **options).run()
        except SyncFailed as exc:
            if exc.control == Control.LOCK:
                forget_keys_of_revoked(app)
            raise


def forget_keys_of_revoked(app: Flask) -> None:
    """Destroy the users' master-key copies of a revoked laptop and lock it."""
    try:
        with session_scope(app) as s:
            forget_user_keys(s)
    finally:
        get_vault(app).lock()


# ── what the ``contigo enrol`` and ``contigo sync`` commands call ──────────────────────────────

ENROLLERS = frozenset({"supervisor", "admin"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """A finished run and what is left in the outbox afterwards."""

    report: SyncReport
    waiting: int
    rejected: int


def check_central_url(url: str) -> str:
    """The central server's base URL; plain HTTP only on the loopback interface (tests and a
    central on this machine): the sync bodies are personal data, protected in transit by TLS."""
    parts = urlsplit(url.strip())
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
    if not parts.hostname or not secure:
        raise SyncFailed("the central URL must be https:// (plain http only for 127.0.0.1)")
    return url.strip().rstrip("/")


def enrol_as(
    app: Flask,
    *,
    username: str,
    password: str,
    central_url: str,
    code: str,
    label: str,
    post: Post | None = None,
) -> str:
    """Enrol this laptop on behalf of a supervisor (or admin) whose password unlocks it; the
    laptop is locked again afterwards. Returns the site code the central server assigned."""
    url = check_central_url(central_url)
    try:
        unlock_as(app, username, password, ENROLLERS)
        return enrol_laptop(app, central_url=url, code=code, label=label, post=post)
    finally:
        get_vault(app).lock()


def _language(app: Flask, username: str) -> str | None:
    """The language of user ``username`` on this laptop (``None``: the default)."""
    with session_scope(app) as s:
        lang = s.scalar(select(User.language).where(User.username == username))
    return str(lang) if lang else None


def outbox_counts(app: Flask) -> tuple[int, int]:
    """``(waiting, rejected)``: ops not yet accepted, and ops the server refused (kept until a
    person deals with them)."""
    with session_scope(app) as s:
        counts: dict[str, int] = {
            state: n
            for state, n in s.execute(select(OutboxOp.state, func.count()).group_by(OutboxOp.state))
        }
    return counts.get("pending", 0) + counts.get("deferred", 0), counts.get("rejected", 0)


def sync_as(
    app: Flask,
    *,
    username: str,
    password: str,
    transport: Transport | None = None,
    progress: Callable[[str], None] | None = None,
) -> SyncSummary:
    """One sync run on behalf of a user whose password unlocks the laptop, locked afterwards.

    Every failure is a :class:`SyncFailed` with a one-line reason; what was applied before it
    stays applied, and the outbox keeps every op the server has not acknowledged.
    """
    own: RequestsTransport | None = None
    try:
        unlock_as(app, username, password)
        if transport is None:
            transport = own = http_transport(app)
        try:
            report = run_sync(app, transport, progress)
        except TransportError as exc:
            raise SyncFailed(f"central server unreachable ({exc})") from exc
        except ClockRefused as exc:
            lang = _language(app, username)
            raise ClockRefused(
                exc.status or 403, exc.offset_ms, clock_reason(exc.offset_ms, lang)
            ) from exc
        except SyncFailed as exc:
            # A refused timestamp or nonce (S202) is not a revocation: say only "refused".
            if exc.status == 401 and exc.code != ErrorCode.REPLAYED_REQUEST:
                raise SyncFailed(
                    "the central server refused this laptop: its enrolment was revoked or is "
                    "unknown (HTTP 401); the outbox is kept",
                    status=401,
                ) from exc
            raise
    finally:
        if own is not None:
            own.session.close()
        get_vault(app).lock()
    waiting, rejected = outbox_counts(app)
    return SyncSummary(report, waiting, rejected)
