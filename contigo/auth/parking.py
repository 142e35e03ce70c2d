"""A half-filled form survives the idle lock (issue 15.2).

Just before the idle lock, the page hands what was typed to :func:`park`; after the same user
unlocks again, the page asks for it back (:func:`unpark`, once) and fills the form as it was.

Where it is kept, and why there: in this process's memory only (a laptop keeps its sessions
there too, :mod:`contigo.auth.sessions`), and sealed under the master key
(:meth:`contigo.vault.Vault.seal`) while the laptop is still unlocked. So it is never written
to disk (not the database, not a file, not the browser's storage, which ``sessionStorage``
would be), and while the laptop is locked only ciphertext is in memory: the key that opens it
comes back with the next unlock. It is kept for its own user alone, for one path, and for a
working day at most; a restart of the laptop's server forgets it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from contigo.crypto import CryptoError
from contigo.vault import Vault

LABEL = "auth.parked-form"
KEEP_SECONDS = 12 * 3600
MAX_FIELDS = 200
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Parked:
    path: str
    blob: bytes
    at: float


class ParkedForms:
    """One parked form per user, sealed, in memory."""

    def __init__(self) -> None:
        self._by_user: dict[str, Parked] = {}
        self._lock = threading.Lock()

    def park(self, v: Vault, user_id: str, path: str, fields: list[tuple[str, str]]) -> None:
        """Seal and keep ``fields`` (name, value pairs) typed on ``path`` by ``user_id``."""
        data = json.dumps({"user": user_id, "path": path, "fields": fields[:MAX_FIELDS]})
        if len(data) > MAX_BYTES:
            raise ValueError("form too large to park")
        sealed = v.seal(LABEL, data.encode())
        with self._lock:
            self._by_user[user_id] = Parked(path, sealed, time.time())

    def waiting(self, user_id: str, path: str) -> bool:
        """Whether a form parked by ``user_id`` on ``path`` waits to be filled back in."""
        found = self._by_user.get(user_id)
        return found is not None and found.path == path and time.time() - found.at < KEEP_SECONDS

    def unpark(self, v: Vault, user_id: str, path: str) -> list[tuple[str, str]]:
        """The fields parked by ``user_id`` on ``path`` (handed back once), else none."""
        with self._lock:
            found = self._by_user.get(user_id)
            if found is None or found.path != path:
                return []
            del self._by_user[user_id]
        if time.time() - found.at >= KEEP_SECONDS:
            return []
        try:
            data: dict[str, Any] = json.loads(v.unseal(LABEL, found.blob))
        except (CryptoError, ValueError):
            return []  # sealed under another master key (a re-enrolled laptop): nothing to give
        if data.get("user") != user_id or data.get("path") != path:
            return []
        return [(str(name), str(value)) for name, value in data.get("fields", [])]
