"""The worker: sweeps on a schedule and delivers the outbox, safely alongside other workers; the worker that
swept also runs the governance jobs that are due (monthly spot-check samples, the quarterly council pack)
and the round's other steps (`steps`: the composition root passes those of the layers above services, such
as the account flags and marketing's segment webhooks, see `bootstrap.worker_steps`), before delivering, so
what they queue goes out in the same round.

On PostgreSQL a session advisory lock lets one worker sweep at a time (others skip that round) and
deliveries are claimed row by row (SKIP LOCKED plus a lease), so several workers never do the same work.
On SQLite the write lock already serialises them.

Every round ends with a heartbeat (`store.heartbeats`): `/readyz` reports (and, with
LEADLEDGER_WORKER_EXPECTED=1, fails on) no worker having beaten recently, and `/metrics` reads each worker's
counters from there, whichever process serves the scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import text

from leadledger.services import outbox
from leadledger.services.app import App
from leadledger.services.sweep import sweep
from leadledger.store import partitions
from leadledger.store.heartbeats import WorkerTotals, beat

log = logging.getLogger("leadledger.worker")

SWEEP_LOCK = 0x4C4C5357  # "LLSW": the advisory lock key sweeps take on PostgreSQL


def sweep_once(app: App) -> dict[str, Any] | None:
    """One sweep if no other worker is sweeping right now; None when another one holds the lock."""
    if app.db.is_sqlite:
        return sweep(app).as_dict()
    with app.db.engine.connect() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SWEEP_LOCK}).scalar():
            conn.rollback()
            return None
        conn.commit()
        try:
            return sweep(app).as_dict()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SWEEP_LOCK})
            conn.commit()


def run(
    app: App,
    *,
    interval: float = 60.0,
    once: bool = False,
    deliver: bool = True,
    governance: bool = True,
    stop: threading.Event | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
    totals: WorkerTotals | None = None,
    analytics: Callable[[App], Any] | None = None,
    steps: Mapping[str, Callable[[App], Any]] | None = None,
) -> None:
    """Sweep and deliver every `interval` seconds until `stop` is set (or once), beating after each round."""
    stop = stop or threading.Event()
    totals = totals or WorkerTotals()
    started_at = app.clock.now()
    _beat(app, totals, started_at, interval)  # ready as soon as the worker runs, not after its first sweep
    while True:
        started = time.monotonic()
        result: dict[str, Any] = {"worker": totals.worker, "round": totals.rounds + 1}
        try:
            result.update(_round(app, totals, deliver, analytics, governance, steps))
            totals.last_error = None
        except Exception as exc:  # a round that fails is logged and retried next round; the beat says so
            totals.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
            result["error"] = totals.last_error
            log.exception("worker round failed", extra={"worker": totals.worker, "round": totals.rounds + 1})
        totals.rounds += 1
        result["seconds"] = round(time.monotonic() - started, 3)
        _beat(app, totals, started_at, interval)
        log.info("worker round", extra={"job": "worker_round", **_flat(result)})
        if report:
            report(result)
        if once and "error" in result:
            raise RuntimeError(result["error"])
        if once or stop.wait(max(0.0, interval - (time.monotonic() - started))):
            return


def _round(
    app: App,
    totals: WorkerTotals,
    deliver: bool,
    analytics: Callable[[App], Any] | None,
    governance: bool = True,
    steps: Mapping[str, Callable[[App], Any]] | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if not app.db.is_sqlite:
        created = _maintain_partitions(app)
        if created:
            result["partitions_created"] = created
    began = time.perf_counter()
    swept = sweep_once(app)
    result["sweep"] = swept
    if swept is not None:
        totals.sweeps += 1
        totals.sweep_seconds = time.perf_counter() - began
        totals.sweep_seconds_total += totals.sweep_seconds
        totals.fired_total += int(swept.get("fired", 0))
        totals.moved_total += int(swept.get("moved", 0))
    if governance and swept is not None:  # one worker per round: the one holding the sweep lock
        from leadledger.services.governance_jobs import run_due

        result["governance"] = run_due(app)
    if swept is not None:  # steps of the layers above (account flags, segment webhooks), before the delivery
        for name, step in (steps or {}).items():  # so what they queue goes out this round
            try:
                result[name] = step(app)
            except Exception as exc:  # one failing step must not stop the sweep and the delivery
                result[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
    if deliver:
        delivery = outbox.deliver(app, limit=1000).as_dict()
        result["delivery"] = delivery
        totals.delivered_total += int(delivery.get("delivered", 0))
        totals.failed_total += int(delivery.get("failed", 0))
        totals.dead_total += int(delivery.get("dead", 0))
    if analytics is not None:  # analytics.sync from the CLI: keeps the reports' DuckDB store warm, so a report
        stats = analytics(app)  # after a busy hour answers at once (services do not import analytics)
        result["analytics"] = {"ledger_rows": stats.ledger_rows, "seconds": round(stats.seconds, 3)}
    return result


def _maintain_partitions(app: App) -> list[str]:
    """PostgreSQL: the ledger's and activities' partitions exist for this month and the next ones."""
    try:
        with app.db.write() as conn:
            return partitions.maintain(conn, app.clock.now())
    except Exception:  # e.g. the lock wait timed out behind a long import: next round tries again
        log.warning("partition maintenance failed; retried next round", exc_info=True)
        return []


def _beat(app: App, totals: WorkerTotals, started_at: Any, interval: float) -> None:
    try:
        with app.db.write() as conn:
            beat(conn, totals, now=app.clock.now(), started_at=started_at, interval=interval)
    except Exception:  # the database is down: the round that follows reports it; readiness goes stale
        log.exception("worker heartbeat failed", extra={"worker": totals.worker})


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    """The round's summary as log fields: the sweep's and delivery's counts, not their per-rule breakdowns."""
    out: dict[str, Any] = {
        "worker": result.get("worker"),
        "round": result.get("round"),
        "seconds": result.get("seconds"),
    }
    swept = result.get("sweep")
    if isinstance(swept, dict):
        out.update({"sweep_id": swept.get("sweep_id"), "fired": swept.get("fired"), "moved": swept.get("moved"),
                    "sla_breaches": swept.get("sla_breaches")})  # fmt: skip
    elif "sweep" in result:
        out["sweep_skipped"] = True
    synced = result.get("analytics")
    if isinstance(synced, dict):
        out.update({"synced_rows": synced["ledger_rows"], "sync_seconds": synced["seconds"]})
    delivery = result.get("delivery")
    if isinstance(delivery, dict):
        out.update({k: delivery.get(k) for k in ("delivered", "failed", "dead")})
    if result.get("partitions_created"):
        out["partitions_created"] = result["partitions_created"]
    if "error" in result:
        out["error"] = result["error"]
    return out
