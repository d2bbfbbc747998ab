"""The import audit log: one row per `leadledger import` run, with what it read and what it recorded.

Staging lives outside the database (unlinked temporary files, see `leadledger.importers.staging`), so a
killed import leaves nothing to clean up here but a run still marked `running`, which the next run on the
same host marks `interrupted`.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from leadledger.store.tables import Id, Json, UTCDateTime, metadata

import_runs = Table(
    "import_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # leads | history
    Column("preset", String(32), nullable=False),
    Column("file", Text, nullable=False),
    Column("mapping", Text),  # the mapping file's text, so a run can be understood (and repeated) later
    Column("actor", String(100), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("status", String(16), nullable=False),  # running | done | failed | interrupted
    Column("summary", Json),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Index("ix_import_runs_status", "status"),
)
