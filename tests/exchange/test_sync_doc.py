"""docs/sync.md's table of wire schema versions says what the registry declares: every name a
version adds, no more and no less, up to the current schema."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask

from contigo.exchange.extensions import handler_registry
from contigo.vault import Vault
from sync.protocol.codes import SCHEMA_VERSION
from sync.schema import added_between, shape_at

DOC = Path(__file__).resolve().parents[2] / "docs" / "sync.md"


def documented() -> dict[int, set[str]]:
    table: dict[int, set[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        row = re.match(r"\| (\d+) \| (.*?) \|", line)
        if row:
            table[int(row[1])] = set(re.findall(r"`([^`]+)`", row[2]))
    return table


def test_the_documented_schema_versions_are_the_registrys(app: Flask) -> None:
    with app.app_context():
        registry = handler_registry(Vault())
    declared = {1: set(shape_at(registry, 1))} | {
        v: set(added_between(registry, v - 1, v)) for v in range(2, SCHEMA_VERSION + 1)
    }
    assert documented() == declared
