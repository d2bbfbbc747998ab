"""Tables of running the service: the workers' heartbeats.

Each worker process upserts one row per round: `/readyz` reads the freshest beat, and `/metrics` reads
the counters every worker keeps there (sweeps, firings, deliveries), so a scrape of any API process sees
the work of workers running elsewhere.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, String, Table, Text

from leadledger.store.tables import UTCDateTime, metadata

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("worker", String(300), primary_key=True),  # host:pid
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("beat_at", UTCDateTime(), nullable=False),
    Column("interval_seconds", Float, nullable=False),
    Column("rounds", BigInteger, nullable=False),
    Column("sweeps", BigInteger, nullable=False),  # rounds in which this worker swept (others skip when one is)
    Column("sweep_seconds", Float),  # the last sweep's duration
    Column("sweep_seconds_total", Float, nullable=False),
    Column("fired_total", BigInteger, nullable=False),
    Column("moved_total", BigInteger, nullable=False),
    Column("delivered_total", BigInteger, nullable=False),
    Column("failed_total", BigInteger, nullable=False),
    Column("dead_total", BigInteger, nullable=False),
    Column("last_error", Text),
)
