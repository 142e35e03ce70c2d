"""Pausing Python's cyclic garbage collector while a push batch or a pulled page is applied.

Applying a batch or a page allocates tens of thousands of short-lived objects (decoded JSON, ORM
rows, held rows). Each allocation burst trips the collector, and a full collection walks every
live object of the process: about a fifth of the time of a push or a pull page went there. The
work is bounded (one batch, one page), so the collector is paused for its length and resumes
after it, when the next collection frees whatever cycles it left. Reference counting, which
frees nearly everything, never stops.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector paused. Keeps: nestable and thread-safe (the
    collector is one per process: it resumes when the last block ends, and only if it was
    running when the first began)."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
