"""The guard that keeps a laptop from editing a user central manages."""

from __future__ import annotations

from contigo.auth.models import User
from contigo.errors import Forbidden


def refuse_if_managed(user: User) -> None:
    """Refuse a local change to a user managed by central: their next directory entry would
    silently undo it, so they are changed on central only."""
    if user.directory_seq is not None:
        raise Forbidden()
