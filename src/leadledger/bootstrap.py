"""The composition root: the one place that wires settings, database and clock into an `App`."""

from __future__ import annotations

from leadledger.config import Settings
from leadledger.domain.clock import Clock, SystemClock
from leadledger.services.app import App
from leadledger.store.db import Database


def build_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db_url: str | None = None,
    smtp_url: str | None = None,
) -> App:
    settings = settings or Settings()
    return App(db=Database(db_url or settings.db), clock=clock or SystemClock(), smtp_url=smtp_url or settings.smtp)
