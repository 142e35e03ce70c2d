"""Directory services the admin pages call: resetting a user's password."""

from __future__ import annotations

from sqlalchemy.orm import Session

from contigo.admin import services as admin
from contigo.audit.services import record as audit
from contigo.auth.models import User
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.usersync.central import publish, set_unlock_key
from contigo.usersync.guard import refuse_if_managed
from contigo.vault import Vault

MIN_PASSWORD = 10


def reset_password(s: Session, vault: Vault, actor: User, user_id: str, password: str) -> User:
    """Give a user a new password: a new wrapped copy here and, on central, a new public key
    that reaches their sites' laptops, which rewrap (the old password stops working there at
    their next sync). Audited; the password itself never is."""
    user = admin.get_user(s, actor, user_id)
    refuse_if_managed(user)
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(fields={"password": [translate("v.password_short", min=10)]})
    user.wrapped_master_key = vault.wrap_master_for(password)
    set_unlock_key(user, password, vault.scrypt_n)
    user.failed_logins, user.locked_until = 0, None
    s.flush()
    audit(s, user_id=actor.id, action="user_password_reset", entity_type="user", entity_id=user.id)
    publish(s, actor, user)
    return user
