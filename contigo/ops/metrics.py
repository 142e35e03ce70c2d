"""Prometheus metrics of the central server (``GET /metrics``).

Two kinds, chosen for gunicorn's several worker processes:

* **Events** (requests and their latency, ops by result, pull pages) are counted where they
  happen, in the worker that served them. Under gunicorn set ``PROMETHEUS_MULTIPROC_DIR`` to an
  empty folder before the server starts: every worker then writes its counts there and a scrape,
  whichever worker answers it, adds them all up (``prometheus_client`` multiprocess mode).
  Without it (one process: ``contigo serve``, tests) the counts live in the process.
* **State** (review items open by site, each device's last sync, the central's incarnation) is
  read from the database at scrape time, never kept in a process: every worker answers the
  same, a restart loses nothing, and no multiprocess gauge mode is needed.

Labels carry endpoint rules (``/sync/v1/pull``, never a URL with its query), op results, site
codes and device ids: nothing about a person.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from contigo.db import session_scope
from contigo.sites.models import Site
from sync.models import Device, ReviewItem
from sync.server.incarnation import current as current_incarnation

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "contigo_http_requests_total",
    "HTTP requests served, by endpoint rule, method and status.",
    ("endpoint", "method", "status"),
    registry=None,
)
LATENCY = Histogram(
    "contigo_http_request_duration_seconds",
    "Time to answer a request (commit included), by endpoint rule.",
    ("endpoint",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
OPS = Counter(
    "contigo_sync_ops_total",
    "Ops answered by push, by stored result; replayed says whether the ledger replayed it.",
    ("result", "replayed"),
    registry=None,
)
PULL_PAGES = Counter(
    "contigo_sync_pull_pages_total",
    "Pull pages served.",
    registry=None,
)
_EVENTS = (REQUESTS, LATENCY, OPS, PULL_PAGES)


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request under its endpoint rule (never its URL)."""
    REQUESTS.labels(endpoint, method, str(status)).inc()
    LATENCY.labels(endpoint).observe(seconds)
    if endpoint == "/sync/v1/pull" and status == 200:
        PULL_PAGES.inc()


def observe_push(results: Iterable[Mapping[str, Any]]) -> None:
    """Count the per-op results of one push answer."""
    for result in results:
        OPS.labels(str(result.get("status")), "true" if result.get("replayed") else "false").inc()


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


class DatabaseCollector(Collector):
    """Gauges read from the central database at each scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        with session_scope(self.app) as s:
            codes = {site_id: code for site_id, code in s.execute(select(Site.id, Site.code))}
            review = GaugeMetricFamily(
                "contigo_review_items_open",
                "Review items open, by the site they are assigned to.",
                labels=("site",),
            )
            for site_id, count in s.execute(
                select(ReviewItem.assigned_site_id, func.count())
                .where(ReviewItem.status == "open")
                .group_by(ReviewItem.assigned_site_id)
            ):
                review.add_metric((codes.get(site_id, "?"),), float(count))
            seen = GaugeMetricFamily(
                "contigo_device_last_sync_timestamp_seconds",
                "When each enrolled, unrevoked device last reached central (Unix time).",
                labels=("device", "site"),
            )
            for dev, site_id, at in s.execute(
                select(Device.id, Device.site_id, Device.last_seen_at).where(
                    Device.revoked_at.is_(None)
                )
            ):
                stamp = _epoch(at)
                if stamp is not None:
                    seen.add_metric((dev, codes.get(site_id, "?")), stamp)
            incarnation = current_incarnation(s)
            inc = GaugeMetricFamily(
                "contigo_central_incarnation",
                "The central database's incarnation (its number; a restore starts a new one).",
                labels=("incarnation",),
            )
            if incarnation is not None:
                inc.add_metric((incarnation.incarnation_id,), float(incarnation.number))
        yield from (review, seen, inc)


def _registry(app: Flask) -> CollectorRegistry:
    registry = CollectorRegistry()  # no auto-describe: the database is read once a scrape
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for metric in _EVENTS:
            registry.register(metric)
    registry.register(DatabaseCollector(app))
    return registry


def render(app: Flask) -> bytes:
    """The metrics in Prometheus' text format."""
    return generate_latest(_registry(app))
