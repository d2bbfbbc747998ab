"""The worker: sweeps on a schedule and delivers the outbox, safely alongside other workers; the worker that
swept also runs the governance jobs that are due (monthly spot-check samples, the quarterly council pack)
and the round's other steps (`steps`: the composition root passes those of the layers above services, such
as marketing's segment webhooks, see `bootstrap.worker_steps`), before delivering, so what they queue goes out
in the same round.

On PostgreSQL a session advisory lock lets one worker sweep at a time (others skip that round) and
deliveries are claimed row by row (SKIP LOCKED plus a lease), so several workers never do the same work.
On SQLite the write lock already serialises them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import text

from leadledger.services import outbox
from leadledger.services.app import App
from leadledger.services.sweep import sweep

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
    steps: Mapping[str, Callable[[App], Any]] | None = None,
) -> None:
    """Sweep and deliver every `interval` seconds until `stop` is set (or once)."""
    stop = stop or threading.Event()
    while True:
        started = time.monotonic()
        result: dict[str, Any] = {"sweep": sweep_once(app)}
        if governance and result["sweep"] is not None:  # one worker per round: the one holding the sweep lock
            from leadledger.services.governance_jobs import run_due

            result["governance"] = run_due(app)
        if result["sweep"] is not None:
            for name, step in (steps or {}).items():
                try:
                    result[name] = step(app)
                except Exception as exc:  # one failing step must not stop the sweep and the delivery
                    result[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
        if deliver:
            result["delivery"] = outbox.deliver(app, limit=1000).as_dict()
        if report:
            report(result)
        if once or stop.wait(max(0.0, interval - (time.monotonic() - started))):
            return
