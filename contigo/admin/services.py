"""Administering sites, users and devices, with who may do what checked here.

- ``admin``: every site, user and (on the central server) device.
- ``supervisor``: the users whose home site is one of the supervisor's sites, as health workers
  or supervisors of those sites; nothing else.

Services flush and audit; the request commits. Passwords are never logged or audited.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contigo.audit.services import record as audit
from contigo.auth import services as auth
from contigo.auth.models import LANGUAGES, ROLES, User, UserSite
from contigo.auth.scope import check_manage_users
from contigo.errors import ContigoError, ErrorCode, Forbidden, ValidationFailed
from contigo.i18n import translate
from contigo.sites.models import Site
from contigo.sites.services import add_site, all_sites
from contigo.usersync import central as usersync
from contigo.usersync.guard import refuse_if_managed
from contigo.vault import Vault
from sync.models import Device
from sync.server import iso
from sync.server.devices import CODE_TTL_MS, issue_code, revoke

MANAGERS = frozenset({"admin", "supervisor"})
SUPERVISOR_ROLES = ("health_worker", "supervisor")


class UnknownEntity(ContigoError):
    """A site, user or device id that does not exist."""

    code = ErrorCode.NOT_FOUND
    status = 404
    message_id = "error.not_found"


def require_admin(actor: User) -> None:
    """Refuse anyone but an admin."""
    if actor.role != "admin":
        raise Forbidden()


def require_manager(actor: User) -> None:
    """Refuse anyone who manages no users."""
    if actor.role not in MANAGERS:
        raise Forbidden()


# ── sites ──────────────────────────────────────────────────────────────────────────────────────


def sites(s: Session, actor: User) -> list[Site]:
    """The sites ``actor`` manages: every site for an admin, their own for a supervisor."""
    require_manager(actor)
    found = all_sites(s)
    return found if actor.role == "admin" else [x for x in found if x.id in actor.site_ids]


def create_site(s: Session, actor: User, form: dict[str, str]) -> Site:
    """Add a site from the posted form (admins only)."""
    require_admin(actor)
    errors: dict[str, list[str]] = {}
    code, name = form.get("code", "").strip().upper(), form.get("name", "").strip()
    if not code or len(code) > 32:
        errors["code"] = [translate("v.length", min=1, max=32)]
    if not name or len(name) > 120:
        errors["name"] = [translate("v.length", min=1, max=120)]
    try:
        elevation = int(form.get("elevation_m", "0").strip() or "0")
    except ValueError:
        errors["elevation_m"] = [translate("v.integer")]
        elevation = 0
    if errors:
        raise ValidationFailed(fields=errors)
    site = add_site(
        s,
        code=code,
        name=name,
        country=form.get("country", ""),
        kind=form.get("kind", "mobile_unit"),
        elevation_m=elevation,
    )
    audit(s, user_id=actor.id, action="site_add", entity_type="site", entity_id=site.id)
    return site


# ── users ──────────────────────────────────────────────────────────────────────────────────────


def assignable_roles(actor: User) -> tuple[str, ...]:
    """The roles ``actor`` may give."""
    return ROLES if actor.role == "admin" else SUPERVISOR_ROLES


def users(s: Session, actor: User) -> list[User]:
    """The users ``actor`` manages, by username."""
    require_manager(actor)
    query = select(User).order_by(User.username)
    if actor.role != "admin":
        query = query.where(User.home_site_id.in_(actor.site_ids))
    return list(s.scalars(query))


def _managed(s: Session, actor: User, user_id: str) -> User:
    require_manager(actor)
    user = s.get(User, user_id)
    if user is None:
        raise UnknownEntity()
    check_manage_users(actor, user.home_site_id)
    if user.role not in assignable_roles(actor):
        raise Forbidden()
    return user


def get_user(s: Session, actor: User, user_id: str) -> User:
    """A user ``actor`` manages."""
    return _managed(s, actor, user_id)


def _check_assignment(
    s: Session, actor: User, role: str, home: str, extra: Collection[str]
) -> dict[str, list[str]]:
    """Field errors of a role and site assignment; a role or site beyond the actor's is refused
    outright (the form never offers it)."""
    errors: dict[str, list[str]] = {}
    if role not in ROLES:
        errors["role"] = [translate("v.choice")]
    elif role not in assignable_roles(actor):
        raise Forbidden()
    for site_id in {home, *extra}:
        if not site_id or s.get(Site, site_id) is None:
            errors["site_id" if site_id == home else "extra_site_ids"] = [translate("v.site")]
            continue
        check_manage_users(actor, site_id)
    return errors


def create_user(s: Session, vault: Vault, actor: User, form: dict[str, Any]) -> User:
    """Enrol a new user with a role, a home site and further sites. The vault must be unlocked
    (the user receives a copy of the master key wrapped by their password)."""
    require_manager(actor)
    role, home = str(form.get("role", "")), str(form.get("site_id", ""))
    extra = tuple(str(x) for x in form.get("extra_site_ids", []))
    language = str(form.get("language", "es"))
    errors = _check_assignment(s, actor, role, home, extra)
    display_name = str(form.get("display_name", "")).strip()
    if not display_name or len(display_name) > 120:
        errors["display_name"] = [translate("v.length", min=1, max=120)]
    if language not in LANGUAGES:
        errors["language"] = [translate("v.choice")]
    if errors:
        raise ValidationFailed(fields=errors)
    site = s.get(Site, home)
    user = auth.add_user(
        s,
        vault,
        username=str(form.get("username", "")),
        display_name=display_name,
        role=role,
        password=str(form.get("password", "")),
        site_id=home,
        language=language,
        country=site.country if site is not None else None,
        extra_site_ids=extra,
    )
    audit(s, user_id=actor.id, action="user_add", entity_type="user", entity_id=user.id)
    usersync.set_unlock_key(user, str(form.get("password", "")), vault.scrypt_n)
    usersync.publish(s, actor, user)
    return user


def update_user(s: Session, actor: User, user_id: str, form: dict[str, Any]) -> User:
    """Change a user's role and further sites (the home site stays: it decides who manages
    them). Nobody changes their own role."""
    user = _managed(s, actor, user_id)
    refuse_if_managed(user)
    before = user.site_ids
    role = str(form.get("role", ""))
    extra = {str(x) for x in form.get("extra_site_ids", [])} - {user.home_site_id}
    if user.id == actor.id and role != user.role:
        raise Forbidden()
    errors = _check_assignment(s, actor, role, user.home_site_id, extra)
    if errors:
        raise ValidationFailed(fields=errors)
    # A supervisor sees only their own sites on the form: assignments elsewhere are kept.
    kept = {x.site_id for x in user.sites if x.site_id not in _site_ids(s, actor)}
    user.role = role
    user.sites = [UserSite(site_id=sid) for sid in sorted(extra | kept)]
    s.flush()
    audit(s, user_id=actor.id, action="user_update", entity_type="user", entity_id=user.id)
    usersync.publish(s, actor, user, previous_site_ids=before)
    return user


def _site_ids(s: Session, actor: User) -> set[str]:
    return {x.id for x in sites(s, actor)}


def set_active(s: Session, actor: User, user_id: str, *, active: bool) -> User:
    """Deactivate (or reactivate) a user: a deactivated user can neither sign in nor use a
    token. Nobody deactivates themselves (the last admin could lock everyone out)."""
    user = _managed(s, actor, user_id)
    if user.id == actor.id:
        raise Forbidden()
    refuse_if_managed(user)
    user.active = active
    s.flush()
    action = "user_activate" if active else "user_deactivate"
    audit(s, user_id=actor.id, action=action, entity_type="user", entity_id=user.id)
    usersync.publish(s, actor, user)
    return user


# ── devices (central) ──────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One enrolled device as the devices page lists it."""

    device: Device
    site_code: str


