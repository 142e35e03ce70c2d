"""Structured logs: one JSON object per line, carrying ids, codes and timings only.

Every request answered by central is logged once (``contigo.ops.request``) with its request id,
method, endpoint rule (never the URL: a query may hold a cursor, a path a person's id), status,
duration and, for a device's sync request, the device id and its site's code. Nothing else of a
request is written: no body, no query, no form field, no header value. Exceptions are logged by
type and frame, never by message (a message can quote a value).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

FIELDS = ("request_id", "method", "endpoint", "status", "duration_ms", "device", "site")
"""The only record attributes a log line carries beyond time, level, logger and message."""
_MARK = "_contigo_json"


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON with :data:`FIELDS` when present."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            frames = traceback.extract_tb(record.exc_info[2])
            line["exc"] = record.exc_info[0].__name__
            line["at"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in frames[-5:]]
        return json.dumps(line, separators=(",", ":"), sort_keys=True)


def install(level: str = "INFO") -> None:
    """Write the ``contigo`` and ``sync`` loggers as JSON lines to stderr (once per process:
    gunicorn's workers each create the app once, tests many times)."""
    for name in ("contigo", "sync"):
        logger = logging.getLogger(name)
        if any(getattr(h, _MARK, False) for h in logger.handlers):
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
