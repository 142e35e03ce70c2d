"""Files that are private to their owner, and written atomically.

The laptop's database, its ``-wal`` and ``-shm`` files and every backup are created readable by
their owner only (0600 on POSIX; folders 0700). SQLite creates a database's journal, WAL and
shared-memory files with the mode of the database file itself, so a private database file keeps
them private too.

A copy is written under a temporary name in the destination folder, flushed to disk, then
renamed over its final name (``os.replace`` is atomic on POSIX and Windows alike) and the folder
entry flushed where the OS allows it: whoever sees a file under its final name sees all of it,
even after a crash or a kill in the middle of the copy.

Pure Python and portable: the field laptops run Windows too, where the POSIX modes and the
folder fsync are skipped (there the instance folder's own access rights protect the files).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

log = logging.getLogger(__name__)

POSIX = os.name == "posix"
PARTIAL = ".partial"
STALE_PARTIAL_SECONDS = 3600


def make_private(path: Path) -> None:
    """Restrict an existing file to its owner (0600); nothing to do off POSIX."""
    if POSIX and path.exists():
        path.chmod(0o600)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if missing, restricted to its owner (0700).

    A folder that already exists is left as it is (it may be a USB stick with no modes); what
    is written into it is private on its own.
    """
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if POSIX:
            path.chmod(0o700)
    return path


def private_sqlite_file(path: Path) -> None:
    """Make sure the database at ``path`` is private before SQLite opens it.

    A missing file is created empty with mode 0600 (SQLite takes an empty file as a new
    database), so it is never world-readable, not even for a moment; an existing one, and its
    ``-wal``/``-shm`` files, are tightened to 0600.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        make_private(Path(f"{path}{suffix}"))


def fsync_file(path: Path) -> None:
    """Flush a file's content to the disk (opened for writing: Windows flushes no other)."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename) to the disk where the OS allows it (not Windows)."""
    if not POSIX:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(dest: Path) -> Iterator[Path]:
    """Yield a private, empty temporary path beside ``dest`` to write; on success it is fsynced
    and renamed to ``dest``, on failure removed. A kill at any moment leaves either no file
    named ``dest`` or a complete one (and at most a ``.partial`` file, removed by
    :func:`remove_stale_partials`)."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=PARTIAL, dir=dest.parent)
    os.close(fd)  # mkstemp creates it 0600
    tmp = Path(name)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            with suppress(OSError):
                leftover.unlink()
        raise
    fsync_dir(dest.parent)


def remove_stale_partials(folder: Path, older_than_s: float = STALE_PARTIAL_SECONDS) -> int:
    """Remove what killed copies left in ``folder`` (``.partial`` files older than an hour, so
    a copy still being written by another process is left alone). Returns how many."""
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for entry in folder.glob(f".*{PARTIAL}*"):
        with suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
    if removed:
        log.info("removed %d unfinished copies from %s", removed, folder)
    return removed
