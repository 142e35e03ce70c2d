"""JSON for the sync hot paths, through orjson.

Every pushed op and pulled change is decoded and encoded several times on its way (the request
body, the ledger and change payloads, the encrypted visit, the response): with the standard
library that was the largest single cost of a push. orjson reads and writes the same JSON about
ten times faster. Text is compact UTF-8. Where the standard library's output is compared as text
(:func:`sync.merge.canonical`, the concurrency tokens of merged values), it stays in use: this
module is for payloads that are only ever parsed back.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
"""Keys are made text and dates, times and datetimes go through ``default`` (``str``), as
``json.dumps(value, default=str)`` does."""


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """``value`` as compact UTF-8 JSON; anything JSON has no type for is written as ``str(x)``.
    ``sort_keys`` makes equal values give equal bytes."""
    option = _OPTIONS | orjson.OPT_SORT_KEYS if sort_keys else _OPTIONS
    return orjson.dumps(value, default=str, option=option)


def loads(raw: bytes | bytearray | memoryview | str) -> Any:
    """The value of a JSON text; raises :class:`ValueError` if it is not JSON."""
    return orjson.loads(raw)