def devices(s: Session, actor: User) -> list[DeviceView]:
    """Every enrolled device, revoked ones included, by site and enrolment time."""
    require_admin(actor)
    codes: dict[str, str] = {sid: code for sid, code in s.execute(select(Site.id, Site.code))}
    rows = s.scalars(select(Device).order_by(Device.site_id, Device.enrolled_at))
    return [DeviceView(device=d, site_code=codes.get(d.site_id, d.site_id)) for d in rows]


def revoke_device(s: Session, actor: User, device_id: str, now_ms: int) -> Device:
    """Revoke a device: every request it signs is refused from now on. Idempotent."""
    require_admin(actor)
    device = revoke(s, device_id, now_ms)
    if device is None:
        raise UnknownEntity()
    s.flush()
    audit(s, user_id=actor.id, action="device_revoke", entity_type="device", entity_id=device.id)
    return device


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A one-time code, shown once: only its hash is stored."""

    code: str
    site: Site
    expires_at: str


def issue_enrolment(s: Session, actor: User, site_id: str, now_ms: int) -> Enrolment:
    """A one-time code that enrols one laptop at ``site_id``, valid 24 hours."""
    require_admin(actor)
    site = s.get(Site, site_id)
    if site is None:
        raise ValidationFailed(fields={"site_id": [translate("v.site")]})
    code = issue_code(s, site.id, now_ms)
    audit(s, user_id=actor.id, action="device_code", entity_type="site", entity_id=site.id)
    return Enrolment(code=code, site=site, expires_at=iso(now_ms + CODE_TTL_MS))
