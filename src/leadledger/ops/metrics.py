"""`/metrics`: Prometheus text built from this process's counters and, at scrape time, from the database.

What only the database knows is read when Prometheus scrapes (at most once per `MIN_INTERVAL` seconds,
however many scrapers there are): outbox depth and age, dead and retrying deliveries, open SLA breaches,
each worker's heartbeat and counters (sweeps, their duration, firings, deliveries), the ledger's last id,
the analytics store's lag, and whether the schema is at head. That way every API process answers the
same database-wide figures, and the work of workers running elsewhere is visible.

No lead id, name, e-mail or free text is ever a label or a value: labels are route templates, methods,
status codes, outcome kinds, SLA and worker names.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text

from leadledger.services import telemetry
from leadledger.services.app import App
from leadledger.store import partitions
from leadledger.store.db import head_revision
from leadledger.store.tables import outbox

log = logging.getLogger("leadledger.metrics")

MIN_INTERVAL = 5.0  # seconds between two reads of the database for a scrape
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "leadledger_http_requests",
    "HTTP requests answered, by method, route template and status code",
    ["method", "route", "status"],
    registry=None,
)
HTTP_SECONDS = Histogram(
    "leadledger_http_request_seconds",
    "Seconds to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=telemetry.LATENCY_BUCKETS,
    registry=None,
)
IN_PROCESS = (HTTP_REQUESTS, HTTP_SECONDS, *telemetry.COLLECTORS)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROCESS_ENV))


def build_registry(app: App) -> CollectorRegistry:
    """This process's counters (or every server process's, in multiprocess mode) plus the database's figures."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.MultiProcessCollector(registry)
    else:
        from prometheus_client import PROCESS_COLLECTOR

        for collector in IN_PROCESS:
            registry.register(collector)
        registry.register(PROCESS_COLLECTOR)
    registry.register(DatabaseCollector(app))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


