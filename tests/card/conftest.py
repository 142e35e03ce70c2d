"""Card fixtures: the sync harness's central and laptops (tests/exchange/conftest.py)."""

from tests.exchange.conftest import central, laptop

__all__ = ["central", "laptop"]
