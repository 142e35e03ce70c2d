"""The password reset a manager makes from a user's page (central and field)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for

from contigo import db
from contigo.auth.current import current_user, login_required
from contigo.errors import ValidationFailed
from contigo.i18n import translate
from contigo.usersync.services import reset_password
from contigo.vault import get_vault

bp = Blueprint("usersync", __name__, url_prefix="/admin")


@bp.post("/users/<user_id>/password")
@login_required
def set_password(user_id: str) -> Any:
    """Give a user a new password (never echoed back, never logged)."""
    password = request.form.get("password", "")
    try:
        reset_password(db.session(), get_vault(), current_user(), user_id, password)
    except ValidationFailed:
        flash(translate("usersync.password.invalid", min=10), "error")
        return redirect(url_for("admin.edit_user", user_id=user_id))
    flash(translate("usersync.password.changed"), "success")
    return redirect(url_for("admin.users"))
