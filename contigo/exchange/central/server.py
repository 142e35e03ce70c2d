"""The sync server mounted at ``/sync/v1`` in central mode (DESIGN.md §5).

Views parse and authenticate, call one :mod:`sync.server` function, and the request boundary
commits. Every request except ``enrol`` is signed by the device's Ed25519 key.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import importlib
import zlib
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from contigo import crypto
from contigo.card.central import card_trust
from contigo.db import session
from contigo.exchange.extensions import server_config
from contigo.exchange.handlers import build_registry
from contigo.sites.wire import site_directory
from contigo.vault import Vault, get_vault
from sync import fastjson, gcpause
from sync.protocol import (
    GZIP_FAST_ABOVE,
    GZIP_FAST_LEVEL,
    GZIP_LEVEL,
    MAX_BATCH_BYTES,
    Control,
    ErrorCode,
    ProtocolError,
    StaleTimestamp,
    parse_hello,
    parse_pull,
    parse_push,
    parse_snapshot,
)
from sync.server import ServerConfig, changelog, devices, integrity, wall_ms
from sync.server import apply as push_apply
from sync.server.devices import DeviceRevoked, EnrolmentRefused

igzip: Any
try:
    igzip = importlib.import_module("isal.igzip")
except ImportError:  # without the central extra's ISA-L: zlib
    igzip = None

ISAL_FAST_LEVEL = 1
"""ISA-L's level for large answers: measured on a 1,000-change page (1.9 MB of JSON), 10 ms
and 147 KB against zlib level 1's 38 ms and 165 KB on the same loaded machine (level 0: 2 ms,
187 KB)."""

bp = Blueprint("sync", __name__, url_prefix="/sync/v1")


def build_server_config(app: Flask) -> ServerConfig:
    """The app's sync server configuration (read through
    :func:`contigo.exchange.extensions.server_config`, which builds it once per process)."""
    vault = get_vault(app)
    secret = str(app.config["SECRET_KEY"]).encode()

    def seal(aad: str, data: bytes) -> bytes:
        return vault.outbox_encrypter()(f"central:{aad}", data)

    def open_(aad: str, blob: bytes) -> bytes:
        return vault.outbox_decrypt(f"central:{aad}", blob)

    def opener() -> Callable[[str, bytes], bytes]:
        decrypt = vault.outbox_decrypter()
        return lambda aad, blob: decrypt(f"central:{aad}", blob)

    integrity.use_key(app.extensions["contigo.engine"], _row_key(vault))
    return ServerConfig(
        registry=build_registry(vault),
        seal=seal,
        open=open_,
        opener=opener,
        cursor_key=hmac.new(secret, b"contigo/sync-cursor", hashlib.sha256).digest(),
        min_pull_schema=int(app.config["SYNC_MIN_PULL_SCHEMA"]),
        soft_eol_schema=int(app.config["SYNC_SOFT_EOL_SCHEMA"]),
        hard_eol_on=app.config["SYNC_HARD_EOL_ON"] or None,
    )


def _row_key(vault: Vault) -> Callable[[], bytes]:
    """The key of the central's row MACs (:mod:`sync.server.integrity`): a subkey of the
    server key, derived once per server key."""
    held: dict[bytes, bytes] = {}

    def key() -> bytes:
        master = vault.master_for_sealing()
        found = held.get(master)
        if found is None:
            held.clear()
            found = held[master] = crypto.derive_subkey(master, "central-row-mac")
        return found

    return key


def _gzip(raw: bytes) -> bytes:
    """``raw`` gzipped. A large answer (a pull page, about 1.8 MB of JSON) goes through ISA-L
    when it is installed (the ``central`` extra): its level 1 is some four times faster than
    zlib's level 1 and its output smaller; the laptop reads plain gzip either way."""
    if len(raw) <= GZIP_FAST_ABOVE:
        return gzip.compress(raw, compresslevel=GZIP_LEVEL)
    if igzip is not None:
        return bytes(igzip.compress(raw, compresslevel=ISAL_FAST_LEVEL))
    return gzip.compress(raw, compresslevel=GZIP_FAST_LEVEL)


def _json(body: Any, status: int = 200) -> Response:
    raw = fastjson.dumps(body)
    resp = Response(raw, status=status, mimetype="application/json")
    if len(raw) > 1024 and "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.set_data(_gzip(raw))
        resp.headers["Content-Encoding"] = "gzip"
    return resp


def _error(exc: ProtocolError) -> Response:
    body: dict[str, Any] = {"error": {"code": exc.code.value, "message": str(exc)}}
    if isinstance(exc, DeviceRevoked):
        body["control"] = Control.LOCK.value
    if isinstance(exc, StaleTimestamp):
        body["server_time_ms"] = exc.server_time_ms  # the device signs its retry with it
    return _json(body, exc.http_status)


