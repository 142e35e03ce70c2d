"""The central server's devices: one-time enrolment codes, the device list and revocation.

These run on the central instance only (``contigo device …``); a laptop enrols itself with
:func:`contigo.exchange.laptop.client.enrol_as`. Only the SHA-256 of a code is stored, so a
code is shown
once, when it is issued. The server's console is trusted like its key file, so these need no
user's password; each is audited with no user (the admin pages do the same per admin).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import select

from contigo.audit.services import record as audit
from contigo.db import session_scope
from contigo.exchange.central.keys import key_path
from contigo.sites.models import Site
from contigo.sites.services import add_site, by_code
from sync.models import Device
from sync.server import iso, wall_ms
from sync.server.devices import CODE_TTL_MS, issue_code, revoke


class DeviceAdminFailed(Exception):
    """A device command that cannot run; the message is one line with no personal data."""


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A freshly issued one-time code and what it enrols."""

    code: str
    site_code: str
    expires_at: str


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One enrolled device as ``contigo device list`` shows it."""

    id: str
    site_code: str
    label: str
    enrolled_at: str
    last_seen_at: str | None
    revoked_at: str | None
    clock_suspect: bool


def require_central(app: Flask) -> None:
    """Refuse to run on anything but an initialised central server (its key file exists)."""
    if app.config["CONTIGO_MODE"] != "central" or not key_path(app).exists():
        raise DeviceAdminFailed("not an initialised central server (run: contigo central init)")


def issue_enrolment_code(
    app: Flask, site_code: str, *, site_name: str | None = None, country: str | None = None
) -> Enrolment:
    """A one-time code that enrols one laptop at ``site_code``, valid 24 hours.

    A site unknown to the central server is created when ``country`` is given (the laptops of a
    new site are usually enrolled before anything else exists there); otherwise it is refused.
    """
    require_central(app)
    now = wall_ms()
    with session_scope(app) as s:
        site = by_code(s, site_code)
        if site is None:
            if not country:
                raise DeviceAdminFailed(
                    f"unknown site {site_code} (give --country and --site-name to create it)"
                )
            site = add_site(s, code=site_code, name=site_name or site_code, country=country)
        code = issue_code(s, site.id, now)
        audit(s, user_id=None, action="device_code", entity_type="site", entity_id=site.id)
    return Enrolment(code=code, site_code=site_code, expires_at=iso(now + CODE_TTL_MS))


def list_devices(app: Flask) -> list[DeviceRow]:
    """Every enrolled device, revoked ones included, by site and enrolment time."""
    require_central(app)
    with session_scope(app) as s:
        rows = s.execute(
            select(Device, Site.code)
            .outerjoin(Site, Site.id == Device.site_id)
            .order_by(Site.code, Device.enrolled_at)
        )
        return [
            DeviceRow(
                id=d.id,
                site_code=code or "?",
                label=d.label,
                enrolled_at=d.enrolled_at,
                last_seen_at=d.last_seen_at,
                revoked_at=d.revoked_at,
                clock_suspect=bool(d.clock_suspect),
            )
            for d, code in rows
        ]


def revoke_device(app: Flask, device_id: str) -> str:
    """Revoke a device; from now on every request it signs is refused. Idempotent.

    Returns when it was revoked (the first revocation's time on a repeat).
    """
    require_central(app)
    with session_scope(app) as s:
        device = revoke(s, device_id, wall_ms())
        if device is None:
            raise DeviceAdminFailed(f"unknown device {device_id}")
        audit(s, user_id=None, action="device_revoke", entity_type="device", entity_id=device.id)
        assert device.revoked_at is not None
        return device.revoked_at
