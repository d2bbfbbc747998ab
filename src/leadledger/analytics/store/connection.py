"""The analytics store's file, connection, tables and meta (what a sync reports is `SyncStats`).

Many readers, one writer per file: opening waits for another process's lock instead of failing; an
in-memory SQLite database gets an in-memory store that lives as long as its App.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from leadledger.services.app import App

if TYPE_CHECKING:  # duckdb is imported where a store is opened: every CLI call would pay ~0.1 s for it
    import duckdb


SCHEMA_VERSION = "9"  # the copied tables: a change resets the store (a full copy)
LOCK_WAIT_SECONDS = 60.0

ProgressFn = Callable[[str, int, int], None]


# (name in ledger_m, DuckDB type, SQLite expression, PostgreSQL expression)
LEDGER_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "BIGINT", "id", "id"),
    ("lead_id", "VARCHAR", "lead_id", "lead_id"),
    ("seq", "INTEGER", "seq", "seq"),
    ("ts", "TIMESTAMP", "at", "at"),
    ("kind", "VARCHAR", "kind", "kind"),
    ("actor", "VARCHAR", "actor", "actor"),
    ("actor_role", "VARCHAR", "actor_role", "actor_role"),
    ("source", "VARCHAR", "source", "source"),
    ("from_status", "VARCHAR", "from_status", "from_status"),
    ("to_status", "VARCHAR", "to_status", "to_status"),
    ("to_stage", "VARCHAR", "to_stage", "to_stage"),
    ("to_owner", "VARCHAR", "to_owner", "to_owner"),
    ("reason", "VARCHAR", "reason", "reason"),
    ("rule", "VARCHAR", "rule", "rule"),
    ("override_rule", "VARCHAR", "override_rule", "override_rule"),
    ("off_model", "BOOLEAN", "CASE WHEN off_model THEN 1 ELSE 0 END", "CASE WHEN off_model THEN 1 ELSE 0 END"),
    ("re_eval", "VARCHAR", "json_extract(data, '$.re_evaluate_on')", "data->>'re_evaluate_on'"),
    ("data", "VARCHAR", "data", "data::text"),
)
ACTIVITY_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "BIGINT", "id", "id"),
    ("lead_id", "VARCHAR", "lead_id", "lead_id"),
    ("type", "VARCHAR", "type", "type"),
    ("ts", "TIMESTAMP", "at", "at"),
)
LEAD_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "VARCHAR", "id", "id"),
    ("source", "VARCHAR", "source", "source"),
    ("campaign", "VARCHAR", "campaign", "campaign"),
    ("incomplete", "BOOLEAN", "CASE WHEN incomplete THEN 1 ELSE 0 END", "CASE WHEN incomplete THEN 1 ELSE 0 END"),
    ("account_key", "VARCHAR", "account_key", "account_key"),
)
# every account-review flag with its times (services.accounts): small, so copied whole at every sync
FLAG_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("account", "VARCHAR", "account", "account"),
    ("raised_at", "TIMESTAMP", "raised_at", "raised_at"),
    ("cleared_at", "TIMESTAMP", "cleared_at", "cleared_at"),
    ("dismissed_at", "TIMESTAMP", "dismissed_at", "dismissed_at"),
)


def _table_ddl(name: str, columns: Sequence[tuple[str, str, str, str]]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c[0]} {c[1]}' for c in columns)})"


BASE_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    _table_ddl("ledger_m", LEDGER_COLUMNS),
    _table_ddl("leads_m", LEAD_COLUMNS),
    "CREATE TABLE IF NOT EXISTS act_first (lead_id VARCHAR, type VARCHAR, first_ts TIMESTAMP)",
    # every activity (lead, type, time): what was done during a stint (governance's usage comparisons)
    "CREATE TABLE IF NOT EXISTS act_m (lead_id VARCHAR, type VARCHAR, ts TIMESTAMP)",
    # ids of activities above the final watermark already counted (PostgreSQL reads them again until final)
    "CREATE TABLE IF NOT EXISTS act_recent (id BIGINT)",
    _table_ddl("flags_m", FLAG_COLUMNS),
)
DERIVED_TABLES = ("inst", "stints", "first_touch", "lead_facts", "lead_owners", "calday", "fvals")


def store_path(app: App) -> str:
    """Where the DuckDB file lives: $LEADLEDGER_ANALYTICS_DB, else next to the SQLite file, else a cache dir.

    An in-memory SQLite database gets an in-memory store (kept for the life of the process).
    """
    configured = os.environ.get("LEADLEDGER_ANALYTICS_DB")
    if configured:
        return configured
    url = make_url(app.db.url)
    if app.db.is_sqlite:
        database = url.database or ""
        if database in ("", ":memory:"):
            return ":memory:"
        path = Path(database).expanduser()
        return str(path.with_name(path.stem + ".analytics.duckdb"))
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leadledger"
    name = f"analytics-{url.host or 'local'}-{url.port or 5432}-{url.database or 'postgres'}.duckdb"
    return str(cache / name)


@dataclass
class SyncStats:
    """What one sync did, for progress output and the benchmark."""

    ledger_rows: int = 0
    activity_rows: int = 0
    leads_refreshed: int = 0
    derived_leads: int = 0
    full_rebuild: bool = False
    reset: bool = False
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    # how new rows came over: "batches" (CSV chunks), "postgres scanner" (a first sync), or "sqlite reader"
    # (SQLite: many rows through the child process, the rest in batches)
    method: str = ""


_process_lock = threading.Lock()
_path_locks: dict[str, threading.Lock] = {}
_memory_stores: dict[int, duckdb.DuckDBPyConnection] = {}


def _lock_for(path: str) -> threading.Lock:
    with _process_lock:
        return _path_locks.setdefault(path, threading.Lock())


@contextmanager
def open_store(app: App, path: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection to the store, held for the duration of the block only.

    Another process (the web server, a second CLI) may hold the file for a moment: opening waits for it
    instead of failing. In-memory stores live as long as the App object.
    """
    import duckdb

    target = path or store_path(app)
    with _lock_for(target if target != ":memory:" else f":memory:{id(app)}"):
        if target == ":memory:":
            conn = _memory_stores.get(id(app))
            if conn is None:
                conn = _memory_stores[id(app)] = duckdb.connect(":memory:")
                _configure(conn, None)
                # the id of a collected App can be reused: drop its store with it
                weakref.finalize(app, forget_memory_store_id, id(app))
            yield conn
            return
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                conn = duckdb.connect(target)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        try:
            _configure(conn, target)
            yield conn
        finally:
            conn.close()


