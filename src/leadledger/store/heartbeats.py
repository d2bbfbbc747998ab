"""The workers' heartbeat rows: written once per round by each worker, read by readiness and metrics."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from leadledger.store.tables_ops import worker_heartbeats

FORGET_AFTER = timedelta(days=7)  # rows of workers gone this long are removed by the next beat


@dataclass
class WorkerTotals:
    """What one worker process has done since it started (cumulative, as Prometheus counters are)."""

    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    rounds: int = 0
    sweeps: int = 0
    sweep_seconds: float | None = None
    sweep_seconds_total: float = 0.0
    fired_total: int = 0
    moved_total: int = 0
    delivered_total: int = 0
    failed_total: int = 0
    dead_total: int = 0
    last_error: str | None = None


def beat(conn: Connection, totals: WorkerTotals, *, now: datetime, started_at: datetime, interval: float) -> None:
    """Upsert this worker's row (the worker is the only writer of its own row)."""
    values: dict[str, Any] = {
        "beat_at": now,
        "interval_seconds": float(interval),
        "rounds": totals.rounds,
        "sweeps": totals.sweeps,
        "sweep_seconds": totals.sweep_seconds,
        "sweep_seconds_total": totals.sweep_seconds_total,
        "fired_total": totals.fired_total,
        "moved_total": totals.moved_total,
        "delivered_total": totals.delivered_total,
        "failed_total": totals.failed_total,
        "dead_total": totals.dead_total,
        "last_error": totals.last_error,
        "started_at": started_at,
    }
    changed = conn.execute(
        update(worker_heartbeats).where(worker_heartbeats.c.worker == totals.worker).values(**values)
    ).rowcount
    if not changed:
        host, _, pid = totals.worker.rpartition(":")
        conn.execute(insert(worker_heartbeats).values(worker=totals.worker, host=host, pid=int(pid), **values))
    conn.execute(delete(worker_heartbeats).where(worker_heartbeats.c.beat_at < now - FORGET_AFTER))


def heartbeats(conn: Connection) -> list[Any]:
    """Every worker row, freshest first."""
    return list(conn.execute(select(worker_heartbeats).order_by(worker_heartbeats.c.beat_at.desc())))