def _gunzip(raw: bytes, limit: int) -> bytes:
    """``raw`` gunzipped (one member or several), refused with ``S102``/413 as soon as more
    than ``limit`` bytes come out.

    Decompresses in bounded steps (``max_length``), never the whole body at once: a gzip bomb
    (a megabyte of zeros-in-disguise that inflates to a gigabyte) costs at most ``limit``
    bytes of memory before it is refused, on every endpoint, the unsigned ``enrol`` included.
    """
    out = bytearray()
    rest = raw
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            chunk = inflater.decompress(rest, limit + 1 - len(out))
            while True:
                out += chunk
                if len(out) > limit:
                    raise ProtocolError("body too large", code=ErrorCode.BATCH_TOO_LARGE)
                if not inflater.unconsumed_tail:
                    break
                chunk = inflater.decompress(inflater.unconsumed_tail, limit + 1 - len(out))
            if not inflater.eof:
                raise ProtocolError("bad gzip body")
            rest = inflater.unused_data
    except zlib.error:
        raise ProtocolError("bad gzip body") from None
    return bytes(out)


def _body(raw: bytes) -> Any:
    if request.headers.get("Content-Encoding") == "gzip":
        raw = _gunzip(raw, MAX_BATCH_BYTES)
    try:
        return fastjson.loads(raw or b"{}")
    except ValueError:
        raise ProtocolError("body is not JSON") from None


def _signed() -> tuple[Any, bytes]:
    raw = request.get_data(cache=True)
    path = request.full_path if request.query_string else request.path
    device = devices.authenticate(session(), request.headers, request.method, path, raw, wall_ms())
    if not integrity.device_ok(session(), device):  # its site or key edited in the database
        raise ProtocolError(
            "device record failed its integrity check", code=ErrorCode.UNKNOWN_DEVICE
        )
    return device, raw


@bp.errorhandler(ProtocolError)
def _protocol_error(exc: ProtocolError) -> Response:
    session().rollback()
    return _error(exc)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge) -> Response:
    """A body over ``MAX_CONTENT_LENGTH`` (compressed size), in the sync error format: the
    client halves its batch on 413."""
    session().rollback()
    return _error(ProtocolError("body too large", code=ErrorCode.BATCH_TOO_LARGE))


@bp.post("/enrol")
def enrol() -> Response:
    """Register a device with a one-time code and its public key (not signed: no key yet)."""
    body = _body(request.get_data())
    try:
        key = base64.urlsafe_b64decode(str(body.get("public_key", "")))
        device = devices.enrol(
            session(),
            code=str(body.get("code", "")),
            device_id=str(body.get("device_id", ""))[:32],
            public_key=key,
            label=str(body.get("label", "")),
            now_ms=wall_ms(),
        )
    except (EnrolmentRefused, ValueError, binascii.Error):
        return _json(
            {"error": {"code": ErrorCode.UNKNOWN_DEVICE.value, "message": "enrolment refused"}}, 403
        )
    from contigo.sites.models import Site

    site = session().get(Site, device.site_id)
    assert site is not None
    offered = body.get("site_codes")
    if isinstance(offered, list) and site.code not in offered:
        # The laptop cannot work at that site: refuse before anything is kept (a response of
        # 400 or more rolls the request back), so the code stays valid for the right laptop.
        return _json(
            {
                "error": {
                    "code": ErrorCode.UNKNOWN_DEVICE.value,
                    "message": f"the code is for site {site.code}",
                }
            },
            409,
        )
    from contigo.recovery import central_public_key
    from contigo.vault import get_vault

    # The laptop seals its master key to this key: central's key file recovers a revoked
    # laptop's unsent ops (contigo.recovery).
    master = get_vault().master_for_sealing()
    recovery = central_public_key(master)
    return _json(
        {
            "device_id": device.id,
            "site_code": site.code,
            "recovery_public_key": recovery,
            "card_trust": card_trust(session(), master, device),  # family cards: contigo.card
        }
    )


@bp.post("/hello")
def hello() -> Response:
    """Versions and clock check."""
    device, raw = _signed()
    msg = parse_hello(_body(raw))
    reply = devices.hello(session(), server_config(current_app), device, msg, wall_ms())
    trust = card_trust(session(), get_vault().master_for_sealing(), device)
    return _json(reply | {"sites": site_directory(session()), "card_trust": trust})


@bp.post("/push")
@gcpause.paused()
def push() -> Response:
    """Apply a batch of ops; always 200 with per-op results when the envelope is valid."""
    device, raw = _signed()
    body = _body(raw)
    batch = parse_push(body, body_bytes=len(raw))
    if batch.device_id != device.id:
        raise ProtocolError("batch of another device", where="device_id")
    cfg = server_config(current_app)
    reply = push_apply.apply_batch(session(), cfg, device, batch, wall_ms())
    g.push_results = reply["results"]  # counted by result in contigo.ops' metrics
    return _json(reply)


@bp.get("/pull")
@gcpause.paused()
def pull() -> Response:
    """One page of the device's change feed."""
    device, _raw = _signed()
    req = parse_pull(request.args.to_dict())
    return _json(changelog.pull(session(), server_config(current_app), device, req, wall_ms()))


@bp.post("/snapshot")
@gcpause.paused()
def snapshot() -> Response:
    """Full state of the asked persons within the device's scope."""
    device, raw = _signed()
    req = parse_snapshot(_body(raw))
    cfg = server_config(current_app)
    return _json(changelog.snapshot(session(), cfg, device, req, wall_ms()))
