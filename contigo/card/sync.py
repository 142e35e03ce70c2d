"""The card's hook into sync: a laptop keeps what each ``hello`` says about card trust."""

from __future__ import annotations

from contigo.card.store import note_hello
from contigo.exchange.extensions import SyncExtension
from contigo.vault import Vault
from sync.client import scope as client_scope
from sync.handlers import HandlerRegistry


def install(registry: HandlerRegistry, vault: Vault) -> None:
    """Read the card authority, this device's certificate and the revocations from ``hello``."""
    readers = client_scope.hooks(registry).hello_readers
    if note_hello not in readers:
        readers.append(note_hello)


EXTENSION = SyncExtension("card", install=install)
