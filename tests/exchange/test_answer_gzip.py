"""Central's answers are plain gzip whichever compressor made them (ISA-L for large answers
when the central extra installed it, zlib otherwise)."""

from __future__ import annotations

import gzip
import os

import pytest

from contigo.exchange.central import server
from sync.protocol import GZIP_FAST_ABOVE


@pytest.mark.parametrize("size", [2_000, GZIP_FAST_ABOVE + 1, 3 * GZIP_FAST_ABOVE])
def test_answers_gunzip_to_the_same_bytes(size: int) -> None:
    raw = (b'{"changes":[' + os.urandom(size // 4).hex().encode() + b"]}")[:size]
    assert gzip.decompress(server._gzip(raw)) == raw


def test_without_isal_large_answers_use_zlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "igzip", None)
    raw = b'{"seq":1}' * GZIP_FAST_ABOVE
    assert gzip.decompress(server._gzip(raw)) == raw
