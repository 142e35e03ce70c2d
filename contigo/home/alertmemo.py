"""The alert codes of each visit, decrypted once and remembered across unlocks.

A visit's alert codes live in its encrypted assessment, and the open-alerts list needs those of
every person's latest visit of the last 30 days: some 20,000 decryptions on a busy laptop, too
slow for the page a worker sees after each unlock. A visit never changes, so what was read of
it stays true: the codes are kept in the vault's memory while it is unlocked, and in a file
of the instance folder sealed under the master key (:meth:`contigo.vault.Vault.seal`) between
unlocks (written when the laptop locks, and once when there was none).

The work list's own state (:mod:`contigo.home.window`: the persons with an alert, a few
hundred kilobytes) is kept in a second sealed file, read at the first home page after an
unlock. The codes file (some megabytes at 20,000 persons) is read only when a page needs the
codes of many visits at once (the list rebuilt after a void, a correction or a new day); a few
new visits are simply decrypted. Nothing is ever written in the clear; a damaged or foreign
file is ignored (the codes are decrypted again, the state rebuilt). Shredding a person's key
forgets that person's entries and removes both files, so a shredded record leaves nothing
readable behind (issue 15.1). A purge made by another process (``contigo sync`` on the
command line) does not reach this one's memory: there the file keeps that person's codes,
sealed under the master key rather than the person's own (a known gap).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context

from contigo.crypto import CryptoError
from contigo.safefile import atomic_file
from contigo.vault import Vault
from sync import fastjson

log = logging.getLogger(__name__)

LABEL = "home.alert-codes"
FILE_NAME = "alert-codes.sealed"
WINDOWS_LABEL = "home.window-states"
WINDOWS_FILE_NAME = "home-window.sealed"
#: From this many visits whose codes are not in memory, the kept codes are read (one file of
#: some megabytes) rather than each visit decrypted (about 0.2 ms each).
READ_KEPT_FROM = 200


class AlertCodes:
    """Encounter id → ``(person id, alert codes)`` for one unlocked vault."""

    def __init__(self, path: Path | None, windows_path: Path | None = None) -> None:
        self.path = path
        self.windows_path = windows_path
        self.codes: dict[str, tuple[str, tuple[str, ...]]] = {}
        #: What :mod:`contigo.home.window` keeps between unlocks (its own format, read back
        #: by it), and what exports its current states when the file is written.
        self.windows: list[dict[str, Any]] = []
        self.export_windows: Callable[[], list[dict[str, Any]]] | None = None
        self.unsaved = 0
        #: Whether the kept codes were read (or there were none) during this unlock.
        self.kept_read = False
        self._lock = threading.Lock()

    def load(self, v: Vault) -> None:
        """Read the kept work-list states, if any (a damaged or foreign file is ignored); the
        kept codes wait until a page needs many (:meth:`read_kept`)."""
        if self.windows_path is None or not self.windows_path.exists():
            return
        try:
            data = fastjson.loads(v.unseal(WINDOWS_LABEL, self.windows_path.read_bytes()))
            windows = list(data["windows"])
        except (OSError, ValueError, KeyError, TypeError, CryptoError):
            log.warning("work lists: %s unreadable, rebuilt", self.windows_path.name)
            self.windows_path.unlink(missing_ok=True)
            return
        self.windows = windows

    def read_kept(self, v: Vault) -> None:
        """Read the kept codes, once per unlock (a damaged or foreign file is ignored)."""
        if self.kept_read:
            return
        self.kept_read = True
        if self.path is None or not self.path.exists():
            return
        try:
            data = fastjson.loads(v.unseal(LABEL, self.path.read_bytes()))
            codes = {eid: (str(pid), tuple(c)) for eid, (pid, c) in data["codes"].items()}
        except (OSError, ValueError, KeyError, TypeError, CryptoError):
            log.warning("alert codes: %s unreadable, rebuilt from the visits", self.path.name)
            self.path.unlink(missing_ok=True)  # so that the rebuilt codes are written again
            return
        with self._lock:
            for eid, found in codes.items():
                self.codes.setdefault(eid, found)

    def add(self, eid: str, person_id: str, codes: tuple[str, ...]) -> None:
        with self._lock:
            self.codes[eid] = (person_id, codes)
            self.unsaved += 1

    def save_if_new(self, v: Vault) -> None:
        """Write the sealed file if there is none yet (the first page after an upgrade did the
        expensive work: a power cut before the next lock must not lose it)."""
        if self.path is not None and not self.path.exists() and self.unsaved:
            self.save(v)

    def before_lock(self, v: Vault) -> None:
        """Write what this unlock added, while the key that seals it is still there (at the
        lock rather than on a page: writing some megabytes is no work for a page)."""
        if self.unsaved or self.export_windows is not None:
            self.save(v)

    def save(self, v: Vault) -> None:
        """Write the work-list states, and the codes when this unlock added some (the file is
        written whole: what it kept is read first)."""
        if self.path is None:
            return
        windows = self.export_windows() if self.export_windows is not None else self.windows
        if self.windows_path is not None:
            with atomic_file(self.windows_path) as tmp:
                tmp.write_bytes(v.seal(WINDOWS_LABEL, fastjson.dumps({"windows": windows})))
        if not self.unsaved and self.path.exists():
            return
        self.read_kept(v)
        with self._lock:
            codes = {eid: [pid, list(c)] for eid, (pid, c) in self.codes.items()}
            self.unsaved = 0
        with atomic_file(self.path) as tmp:
            tmp.write_bytes(v.seal(LABEL, fastjson.dumps({"codes": codes})))

    def forget(self, person_id: str) -> None:
        """Drop a shredded person's entries, and the file that holds them."""
        with self._lock:
            for eid in [e for e, (pid, _c) in self.codes.items() if pid == person_id]:
                del self.codes[eid]
            self.unsaved = len(self.codes)
            self.windows = []
            self.kept_read = True  # the file is gone: what it kept is no more
        for path in (self.path, self.windows_path):
            if path is not None:
                path.unlink(missing_ok=True)


def alert_codes(v: Vault) -> AlertCodes:
    """The remembered alert codes of this unlock (read from the sealed file the first time)."""
    memo = v.memo("home")
    found = memo.get("alert_codes")
    if found is None:
        folder = Path(current_app.instance_path) if has_app_context() else None
        found = AlertCodes(
            folder / FILE_NAME if folder else None, folder / WINDOWS_FILE_NAME if folder else None
        )
        found.load(v)
        memo["alert_codes"] = found
    assert isinstance(found, AlertCodes)
    return found
