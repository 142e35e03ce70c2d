"""Keeping the rows a sync step reads in the session while the step runs.

SQLAlchemy's identity map holds objects weakly: a row that ``Session.get`` returned and nobody
kept is dropped at once, so the next ``get`` of the same key asks the database again. Applying a
push batch on the server, or a pull page on a device, looks the same rows up over and over (the
pushing device's stand-in user, its site, the person of each visit, the visit a finder reads
right after it was inserted), which made every op or change pay for several round trips.
Holding strong references for the length of the batch or page turns those repeats into
identity-map hits; the references go when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


@contextmanager
def rows_held(s: Session) -> Iterator[list[Any]]:
    """Keep alive every object ``s`` loads or persists inside the block.

    Keeps: what the session returns is unchanged (the same rows, expired and refreshed as
    before); only the number of identical primary-key queries falls.
    """
    kept: list[Any] = []

    def keep(_session: Session, instance: Any) -> None:
        kept.append(instance)

    event.listen(s, "loaded_as_persistent", keep)
    event.listen(s, "pending_to_persistent", keep)
    try:
        yield kept
    finally:
        event.remove(s, "loaded_as_persistent", keep)
        event.remove(s, "pending_to_persistent", keep)
