"""The running application as the services see it: a database, a clock, and the active status model."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Connection

from leadledger.domain.clock import Clock, SystemClock
from leadledger.domain.statusmodel import StatusModel
from leadledger.model.loader import LoadedModel, load_text
from leadledger.services.errors import ServiceError
from leadledger.store import repository as repo
from leadledger.store.db import Database, is_initialised


class NotInitialised(ServiceError):
    pass


@dataclass
class App:
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    smtp_url: str | None = None  # smtp://user:password@host:port (e-mail notifications); None: in-app only
    reports_db: Database | None = None  # a read replica for the reports (LEADLEDGER_REPORTS_DB); None: `db`
    _model: tuple[int, LoadedModel] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _reports_view: App | None = field(default=None, repr=False)

    def loaded_model(self, conn: Connection | None = None) -> LoadedModel:
        """The newest stored model version, compiled once per version (another process may have replaced it).

        Pass the connection of a transaction in progress to read the model inside it.
        """
        if conn is None:
            with self.db.read() as own:
                return self.loaded_model(own)
        latest = repo.latest_model_id(conn)
        if latest is None:
            raise NotInitialised("no status model yet: run `leadledger init` first")
        cached = self._model
        if cached is not None and cached[0] == latest:
            return cached[1]
        row = repo.model_row(conn, latest)
        assert row is not None
        # validated in full when it was stored; holiday tables load when first needed
        loaded = load_text(row.text, f"model version {row.id}", check_holidays=False)
        with self._lock:
            self._model = (latest, loaded)
        return loaded

    def is_initialised(self) -> bool:
        """Whether `leadledger init` has set this database up (nothing is created by asking)."""
        return is_initialised(self.db)

    def for_reports(self) -> App:
        """The app as the reports see it: reading the replica when one is configured (same clock, same model)."""
        if self.reports_db is None:
            return self
        if self._reports_view is None:
            self._reports_view = App(db=self.reports_db, clock=self.clock, smtp_url=self.smtp_url)
        return self._reports_view

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_url)

    @property
    def model(self) -> StatusModel:
        return self.loaded_model().model
