"""The sync harness's central and laptops, for the sign-in tests that run on central."""

from __future__ import annotations

from tests.exchange.conftest import central, laptop

__all__ = ["central", "laptop"]
