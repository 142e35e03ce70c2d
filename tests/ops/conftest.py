"""The in-process sync world's fixtures (a SQLite central, field laptops), shared with
``tests/sync``; the live tests here define their own ``central``."""

from tests.exchange.conftest import central, laptop  # noqa: F401
