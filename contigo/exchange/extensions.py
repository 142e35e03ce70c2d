"""The one declared hook between Contigo's domain packages and its side of sync.

A domain package that adds something to sync (an entity type and its handler, a scope hook, a
central-only finder) declares it once, as a module-level ``EXTENSION`` (a :class:`SyncExtension`),
and is named in ``SYNC_EXTENSIONS`` (:mod:`contigo.config`). :mod:`contigo.exchange` loads the
named modules when it builds its handler registry, so the glue never imports a domain package's
sync module, and a domain package imports only this module (and the public
:mod:`contigo.exchange.batch` and :mod:`contigo.exchange.ops`), never the glue's internals.

What a domain needs back from the glue at run time (the central server's sync configuration,
the handler registry, the laptop's visitor lookup) it reads through the accessors below; the glue
puts the providers in ``app.extensions`` when it is installed (:mod:`contigo.exchange.install`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

from contigo.config import SYNC_EXTENSIONS
from sync.outbox import get_state

if TYPE_CHECKING:
    from contigo.vault import Vault
    from sync.handlers import HandlerRegistry
    from sync.server import ServerConfig

#: The laptop's sync state key holding its own site's code (written at enrolment).
SITE_CODE = "site_code"

SERVER_CONFIG = "contigo.sync_server"
SERVER_CONFIG_FACTORY = "contigo.sync_server_factory"
REGISTRY_FACTORY = "contigo.sync_registry_factory"
VISITOR_LOOKUP = "contigo.visitor_lookup"


@dataclass(frozen=True)
class SyncExtension:
    """What one domain package adds to sync.

    ``install`` registers its handlers, declared entity types and scope hooks on every handler
    registry the glue builds (laptop and central alike); ``central`` wires what only the central
    server runs (settings, review finders), once per app, after its sync endpoints exist."""

    name: str
    install: Callable[[HandlerRegistry, Vault], None] | None = None
    central: Callable[[Flask], None] | None = None


@cache
def _load(names: tuple[str, ...]) -> tuple[SyncExtension, ...]:
    found = []
    for name in names:
        ext = getattr(importlib.import_module(name), "EXTENSION", None)
        if not isinstance(ext, SyncExtension):
            raise TypeError(f"{name} declares no EXTENSION (a SyncExtension)")
        found.append(ext)
    return tuple(found)


def extensions(names: Iterable[str] = SYNC_EXTENSIONS) -> tuple[SyncExtension, ...]:
    """The declared extensions of the modules ``names``, in order."""
    return _load(tuple(names))


def server_config(app: Flask) -> ServerConfig:
    """The central server's sync configuration (its handler registry, keys and limits), built
    once per process by the glue's central side."""
    cfg: ServerConfig | None = app.extensions.get(SERVER_CONFIG)
    if cfg is None:
        cfg = app.extensions[SERVER_CONFIG_FACTORY](app)
        app.extensions[SERVER_CONFIG] = cfg
    return cfg


def handler_registry(vault: Vault) -> HandlerRegistry:
    """Every entity handler of Contigo over ``vault`` (with every extension's)."""
    factory: Callable[[Vault], HandlerRegistry] = current_app.extensions[REGISTRY_FACTORY]
    return factory(vault)


def visitor_lookup(app: Flask) -> Callable[..., Any]:
    """The laptop's request to the central server for a visitor's record."""
    lookup: Callable[..., Any] = app.extensions[VISITOR_LOOKUP]
    return lookup


def laptop_site_code(s: Session) -> str | None:
    """The code of the site this laptop was enrolled for (None before enrolment)."""
    return get_state(s, SITE_CODE)
