"""Configuration in layers: defaults here, then the instance file, then ``CONTIGO_*`` variables,
then the test configuration passed to :func:`contigo.create_app`.

Secrets are generated on first run into the instance folder (mode 0600), never committed and never
defaulted in production.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "CONTIGO_MODE": "field",
    "DATABASE_URL": None,  # field: sqlite file in the instance folder
    "DEFAULT_LANGUAGE": "es",
    "LANGUAGES": ("es", "pt", "en"),
    "IDLE_LOCK_SECONDS": 300,
    "MAX_FAILED_LOGINS": 5,
    "LOCKOUT_SECONDS": 300,
    "TOKEN_TTL_SECONDS": 8 * 3600,
    "SESSION_MAX_SECONDS": 12 * 3600,  # a browser session ends this long after sign-in
    "ALLOWED_HOSTS": ("127.0.0.1", "localhost", "[::1]"),
    "SCRYPT_N": 2**15,
    "BACKUP_BEFORE_MIGRATE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Strict",
    "SESSION_COOKIE_NAME": "contigo_session",
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "AUTO_SYNC_SECONDS": 300,  # field: try a sync this often when the central answers; 0 = off
    "SYNC_STALE_DAYS": 3,  # field: warn when the last successful sync is older than this
    "TRANSFER_GRACE_DAYS": 90,  # central: the old owner keeps access this long after a transfer
    "TRANSFER_VISITOR_DAYS": 30,  # central: the receiving site's access while a request waits
    "REFERRAL_ACCESS_DAYS": 90,  # central: a referral's receiving site's access to the person
    "REFERRAL_WAIT_DAYS": 7,  # the sender's home page lists referrals not received after this
    # central: laptops below SYNC_MIN_PULL_SCHEMA no longer receive changes (they still push);
    # those below SYNC_SOFT_EOL_SCHEMA are warned, with the date of SYNC_HARD_EOL_ON if set
    "SYNC_MIN_PULL_SCHEMA": 1,
    "SYNC_SOFT_EOL_SCHEMA": 0,
    "SYNC_HARD_EOL_ON": None,
    # reports: aggregate exports show counts from 1 to this minus one as "<N"
    "REPORTS_SMALL_CELL": 5,
    # reports: keep the reporting table in step with every change (off only to measure its cost)
    "REPORTS_FEED": True,
    # caseload: a laptop not synced for this many days is listed; a referral not attended after
    # this many days is "referred and not arrived"
    "CASELOAD_NOT_SYNCED_DAYS": 7,
    "CASELOAD_REFERRAL_DAYS": 14,
    # field: acknowledged ops are kept (sealed) this long, to send again if central is restored
    # from a backup older than them
    "SYNC_KEEP_ACKED_DAYS": 30,
    # central: operations (contigo.ops). LOG_FORMAT "json" writes one JSON object per line;
    # METRICS_TOKEN, when set, is the bearer token /metrics asks for
    "LOG_FORMAT": "json",
    "METRICS_TOKEN": None,
    "CHECK_UNSEEN_DAYS": 7,  # central check: devices not seen for this many days are listed
}

INSTANCE_FILE = "contigo.json"
SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
ENV_PREFIX = "CONTIGO_"

#: The domain modules that add to sync, each through its ``EXTENSION``
#: (:mod:`contigo.exchange.extensions`), in the order they are installed (the review finders run
#: before the transfer's post-write finder on central).
SYNC_EXTENSIONS = (
    "contigo.usersync.field",
    "contigo.review.finders",
    "contigo.transfers.sync",
    "contigo.referrals.sync",
    "contigo.card.sync",
)


def instance_path_from_env(default: str | None = None) -> str:
    """The instance folder: ``CONTIGO_INSTANCE`` or ``default`` or ``./instance``."""
    return os.environ.get("CONTIGO_INSTANCE") or default or str(Path.cwd() / "instance")


def _secret_key(instance: Path) -> str:
    """Read the instance's Flask secret, creating it (0600) on first run."""
    path = instance / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.startswith(ENV_PREFIX) or key == "CONTIGO_INSTANCE":
            continue
        name = key[len(ENV_PREFIX) :]
        if name == "MODE":
            name = "CONTIGO_MODE"
        out[name] = _coerce(value)
    return out


def _coerce(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def load(instance: Path, test_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge the layers into one mapping for ``app.config``."""
    merged: dict[str, Any] = dict(DEFAULTS)
    file = instance / INSTANCE_FILE
    if file.exists():
        merged.update(json.loads(file.read_text(encoding="utf-8")))
    merged.update(_from_env())
    if test_config:
        merged.update(test_config)
    if not merged.get("SECRET_KEY"):
        merged["SECRET_KEY"] = _secret_key(instance)
    # Central is served behind TLS: its session cookie never travels in clear. A laptop serves
    # plain HTTP on 127.0.0.1, where a Secure cookie would not come back.
    merged.setdefault("SESSION_COOKIE_SECURE", merged.get("CONTIGO_MODE") == "central")
    if not merged.get("DATABASE_URL"):
        merged["DATABASE_URL"] = f"sqlite:///{(instance / 'contigo.sqlite3').as_posix()}"
    return merged


def write_instance_file(instance: Path, values: dict[str, Any]) -> None:
    """Persist non-secret settings chosen at ``contigo init``."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / INSTANCE_FILE
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    current.update(values)
    path.write_text(json.dumps(current, indent=2, sort_keys=True), encoding="utf-8")