class DatabaseCollector(Collector):
    """Figures read from the database when scraped; cached for `MIN_INTERVAL` seconds."""

    def __init__(self, app: App, *, min_interval: float = MIN_INTERVAL):
        self.app = app
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < self.min_interval:
                return list(cached[1])
            metrics = list(self._read())
            self._cached = (time.monotonic(), metrics)
            return metrics

    def _read(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leadledger_database_up", "1 when the database answered the last scrape")
        try:
            figures = _database_figures(self.app)
        except Exception:
            log.warning("metrics: the database did not answer", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures


def _gauge(name: str, doc: str, value: float | None, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    if value is not None:
        family.add_metric(list((labels or {}).values()), value)
    return family


def _database_figures(app: App) -> list[Metric]:
    now = app.clock.now()
    out: list[Metric] = []
    with app.db.read() as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        out.append(_gauge("leadledger_schema_at_head", "1 when the schema is at this version's migration head",
                          1 if revision == head_revision() else 0))  # fmt: skip
        last_id = conn.execute(text("SELECT max(id) FROM ledger")).scalar() or 0
        out.append(_gauge("leadledger_ledger_last_id", "The highest ledger entry id", last_id))
        depth = GaugeMetricFamily("leadledger_outbox_messages", "Outbox messages by status (pending, dead)",
                                  labels=["status"])  # fmt: skip
        retrying = 0
        oldest = None
        counts = {"pending": 0, "dead": 0}
        rows = conn.execute(
            select(outbox.c.status, func.count(), func.min(outbox.c.created_at),
                   func.sum(case((outbox.c.attempts > 0, 1), else_=0)))
            .where(outbox.c.status.in_(("pending", "dead")))
            .group_by(outbox.c.status)
        )  # fmt: skip
        for status, count, first, tried in rows:
            counts[status] = int(count)
            if status == "pending":
                retrying = int(tried or 0)
                oldest = first
        for status, count in counts.items():
            depth.add_metric([status], count)
        out.append(depth)
        out.append(_gauge("leadledger_outbox_retrying", "Pending outbox messages whose delivery failed at least once",
                          retrying))  # fmt: skip
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        out.append(_gauge("leadledger_outbox_oldest_pending_seconds", "Age of the oldest pending outbox message", age))
        breaches = GaugeMetricFamily("leadledger_sla_breaches_open",
                                     "SLA clocks breached and still running, by SLA", labels=["sla"])  # fmt: skip
        for sla, count in conn.execute(
            text("SELECT sla, count(*) FROM sla_clocks WHERE status = 'breached' AND closed_at IS NULL GROUP BY sla")
        ):
            breaches.add_metric([sla], int(count))
        out.append(breaches)
        out.extend(_worker_figures(conn, now))
        if conn.dialect.name == "postgresql":
            stray = GaugeMetricFamily("leadledger_partition_default_rows",
                                      "Rows in a default partition (0 while the worker keeps partitions ahead)",
                                      labels=["table"])  # fmt: skip
            for table, count in partitions.default_rows(conn).items():
                stray.add_metric([table], count)
            out.append(stray)
    out.extend(_analytics_figures(app, int(last_id), now))
    return out


def _worker_figures(conn: Any, now: Any) -> list[Metric]:
    from leadledger.ops.health import stale_after
    from leadledger.store.heartbeats import heartbeats

    rows = heartbeats(conn)
    age = GaugeMetricFamily("leadledger_worker_heartbeat_age_seconds", "Seconds since each worker's last heartbeat",
                            labels=["worker"])  # fmt: skip
    stale = GaugeMetricFamily("leadledger_worker_heartbeat_stale_after_seconds",
                              "When each worker's heartbeat counts as stale", labels=["worker"])  # fmt: skip
    counters = {
        "sweeps": ("leadledger_worker_sweeps", "Sweeps each worker ran (others skip a round while one sweeps)"),
        "sweep_seconds_total": ("leadledger_worker_sweep_seconds", "Seconds each worker spent sweeping"),
        "fired_total": ("leadledger_worker_rule_firings", "Time rules and SLA breaches each worker's sweeps fired"),
        "moved_total": ("leadledger_worker_rule_moves", "Status moves each worker's sweeps made"),
        "delivered_total": ("leadledger_outbox_delivered", "Outbox messages each worker delivered"),
        "failed_total": ("leadledger_outbox_delivery_failures", "Failed delivery attempts (to be retried), by worker"),
        "dead_total": ("leadledger_outbox_dead_lettered", "Messages each worker dead-lettered"),
    }
    families = {key: CounterMetricFamily(name, doc, labels=["worker"]) for key, (name, doc) in counters.items()}
    last_sweep = GaugeMetricFamily("leadledger_worker_last_sweep_seconds", "Duration of each worker's last sweep",
                                   labels=["worker"])  # fmt: skip
    freshest = None
    for row in rows:
        seconds = max(0.0, (now - row.beat_at).total_seconds())
        age.add_metric([row.worker], seconds)
        stale.add_metric([row.worker], stale_after(row.interval_seconds))
        freshest = seconds if freshest is None else min(freshest, seconds)
        for key, family in families.items():
            family.add_metric([row.worker], float(getattr(row, key) or 0))
        if row.sweep_seconds is not None:
            last_sweep.add_metric([row.worker], row.sweep_seconds)
    out: list[Metric] = [age, stale, last_sweep, *families.values()]
    out.append(_gauge("leadledger_worker_freshest_heartbeat_age_seconds",
                      "Seconds since the most recent heartbeat of any worker (absent: no worker ever ran)",
                      freshest))  # fmt: skip
    return out


def _analytics_figures(app: App, last_id: int, now: Any) -> list[Metric]:
    from leadledger.analytics.store.status import read_sync_status

    status = read_sync_status(app)
    synced = int(status.get("ledger_id", 0)) if status else 0
    out: list[Metric] = [
        _gauge("leadledger_analytics_synced_ledger_id", "The ledger id the analytics store has copied up to", synced),
        _gauge(
            "leadledger_analytics_sync_lag_entries",
            "Ledger entries not yet in the analytics store",
            max(0, last_id - synced),
        ),
    ]
    if status and status.get("synced_at"):
        from datetime import datetime

        at = datetime.fromisoformat(status["synced_at"])
        out.append(_gauge("leadledger_analytics_sync_age_seconds", "Seconds since the analytics store last synced",
                          max(0.0, (now - at).total_seconds())))  # fmt: skip
    return out
