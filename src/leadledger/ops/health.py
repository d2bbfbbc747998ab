"""Readiness: the database answers, its schema is the one this code expects, and a worker is alive.

`/healthz` only says the process is up; `/readyz` runs these checks. Answers name each check and say why
it failed in words that carry no secret (never the database URL, a host or a driver's message).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from leadledger.services.app import App
from leadledger.store.db import head_revision
from leadledger.store.heartbeats import heartbeats

log = logging.getLogger("leadledger.health")

MIN_STALE_SECONDS = 60.0  # a heartbeat is stale after max(this, 3 x the worker's interval) ...
STALE_INTERVALS = 3.0


def stale_after(interval: float) -> float:
    """... unless LEADLEDGER_WORKER_STALE_SECONDS says otherwise."""
    configured = os.environ.get("LEADLEDGER_WORKER_STALE_SECONDS")
    if configured:
        return float(configured)
    return max(MIN_STALE_SECONDS, STALE_INTERVALS * interval)


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)
    ok: bool = True

    def fail(self, name: str, why: str) -> None:
        self.checks[name] = why
        self.ok = False

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ready" if self.ok else "not ready", "checks": self.checks}


def readiness(app: App, *, now: datetime | None = None) -> Readiness:
    result = Readiness()
    now = now or app.clock.now()
    try:
        with app.db.read() as conn:
            conn.execute(text("SELECT 1"))
            revision = MigrationContext.configure(conn).get_current_revision()
    except Exception:
        log.warning("readiness: the database did not answer", exc_info=True)
        result.fail("database", "unreachable")
        result.fail("schema", "unknown")
        result.fail("worker", "unknown")
        return result
    result.checks["database"] = "ok"
    head = head_revision()
    if revision == head:
        result.checks["schema"] = "ok"
    else:
        result.fail("schema", f"at {revision or 'nothing'}, this version needs {head}: run `leadledger init`")
    try:
        with app.db.read() as conn:
            beats = heartbeats(conn)
    except Exception:  # no heartbeat table yet (the schema check says why)
        log.warning("readiness: cannot read worker heartbeats", exc_info=True)
        result.fail("worker", "unknown")
        return result
    worker_check(result, beats, now)
    return result


def worker_check(result: Readiness, beats: list[Any], now: datetime) -> None:
    if not beats:
        result.fail("worker", "no worker has reported: run `leadledger worker`")
        return
    freshest = min(beats, key=lambda row: (now - row.beat_at).total_seconds() / stale_after(row.interval_seconds))
    age = (now - freshest.beat_at).total_seconds()
    limit = stale_after(freshest.interval_seconds)
    if age > limit:
        result.fail("worker", f"last heartbeat {age:.0f} s ago (stale after {limit:.0f} s)")
    else:
        result.checks["worker"] = "ok"
