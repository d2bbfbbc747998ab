"""How far the analytics store has copied, in a small file beside it that `/metrics` reads without opening
DuckDB (another process may hold the store's lock for minutes)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadledger.analytics.store.connection import store_path
from leadledger.services.app import App

if TYPE_CHECKING:
    import duckdb

_memory_status: dict[int, dict[str, Any]] = {}


def _status_file(store: str) -> Path:
    return Path(store + ".sync.json")


def write_sync_status(conn: duckdb.DuckDBPyConnection, app: App, ledger_id: int) -> None:
    """Record the ledger id the store has copied up to, and when."""
    status = {"ledger_id": ledger_id, "synced_at": app.clock.now().isoformat()}
    rows = conn.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    path = rows[0][0] if rows and rows[0][0] else None
    if path is None:
        _memory_status[id(app)] = status
        return
    target = _status_file(path)
    scratch = target.with_name(target.name + f".{os.getpid()}.tmp")
    scratch.write_text(json.dumps(status), encoding="utf-8")
    os.replace(scratch, target)


def read_sync_status(app: App) -> dict[str, Any] | None:
    """What the last sync of this app's store copied (`ledger_id`) and when (`synced_at`); None before any."""
    path = store_path(app)
    if path == ":memory:":
        return _memory_status.get(id(app))
    try:
        status: dict[str, Any] = json.loads(_status_file(path).read_text(encoding="utf-8"))
        return status
    except (OSError, ValueError):
        return None