def forget_memory_store_id(app_id: int) -> None:
    """Drop the in-memory store of an App that is gone."""
    conn = _memory_stores.pop(app_id, None)
    if conn is not None:
        conn.close()


REBUILD_MEMORY_MB = 2_000  # the default rebuild limit's ceiling: a first sync should not take a server's memory


def memory_limit() -> str:
    """DuckDB's memory limit for syncs and reports: LEADLEDGER_ANALYTICS_MEMORY, 640MB unless set."""
    return os.environ.get("LEADLEDGER_ANALYTICS_MEMORY", "640MB")


def rebuild_memory_limit() -> str:
    """The limit while every derived table is recomputed (the first sync, a changed model): the stints' sorts
    spill to disk at the reports' limit (a full derive at 1 M leads took 57 s with 640MB, 50 s with 1GB,
    43.5 s with 2GB, 35.5 s with 4GB). LEADLEDGER_ANALYTICS_REBUILD_MEMORY, else a quarter of the machine's
    memory up to REBUILD_MEMORY_MB, and never below the reports' limit (whose setting then wins)."""
    configured = os.environ.get("LEADLEDGER_ANALYTICS_REBUILD_MEMORY")
    if configured:
        return configured
    try:
        quarter_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4 // 1_000_000
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no guess, the reports' limit
        return memory_limit()
    wanted_mb = min(quarter_mb, REBUILD_MEMORY_MB)
    reports_mb = _megabytes(memory_limit())
    if reports_mb is None or wanted_mb <= reports_mb:
        return memory_limit()
    return f"{wanted_mb}MB"


def _megabytes(setting: str) -> int | None:
    """'640MB', '2GB', '1.5GiB' in MB; None for what this does not read (the setting is then left as given)."""
    units = {"KB": 1e-3, "MB": 1, "GB": 1e3, "TB": 1e6, "KIB": 1.024e-3, "MIB": 1.048576, "GIB": 1073.741824}
    text = setting.strip().upper().replace(" ", "")
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return int(float(text[: -len(unit)]) * units[unit])
            except ValueError:
                return None
    return None


def _configure(conn: duckdb.DuckDBPyConnection, path: str | None) -> None:
    threads = max(1, min(os.cpu_count() or 1, 4))
    conn.execute(f"SET threads = {threads}")
    conn.execute(f"SET memory_limit = '{safe_setting(memory_limit())}'")
    conn.execute("SET preserve_insertion_order = false")
    if path is not None:
        spill = Path(path).with_suffix(".tmp")
        conn.execute(f"SET temp_directory = '{safe_setting(str(spill))}'")


def safe_setting(value: str) -> str:
    if "'" in value:
        raise ValueError(f"refusing a setting with a quote in it: {value!r}")
    return value


# --- meta -------------------------------------------------------------------------------------------


def read_meta(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def write_meta(conn: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> None:
    for key, value in values.items():
        conn.execute(
            "INSERT INTO meta VALUES ($k, $v) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"k": key, "v": None if value is None else str(value)},
        )


def reset(conn: duckdb.DuckDBPyConnection) -> None:
    for table in ("meta", "ledger_m", "leads_m", "act_first", "act_m", "act_recent", "flags_m", *DERIVED_TABLES):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for ddl in BASE_TABLES:
        conn.execute(ddl)
    write_meta(conn, {"schema_version": SCHEMA_VERSION})


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(BASE_TABLES[0])
    version = read_meta(conn).get("schema_version")
    if version != SCHEMA_VERSION:
        reset(conn)


def count_rows(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0])
