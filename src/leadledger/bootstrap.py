"""The composition root: the one place that wires settings, database and clock into an `App`."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from leadledger.config import Settings
from leadledger.domain.clock import Clock, SystemClock
from leadledger.services.app import App
from leadledger.store.db import Database

GC_THRESHOLD = (100_000, 50, 100)  # CPython's default is (700, 10, 10)


def tune_gc() -> None:
    """Run the cyclic garbage collector far less often than CPython's default (every 700 allocations).

    A unit of work keeps thousands of short-lived dicts and rows alive at once, so the default spent 10-20 %
    of a batch scanning them for cycles they do not have (measured: batched changes +25-50 %, event apply
    +27 %). Reference counting still frees everything at once; only cycles wait a little longer. The
    threshold is process-wide, so the composition root sets it, and never lowers one set higher.
    """
    if gc.get_threshold()[0] < GC_THRESHOLD[0]:
        gc.set_threshold(*GC_THRESHOLD)


def build_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db_url: str | None = None,
    smtp_url: str | None = None,
    reports_db_url: str | None = None,
) -> App:
    tune_gc()
    settings = settings or Settings()
    replica = reports_db_url or settings.reports_db
    return App(
        db=Database(db_url or settings.db),
        clock=clock or SystemClock(),
        smtp_url=smtp_url or settings.smtp,
        reports_db=Database(replica) if replica else None,
    )


def worker_steps() -> dict[str, Callable[[App], Any]]:
    """What the worker runs each round besides the sweep, the governance jobs and the delivery: steps of the
    layers above the services, which the worker (a service) cannot import itself."""
    from leadledger.marketing.hooks import sync_hooks
    from leadledger.services.accounts import refresh_flags

    # accounts first: a segment reading the account flag then sees this round's flags
    return {"account_flags": refresh_flags, "segment_hooks": sync_hooks}
