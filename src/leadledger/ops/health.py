"""Readiness: the database answers and its schema is the one this code expects; and is a worker alive?

`/healthz` only says the process is up; `/readyz` runs these checks. Answers name each check and say why
it failed in words that carry no secret (never the database URL, a host or a driver's message).

Whether a stale worker makes the process *not ready* is the deployment's call, because the API answers
every request without a worker (sweeps, deliveries and governance jobs wait for it). By default the worker
check is reported but optional: a missing or stale heartbeat answers 200 with status "degraded", so
`make run` (no worker) and API replicas behind a load balancer are not taken out of rotation when the
worker dies, which would turn late sweeps into a full outage; alert on the heartbeat metric instead. A
deployment that runs a worker and wants the probe to guard it says so with LEADLEDGER_WORKER_EXPECTED=1:
then a missing or stale heartbeat answers 503.
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

EXPECTED_ENV = "LEADLEDGER_WORKER_EXPECTED"
MIN_STALE_SECONDS = 60.0  # a heartbeat is stale after max(this, 3 x the worker's interval) ...
STALE_INTERVALS = 3.0


def stale_after(interval: float) -> float:
    """... unless LEADLEDGER_WORKER_STALE_SECONDS says otherwise."""
    configured = os.environ.get("LEADLEDGER_WORKER_STALE_SECONDS")
    if configured:
        return float(configured)
    return max(MIN_STALE_SECONDS, STALE_INTERVALS * interval)


def worker_expected() -> bool:
    """LEADLEDGER_WORKER_EXPECTED=1 (true, yes, on): a missing or stale worker makes /readyz fail."""
    return os.environ.get(EXPECTED_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()  # checks reported, whose failure degrades instead of failing
    ok: bool = True
    degraded: bool = False

    def fail(self, name: str, why: str) -> None:
        self.checks[name] = why
        if name in self.optional:
            self.degraded = True
        else:
            self.ok = False

    @property
    def status(self) -> str:
        return "not ready" if not self.ok else "degraded" if self.degraded else "ready"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "checks": self.checks, "optional": sorted(self.optional)}


def readiness(app: App, *, now: datetime | None = None, expect_worker: bool | None = None) -> Readiness:
    """The checks; the worker's decides readiness only when expected (default: LEADLEDGER_WORKER_EXPECTED)."""
    expect_worker = worker_expected() if expect_worker is None else expect_worker
    result = Readiness(optional=frozenset() if expect_worker else frozenset({"worker"}))
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
