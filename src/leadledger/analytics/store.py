"""The analytics store: a DuckDB copy of the ledger kept in step by id watermarks, plus stints derived from it.

Why DuckDB and not stint rows written by the services: the reports scan millions of stints (durations,
bottlenecks, funnels); SQLite's row engine needs seconds for one such scan at 1 M leads, DuckDB's columnar
engine a tenth of that. The ledger is append-only, so a copy is kept current by fetching the rows whose id
is above a watermark; no write path has to call anything, and both SQLite and PostgreSQL feed the same
DuckDB SQL, so the answers cannot differ between the two stores.

What is kept (all in one DuckDB file, see `store_path`):

* ``ledger_m`` – the ledger columns reports need (one row per entry), statuses named as the newest model
  names them (`analytics.status_map`: renamed, merged and split statuses; ``ledger_rec`` keeps what was recorded).
* ``leads_m`` – source, campaign and the incomplete flag of each lead (refreshed when its ledger grows).
* ``act_first`` – the first time each activity type was logged on each lead (first touch needs no more).
* ``act_m`` – every activity's lead, type and time (what was done during a stint, for governance).
* ``inst`` – derived: a lead's instants (entries at the same ``at`` collapse into the one with the highest
  seq) with the time of the next instant, so "the state at T" is a filter, not an aggregation.
* ``stints`` – derived: time in one status, from entering it to the next change of status, with the
  attributes of the entry that started it and business time counters for every calendar of the model.
* ``first_touch`` – derived: when each lead was first touched, by whom, since when that owner had it.
* ``calday`` – business time per calendar and UTC day (see `calendar_days`).
* ``fvals`` – derived: each field value a lead's entries set (the data every entry captured), with the time
  the next value replaced it, so "the lead's fields at T" is a filter, as for the state (segments read it).

Derived rows are recomputed for the leads the new rows concern (late imported history included), and for
every lead when the status model changes (calendars, outreach activity types) or the data leaves the
range the day table covers.

PostgreSQL hands out sequence values before commit, so a row with a lower id can become visible after a
higher one was copied. The watermark therefore only advances past ids once every transaction that was in
progress when they were read has ended (``pg_current_snapshot``); rows above the final watermark are read
again and de-duplicated by id. SQLite serialises writers, so there the highest id read is final.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from leadledger.analytics import benchmarks as seed
from leadledger.analytics import status_map
from leadledger.analytics.calendar_days import DayTable, build_day_table, day_number
from leadledger.domain.segments import LEDGER_META_KEYS
from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.store.bulk import chunks

if TYPE_CHECKING:  # duckdb is imported where a store is opened: every CLI call would pay ~0.1 s for it
    import duckdb

SCHEMA_VERSION = "8"  # the copied tables: a change resets the store (a full copy)
DERIVED_VERSION = "6"  # the derived tables: a change recomputes them from the copy
FULL_REBUILD_SHARE = 0.2  # recompute every lead when more than this share of leads is touched at once
FULL_REBUILD_MIN = 10_000  # ... and at least this many (small stores always update in place)
CHUNK_ROWS = 250_000
DAYS_BEFORE = 31  # margin of the business-time day table before the earliest entry
DAYS_AFTER = 800  # ... and after the latest entry (or today), so a year of new entries fits without a rebuild
LOCK_WAIT_SECONDS = 60.0
NULL_TEXT = "\\N"  # how NULL travels in the CSV between the stores (a literal \N text would read as NULL)

ProgressFn = Callable[[str, int, int], None]

# (name in ledger_m, DuckDB type, SQLite expression, PostgreSQL expression)
_LEDGER_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
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
_ACTIVITY_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "BIGINT", "id", "id"),
    ("lead_id", "VARCHAR", "lead_id", "lead_id"),
    ("type", "VARCHAR", "type", "type"),
    ("ts", "TIMESTAMP", "at", "at"),
)
_LEAD_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "VARCHAR", "id", "id"),
    ("source", "VARCHAR", "source", "source"),
    ("campaign", "VARCHAR", "campaign", "campaign"),
    ("incomplete", "BOOLEAN", "CASE WHEN incomplete THEN 1 ELSE 0 END", "CASE WHEN incomplete THEN 1 ELSE 0 END"),
)


def _table_ddl(name: str, columns: Sequence[tuple[str, str, str, str]]) -> str:
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{c[0]} {c[1]}' for c in columns)})"


_BASE_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    _table_ddl("ledger_m", _LEDGER_COLUMNS),
    _table_ddl("leads_m", _LEAD_COLUMNS),
    "CREATE TABLE IF NOT EXISTS act_first (lead_id VARCHAR, type VARCHAR, first_ts TIMESTAMP)",
    # every activity (lead, type, time): what was done during a stint (governance's usage comparisons)
    "CREATE TABLE IF NOT EXISTS act_m (lead_id VARCHAR, type VARCHAR, ts TIMESTAMP)",
    # ids of activities above the final watermark already counted (PostgreSQL reads them again until final)
    "CREATE TABLE IF NOT EXISTS act_recent (id BIGINT)",
)
_DERIVED_TABLES = ("inst", "stints", "first_touch", "lead_facts", "lead_owners", "calday", "fvals")


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


def _configure(conn: duckdb.DuckDBPyConnection, path: str | None) -> None:
    threads = max(1, min(os.cpu_count() or 1, 4))
    memory = os.environ.get("LEADLEDGER_ANALYTICS_MEMORY", "640MB")
    conn.execute(f"SET threads = {threads}")
    conn.execute(f"SET memory_limit = '{_safe_setting(memory)}'")
    conn.execute("SET preserve_insertion_order = false")
    if path is not None:
        spill = Path(path).with_suffix(".tmp")
        conn.execute(f"SET temp_directory = '{_safe_setting(str(spill))}'")


def _safe_setting(value: str) -> str:
    if "'" in value:
        raise ValueError(f"refusing a setting with a quote in it: {value!r}")
    return value


# --- meta -------------------------------------------------------------------------------------------


def _meta(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _set_meta(conn: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> None:
    for key, value in values.items():
        conn.execute(
            "INSERT INTO meta VALUES ($k, $v) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {"k": key, "v": None if value is None else str(value)},
        )


def _reset(conn: duckdb.DuckDBPyConnection) -> None:
    for table in ("meta", "ledger_m", "leads_m", "act_first", "act_m", "act_recent", *_DERIVED_TABLES):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for ddl in _BASE_TABLES:
        conn.execute(ddl)
    _set_meta(conn, {"schema_version": SCHEMA_VERSION})


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(_BASE_TABLES[0])
    version = _meta(conn).get("schema_version")
    if version != SCHEMA_VERSION:
        _reset(conn)


# --- reading the source database ------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    """PostgreSQL: the oldest transaction still running and those in progress when the rows were read."""

    xmin: int
    in_progress: tuple[int, ...]


class _Source:
    """Reads new rows from SQLite or PostgreSQL into CSV files DuckDB loads with `read_csv`."""

    def __init__(self, conn: Connection, workdir: Path):
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.workdir = workdir
        self._files = 0

    def snapshot(self) -> _Snapshot | None:
        if self.sqlite:
            return None
        row = self.conn.exec_driver_sql(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, "
            "ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot())::text)"
        ).one()
        return _Snapshot(int(row[0]), tuple(int(x) for x in row[1]))

    def max_id(self, table: str) -> int:
        return int(self.conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar() or 0)

    def entry_key(self, entry_id: int) -> tuple[str, int] | None:
        marker = "?" if self.sqlite else "%s"
        cursor = self._cursor()
        try:
            cursor.execute(f"SELECT lead_id, seq FROM ledger WHERE id = {marker}", (entry_id,))
            row = cursor.fetchone()
        finally:
            cursor.close()
        return (row[0], int(row[1])) if row else None

    def _cursor(self) -> Any:
        return self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def export(
        self,
        table: str,
        columns: Sequence[tuple[str, str, str, str]],
        where: str,
        params: Sequence[Any],
        on_rows: Callable[[int], None] | None = None,
    ) -> list[Path]:
        """Rows of `table` matching `where` (placeholders written as `?`) as CSV files of CHUNK_ROWS rows."""
        if self.sqlite:
            select = ", ".join(
                c[2] if c[1] in ("BIGINT", "INTEGER", "BOOLEAN") else f"coalesce({c[2]}, '{NULL_TEXT}')"
                for c in columns
            )
            sql = f"SELECT {select} FROM {table} WHERE {where}"
            return self._export_sqlite(sql, params, on_rows)
        select = ", ".join(c[3] for c in columns)
        sql = f"SELECT {select} FROM {table} WHERE {where.replace('?', '%s')}"
        return self._export_postgres(sql, params, on_rows)

    def _new_file(self) -> Path:
        self._files += 1
        return self.workdir / f"chunk{self._files:05d}.csv"

    def _export_sqlite(self, sql: str, params: Sequence[Any], on_rows: Callable[[int], None] | None) -> list[Path]:
        files: list[Path] = []
        cursor = self._cursor()
        try:
            cursor.execute(sql, tuple(params))
            while True:
                rows = cursor.fetchmany(CHUNK_ROWS)
                if not rows:
                    break
                path = self._new_file()
                with path.open("w", newline="", encoding="utf-8") as handle:
                    csv.writer(handle, lineterminator="\n").writerows(rows)
                files.append(path)
                if on_rows:
                    on_rows(len(rows))
        finally:
            cursor.close()
        return files

    def _export_postgres(self, sql: str, params: Sequence[Any], on_rows: Callable[[int], None] | None) -> list[Path]:
        path = self._new_file()
        cursor = self._cursor()
        try:
            copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, NULL '{NULL_TEXT}')"
            with path.open("wb") as handle, cursor.copy(copy_sql, tuple(params)) as copy:
                for block in copy:
                    handle.write(block)
        finally:
            cursor.close()
        if on_rows:  # progress only: a quoted field may hold a newline, so this may overcount a little
            lines = 0
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    lines += block.count(b"\n")
            on_rows(lines)
        return [path]


def _read_csv(files: Sequence[Path], columns: Sequence[tuple[str, str, str, str]]) -> str:
    """A `read_csv` table function over our CSV files (paths are ours, never user input)."""
    names = ", ".join(f"'{c[0]}': '{c[1]}'" for c in columns)
    paths = ", ".join(f"'{_safe_setting(str(p))}'" for p in files)
    return (
        f"read_csv([{paths}], header = false, delim = ',', quote = '\"', escape = '\"', "
        f"nullstr = '{NULL_TEXT}', auto_detect = false, new_line = '\\n', columns = {{{names}}})"
    )


# --- sync -------------------------------------------------------------------------------------------


def sync(conn: duckdb.DuckDBPyConnection, app: App, progress: ProgressFn | None = None) -> SyncStats:
    """Bring the store up to date with the ledger, activities and leads; returns what it did."""
    started = time.perf_counter()
    stats = SyncStats()
    ensure_schema(conn)
    with app.db.engine.connect() as source_conn:
        if not app.db.is_sqlite:
            source_conn = source_conn.execution_options(isolation_level="REPEATABLE READ")
        with source_conn.begin(), tempfile.TemporaryDirectory(prefix="leadledger-sync-") as workdir:
            source = _Source(source_conn, Path(workdir))
            snapshot = source.snapshot()
            loaded = app.loaded_model(source_conn)
            model_id = str(_latest_model_id(source_conn))
            meta = _meta(conn)
            ledger_final = int(meta.get("ledger_final", 0))
            if ledger_final and source.entry_key(ledger_final) != _mirrored_key(conn, ledger_final):
                _reset(conn)  # the database was replaced or restored: start over
                stats.reset = True
                meta = _meta(conn)
                ledger_final = 0
            activity_final = int(meta.get("activity_final", 0))
            ledger_max = source.max_id("ledger")
            activity_max = source.max_id("activities")
            up_to_date = (
                ledger_max == ledger_final
                and activity_max == activity_final
                and meta.get("model_id") == model_id
                and meta.get("facts") == ModelFacts.of(loaded.model).digest()
            )
            if up_to_date:
                _advance_pending(conn, meta, snapshot, "ledger", ledger_max)
                _advance_pending(conn, meta, snapshot, "activity", activity_max)
                stats.seconds = time.perf_counter() - started
                return stats
            conn.execute("BEGIN TRANSACTION")
            try:
                _load_new_rows(conn, source, stats, ledger_final, activity_final, ledger_max, activity_max, progress)
                status_map.apply(conn, status_map.rules_for(source_conn), "new_ledger_leads")  # renamed statuses
                phase = time.perf_counter()
                _rebuild_derived(conn, loaded.model, model_id, meta, stats, progress)
                stats.phases["derive"] = time.perf_counter() - phase
                _advance_pending(conn, meta, snapshot, "ledger", ledger_max)
                _advance_pending(conn, meta, snapshot, "activity", activity_max)
                conn.execute("DELETE FROM act_recent WHERE id <= $final", {"final": int(meta.get("activity_final", 0))})
                _set_meta(conn, {"model_id": model_id, "synced_at": datetime.now(UTC).isoformat()})
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    stats.seconds = time.perf_counter() - started
    return stats


def _latest_model_id(conn: Connection) -> int:
    from leadledger.store import repository as repo

    latest = repo.latest_model_id(conn)
    return int(latest or 0)


def _mirrored_key(conn: duckdb.DuckDBPyConnection, entry_id: int) -> tuple[str, int] | None:
    rows = conn.execute("SELECT lead_id, seq FROM ledger_m WHERE id = $id", {"id": entry_id}).fetchall()
    return (rows[0][0], int(rows[0][1])) if rows else None


def _advance_pending(
    conn: duckdb.DuckDBPyConnection, meta: dict[str, str], snapshot: _Snapshot | None, prefix: str, max_id: int
) -> None:
    """Move the final watermark once no transaction that could still add lower ids is running."""
    final = int(meta.get(f"{prefix}_final", 0))
    if snapshot is None or not snapshot.in_progress:
        if final >= max_id and not meta.get(f"{prefix}_pending"):
            return
        values: dict[str, Any] = {f"{prefix}_final": max(final, max_id), f"{prefix}_pending": None}
        values[f"{prefix}_pending_xid"] = None
        _set_meta(conn, values)
        _remember(meta, values)
        return
    pending = meta.get(f"{prefix}_pending")
    pending_xid = meta.get(f"{prefix}_pending_xid")
    values = {}
    if pending and pending_xid and snapshot.xmin > int(pending_xid):
        final = max(final, int(pending))
        values[f"{prefix}_final"] = final
        pending = None
    if not pending:
        values[f"{prefix}_pending"] = max_id
        values[f"{prefix}_pending_xid"] = max(snapshot.in_progress)
    if values:
        _set_meta(conn, values)
        _remember(meta, values)


def _remember(meta: dict[str, str], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = str(value)


def _load_new_rows(
    conn: duckdb.DuckDBPyConnection,
    source: _Source,
    stats: SyncStats,
    ledger_final: int,
    activity_final: int,
    ledger_max: int,
    activity_max: int,
    progress: ProgressFn | None,
) -> None:
    conn.execute("CREATE OR REPLACE TEMP TABLE affected (lead_id VARCHAR)")
    conn.execute("CREATE OR REPLACE TEMP TABLE new_ledger_leads (lead_id VARCHAR)")
    phase = time.perf_counter()
    if ledger_max > ledger_final:
        done = [0]
        expected = ledger_max - ledger_final

        def ledger_progress(n: int) -> None:
            done[0] += n
            if progress:
                progress("ledger", min(done[0], expected), expected)

        files = source.export("ledger", _LEDGER_COLUMNS, "id > ?", [ledger_final], ledger_progress)
        if files:
            # rows above the final watermark may have been copied already (PostgreSQL): only new ids count
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE new_rows AS SELECT * FROM {_read_csv(files, _LEDGER_COLUMNS)} "
                "WHERE id NOT IN (SELECT id FROM ledger_m WHERE id > $final)",
                {"final": ledger_final},
            )
            conn.execute("INSERT INTO ledger_m SELECT * FROM new_rows")
            stats.ledger_rows = _count(conn, "new_rows")
            conn.execute("INSERT INTO new_ledger_leads SELECT DISTINCT lead_id FROM new_rows")
            conn.execute("DROP TABLE new_rows")
    stats.phases["ledger"] = time.perf_counter() - phase
    phase = time.perf_counter()
    if activity_max > activity_final:
        files = source.export("activities", _ACTIVITY_COLUMNS, "id > ?", [activity_final])
        if files:
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE new_acts AS SELECT * FROM {_read_csv(files, _ACTIVITY_COLUMNS)} "
                "WHERE id NOT IN (SELECT id FROM act_recent)"
            )
            conn.execute("INSERT INTO act_recent SELECT id FROM new_acts")
            conn.execute("INSERT INTO act_m SELECT lead_id, type, ts FROM new_acts")
            stats.activity_rows = _count(conn, "new_acts")
            conn.execute(
                "CREATE OR REPLACE TEMP TABLE act_new AS SELECT lead_id, type, min(ts) AS first_ts "
                "FROM new_acts GROUP BY lead_id, type"
            )
            conn.execute(
                "CREATE OR REPLACE TEMP TABLE act_merged AS SELECT n.lead_id, n.type, "
                "least(n.first_ts, coalesce(a.first_ts, n.first_ts)) AS first_ts "
                "FROM act_new n LEFT JOIN act_first a ON a.lead_id = n.lead_id AND a.type = n.type"
            )
            conn.execute("DELETE FROM act_first WHERE (lead_id, type) IN (SELECT (lead_id, type) FROM act_merged)")
            conn.execute("INSERT INTO act_first SELECT * FROM act_merged")
            conn.execute("INSERT INTO affected SELECT DISTINCT lead_id FROM act_new")
    stats.phases["activities"] = time.perf_counter() - phase
    phase = time.perf_counter()
    conn.execute("INSERT INTO affected SELECT lead_id FROM new_ledger_leads")
    refreshed = _count(conn, "new_ledger_leads")
    if refreshed:
        total = _count(conn, "leads_m")
        if refreshed > max(50_000, FULL_REBUILD_SHARE * total):
            files = source.export("leads", _LEAD_COLUMNS, "1 = 1", [])
            conn.execute("DELETE FROM leads_m")
            conn.execute(f"INSERT INTO leads_m SELECT * FROM {_read_csv(files, _LEAD_COLUMNS)}")
        else:
            ids = [row[0] for row in conn.execute("SELECT lead_id FROM new_ledger_leads").fetchall()]
            files = []
            for batch in chunks(ids):
                marks = ", ".join("?" for _ in batch)
                part = source.export("leads", _LEAD_COLUMNS, f"id IN ({marks})", batch)
                files.extend(part)
            conn.execute("DELETE FROM leads_m WHERE id IN (SELECT lead_id FROM new_ledger_leads)")
            if files:
                conn.execute(f"INSERT INTO leads_m SELECT * FROM {_read_csv(files, _LEAD_COLUMNS)}")
        stats.leads_refreshed = refreshed
    stats.phases["leads"] = time.perf_counter() - phase


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0])


# --- derived tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    """What the derived tables take from the status model; a change to any of it rebuilds them.

    ``nodes`` are what funnels and cohorts ask about: each primary status with its sub-statuses, and each
    sub-status alone. ``pairs`` are the funnel steps the built-in reports use; ``lead_facts`` holds, per lead,
    the first entry into each node and the first entry into B after the first entry into A for each pair.
    """

    calendars: tuple[str, ...]
    initial_family: tuple[str, ...]
    outreach_types: tuple[str, ...]
    families: tuple[tuple[str, str], ...]
    nodes: tuple[tuple[str, tuple[str, ...]], ...]
    pairs: tuple[tuple[str, str], ...]
    final_stage: str
    no_touch: tuple[str, ...] = ()  # statuses entering which is no first touch: data problems (Invalid, Duplicate)

    @classmethod
    def of(cls, model: StatusModel) -> ModelFacts:
        initial = model.initial_status
        family = (initial, *model.children.get(initial, ()))
        families = tuple((s.key, s.parent or s.key) for s in model.statuses.values())
        nodes = tuple((key, seed.family_of(model, key)) for key in model.statuses)
        return cls(
            tuple(model.calendars),
            family,
            outreach_activity_types(model),
            families,
            nodes,
            tuple(seed.standard_pairs(model)),
            model.stages[-1].key,
            tuple(s.key for s in model.statuses.values() if s.category == "data_problem"),
        )

    def node_index(self, key: str) -> int | None:
        for i, (name, _) in enumerate(self.nodes):
            if name == key:
                return i
        return None

    def digest(self) -> str:
        return json.dumps([DERIVED_VERSION, self.calendars, self.initial_family, self.outreach_types, self.families, self.nodes,
                           self.pairs, self.final_stage, self.no_touch])  # fmt: skip


def outreach_activity_types(model: StatusModel) -> tuple[str, ...]:
    """Activity types that count as a touch: those the entry rule of the forward path's first status after
    the initial one (and its sub-statuses) asks for — Attempting Contact's "contact attempt logged"."""
    initial = model.initial_status
    family = {initial, *model.children.get(initial, ())}
    for key in model.forward_path:
        status = model.statuses.get(key)
        if status is None or key in family or status.parent in family:
            continue
        if status.entry.activity is not None:
            return tuple(sorted({match.type for match in status.entry.activity.any_of}))
        break
    return ()


def _rebuild_derived(
    conn: duckdb.DuckDBPyConnection,
    model: StatusModel,
    model_id: str,
    meta: dict[str, str],
    stats: SyncStats,
    progress: ProgressFn | None,
) -> None:
    facts = ModelFacts.of(model)
    bounds = conn.execute("SELECT min(ts), max(ts) FROM ledger_m").fetchall()[0]
    if bounds[0] is None:
        # no ledger yet: the tables exist (empty) so reports answer with zeros
        now_day = day_number(datetime.now(UTC))
        calendars = [model.calendars[name] for name in facts.calendars]
        _write_day_table(conn, build_day_table(calendars, now_day - DAYS_BEFORE, now_day + DAYS_AFTER))
        _set_meta(conn, {"day_first": now_day - DAYS_BEFORE, "day_end": now_day + DAYS_AFTER})
        _derive(conn, facts, None)
        _set_meta(conn, {"facts": facts.digest()})
        return
    first_seen = day_number(bounds[0].replace(tzinfo=UTC))
    last_seen = day_number(max(bounds[1].replace(tzinfo=UTC), datetime.now(UTC)))
    day_first = int(meta.get("day_first", 0) or 0)
    day_end = int(meta.get("day_end", 0) or 0)
    tables_exist = bool(conn.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'stints'").fetchall())
    full = (
        not tables_exist
        or meta.get("facts") != facts.digest()
        or meta.get("model_id") != model_id
        or not (day_first <= first_seen and last_seen < day_end)
    )
    affected = _count(conn, "affected")
    total_leads = max(1, _count(conn, "leads_m"))
    if not full and affected > max(FULL_REBUILD_MIN, FULL_REBUILD_SHARE * total_leads):
        full = True  # recomputing everything beats deleting and re-inserting most of it
    if full:
        if not (day_first <= first_seen and last_seen < day_end) or meta.get("model_id") != model_id:
            day_first, day_end = first_seen - DAYS_BEFORE, last_seen + DAYS_AFTER
        calendars = [model.calendars[name] for name in facts.calendars]
        _write_day_table(conn, build_day_table(calendars, day_first, day_end))
        _set_meta(conn, {"day_first": day_first, "day_end": day_end})
    if progress:
        progress("derive", 0, 1)
    if full:
        stats.full_rebuild = True
        stats.derived_leads = total_leads
        _derive(conn, facts, None)
    elif affected:
        stats.derived_leads = int(conn.execute("SELECT count(DISTINCT lead_id) FROM affected").fetchall()[0][0])
        _derive(conn, facts, "affected")
    _set_meta(conn, {"facts": facts.digest()})
    if progress:
        progress("derive", 1, 1)


def _write_day_table(conn: duckdb.DuckDBPyConnection, table: DayTable) -> None:
    slots = ", ".join(f"s{i} BIGINT, l{i} BIGINT" for i in range(table.slots))
    conn.execute("DROP TABLE IF EXISTS calday")
    conn.execute(f"CREATE TABLE calday (cal INTEGER, day INTEGER, cum0 BIGINT, {slots})")
    # one statement with a list per column: executemany would cost a round trip per row
    columns = list(zip(*table.rows, strict=True))
    names = [f"c{i}" for i in range(len(columns))]
    unnests = ", ".join(f"unnest(${name})" for name in names)
    conn.execute(f"INSERT INTO calday SELECT {unnests}", {n: list(c) for n, c in zip(names, columns, strict=True)})
    _set_meta(conn, {"day_slots": table.slots})


def cum_sql(alias: str, instant_us: str, slots: int) -> str:
    """Business microseconds since the day table's origin at `instant_us`, read from calday row `alias`."""
    parts = " + ".join(f"least(greatest({instant_us} - {alias}.s{i}, 0), {alias}.l{i})" for i in range(slots))
    return f"({alias}.cum0 + {parts})"


def _cum_list(conn: duckdb.DuckDBPyConnection, calendars: int, ts_column: str, alias: str) -> tuple[str, str]:
    """A list expression [cum for calendar 0, 1, ...] for `ts_column` plus the joins it needs."""
    slots = int(_meta(conn).get("day_slots", 1))
    joins = []
    parts = []
    for k in range(calendars):
        join_alias = f"{alias}{k}"
        joins.append(
            f"LEFT JOIN calday {join_alias} ON {join_alias}.cal = {k} "
            f"AND {join_alias}.day = CAST(epoch_us({ts_column}) // 86400000000 AS INTEGER)"
        )
        parts.append(cum_sql(join_alias, f"epoch_us({ts_column})", slots))
    return f"CASE WHEN {ts_column} IS NULL THEN NULL ELSE [{', '.join(parts)}] END", " ".join(joins)


def _derive(conn: duckdb.DuckDBPyConnection, facts: ModelFacts, affected: str | None) -> None:
    """(Re)compute inst, stints, first_touch and lead_facts for the affected leads, or every lead when None."""
    lead_filter = f"WHERE lead_id IN (SELECT lead_id FROM {affected})" if affected else ""
    conn.execute("CREATE OR REPLACE TEMP TABLE fam (status VARCHAR, family VARCHAR)")
    if facts.families:
        conn.execute(
            "INSERT INTO fam SELECT unnest($s), unnest($f)",
            {"s": [a for a, _ in facts.families], "f": [b for _, b in facts.families]},
        )
    # one instant per (lead, at): the highest seq holds the state; the last status-changing entry at that
    # instant says how the status was entered (source, actor, reason, rule...)
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE x_keys AS
        SELECT lead_id, ts, max(seq) AS seq,
               max(seq) FILTER (WHERE from_status IS DISTINCT FROM to_status) AS set_seq
        FROM ledger_m {lead_filter} GROUP BY lead_id, ts"""
    )
    ec, ec_joins = _cum_list(conn, len(facts.calendars), "x.ts", "ce")
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE x_inst AS
        WITH w AS (
            SELECT k.lead_id, k.ts, w.to_status AS status, w.to_stage AS stage, w.to_owner AS owner,
                   coalesce(f.family, w.to_status) AS family,
                   e.source, e.actor, e.actor_role, e.reason, e.rule, e.off_model, e.re_eval
            FROM x_keys k
            JOIN ledger_m w ON w.lead_id = k.lead_id AND w.seq = k.seq
            JOIN ledger_m e ON e.lead_id = k.lead_id AND e.seq = coalesce(k.set_seq, k.seq)
            LEFT JOIN fam f ON f.status = w.to_status),
        x AS (
            SELECT w.*,
                   lead(ts) OVER lw AS next_ts,
                   lag(status) OVER lw AS prev_status,
                   lag(owner) OVER lw AS prev_owner,
                   lag(family) OVER lw AS prev_family,
                   row_number() OVER lw AS k
            FROM w WINDOW lw AS (PARTITION BY lead_id ORDER BY ts))
        SELECT x.*, x.prev_status IS DISTINCT FROM x.status AS starts_stint,
               CASE WHEN x.prev_status IS DISTINCT FROM x.status THEN {ec} END AS ec
        FROM x {ec_joins}"""
    )
    # each instant carries its stint (start, owner, business counters, re-evaluation date) and the start of
    # the current run of its status family, so "the state at T" needs no join
    inst_sql = """
        SELECT lead_id, ts, status, stage, owner, next_ts,
               max(CASE WHEN starts_stint THEN ts END) OVER fw AS stint_at,
               last_value(CASE WHEN starts_stint THEN {'owner': owner, 'ec': ec, 're_eval': re_eval, 'reason': reason} END IGNORE NULLS)
                   OVER fw AS stint,
               max(CASE WHEN prev_family IS DISTINCT FROM family THEN ts END) OVER fw AS run_at
        FROM x_inst
        WINDOW fw AS (PARTITION BY lead_id ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"""
    inst_sql = f"""SELECT lead_id, ts, status, stage, owner, next_ts, stint_at, stint.owner AS stint_owner,
                          stint.ec AS stint_ec, stint.re_eval AS re_eval, stint.reason AS stint_reason, run_at
                   FROM ({inst_sql})"""
    stints_sql = """
        SELECT lead_id, status, ts AS entered_at,
               lead(ts) OVER sw AS left_at, lead(status) OVER sw AS next_status,
               lag(status) OVER sw AS prev_status, lag(reason) OVER sw AS prev_reason,
               source AS entry_source, actor AS entry_actor, actor_role AS entry_role, reason AS entry_reason,
               rule AS entry_rule, owner AS entry_owner, stage AS entry_stage, off_model AS entry_off_model,
               re_eval, ec, lead(ec) OVER sw AS lc
        FROM x_inst WHERE starts_stint
        WINDOW sw AS (PARTITION BY lead_id ORDER BY ts)"""
    since_c, since_joins = _cum_list(conn, len(facts.calendars), "t.owner_since", "cs")
    touch_c, touch_joins = _cum_list(conn, len(facts.calendars), "t.touch_at", "ct")
    touch_sql = f"""
        WITH moves AS (
            SELECT lead_id, min(ts) AS moved_at FROM x_inst
            WHERE NOT list_contains($initial, status) AND NOT list_contains($no_touch::VARCHAR[], status) GROUP BY lead_id),
        outreach AS (
            SELECT lead_id, min(first_ts) AS touched_at FROM act_first
            WHERE list_contains($outreach, type) {"AND lead_id IN (SELECT lead_id FROM " + affected + ")" if affected else ""}
            GROUP BY lead_id),
        touches AS (
            SELECT coalesce(m.lead_id, o.lead_id) AS lead_id,
                   least(coalesce(m.moved_at, o.touched_at), coalesce(o.touched_at, m.moved_at)) AS touch_at
            FROM moves m FULL OUTER JOIN outreach o ON o.lead_id = m.lead_id),
        t AS (
            SELECT h.lead_id, h.touch_at,
                   arg_max_null(i.owner, i.ts) AS owner,
                   max(i.ts) FILTER (WHERE i.k = 1 OR i.owner IS DISTINCT FROM i.prev_owner) AS owner_since
            FROM touches h JOIN x_inst i ON i.lead_id = h.lead_id AND i.ts <= h.touch_at
            GROUP BY h.lead_id, h.touch_at)
        SELECT t.lead_id, t.touch_at, t.owner, CASE WHEN t.owner IS NULL THEN NULL ELSE t.owner_since END AS owner_since,
               CASE WHEN t.owner IS NULL THEN NULL ELSE {since_c} END AS since_c, {touch_c} AS touch_c
        FROM t {since_joins} {touch_joins}"""
    params = {
        "initial": list(facts.initial_family),
        "outreach": list(facts.outreach_types),
        "no_touch": list(facts.no_touch),
    }
    # when each person first owned each lead: "handled by T" is first_at <= T
    owners_sql = (
        "SELECT lead_id, owner, min(ts) AS first_at FROM x_inst WHERE owner IS NOT NULL GROUP BY lead_id, owner"
    )
    fvals_sql = _field_values_sql(lead_filter)
    if affected is None:
        conn.execute(f"CREATE OR REPLACE TABLE fvals AS {fvals_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE lead_owners AS {owners_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE inst AS {inst_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE stints AS {stints_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE first_touch AS {touch_sql}", params)
        conn.execute(f"CREATE OR REPLACE TABLE lead_facts AS {_lead_facts_sql(facts, None)}", _lead_facts_params(facts))
    else:
        for table in ("inst", "stints", "first_touch", "lead_facts", "lead_owners", "fvals"):
            conn.execute(f"DELETE FROM {table} WHERE lead_id IN (SELECT lead_id FROM {affected})")
        conn.execute(f"INSERT INTO fvals {fvals_sql}")
        conn.execute(f"INSERT INTO lead_owners {owners_sql}")
        conn.execute(f"INSERT INTO inst {inst_sql}")
        conn.execute(f"INSERT INTO stints {stints_sql}")
        conn.execute(f"INSERT INTO first_touch {touch_sql}", params)
        conn.execute(f"INSERT INTO lead_facts {_lead_facts_sql(facts, affected)}", _lead_facts_params(facts))
    for temp in ("x_keys", "x_inst", "fam"):
        conn.execute(f"DROP TABLE IF EXISTS {temp}")


def _field_values_sql(lead_filter: str) -> str:
    """Every field value each entry set, the last one per (lead, field, instant), valid until the next one.

    The ledger's `data` is what the entry captured (the lead's fields it set; null clears one); folded in
    (at, seq) order it gives the lead's fields at any time, as the projection holds them now."""
    meta = ", ".join(f"'{key}'" for key in sorted(LEDGER_META_KEYS))
    where = f"{lead_filter} AND data IS NOT NULL" if lead_filter else "WHERE data IS NOT NULL"
    return f"""
        WITH kv AS (
            SELECT lead_id, ts, seq, unnest(map_entries(CAST(CAST(data AS JSON) AS MAP(VARCHAR, JSON)))) AS e
            FROM ledger_m {where}),
        one AS (
            SELECT lead_id, e.key AS key, ts, arg_max_null(json_extract_string(e.value, '$'), seq) AS value
            FROM kv WHERE e.key NOT IN ({meta}) GROUP BY ALL)
        SELECT lead_id, key, ts, value, lead(ts) OVER (PARTITION BY lead_id, key ORDER BY ts) AS next_ts FROM one"""


def _lead_facts_params(facts: ModelFacts) -> dict[str, Any]:
    params: dict[str, Any] = {"final_stage": facts.final_stage}
    for i, (_, members) in enumerate(facts.nodes):
        params[f"n{i}"] = list(members)
    return params


def _lead_facts_sql(facts: ModelFacts, affected: str | None) -> str:
    """One row per lead of facts that never change with the as-of time, because each is a *first* time:
    created, first owned, first touched, reached the final stage, first entry into each node (and the owner
    then), and for each standard pair the first entry into B after the first entry into A. "Had it happened
    by T" is then `column <= T`."""
    firsts = []
    for i, _ in enumerate(facts.nodes):
        firsts.append(f"min(s.entered_at) FILTER (WHERE list_contains($n{i}, s.status)) AS f{i}")
        firsts.append(
            f"arg_min_null(s.entry_owner, s.entered_at) FILTER (WHERE list_contains($n{i}, s.status)) AS o{i}"
        )
        firsts.append(
            f"arg_min_null(s.entry_reason, s.entered_at) FILTER (WHERE list_contains($n{i}, s.status)) AS why{i}"
        )
    reaches = []
    for j, (a, b) in enumerate(facts.pairs):
        ia, ib = facts.node_index(a), facts.node_index(b)
        reaches.append(
            f"min(s.entered_at) FILTER (WHERE list_contains($n{ib}, s.status) AND s.entered_at > f.f{ia}) AS r{j}"
        )
    scope = f"WHERE lead_id IN (SELECT lead_id FROM {affected})" if affected else ""
    stints = f"(SELECT * FROM stints {scope})"
    reach_sql = ", ".join(reaches) if reaches else "NULL AS r_none"
    return f"""
        WITH f AS (
            SELECT s.lead_id, min(s.entered_at) AS created, {", ".join(firsts)}
            FROM {stints} s GROUP BY s.lead_id),
        r AS (
            SELECT s.lead_id, {reach_sql}
            FROM {stints} s JOIN f ON f.lead_id = s.lead_id GROUP BY s.lead_id),
        i AS (
            SELECT lead_id, min(ts) FILTER (WHERE owner IS NOT NULL) AS assigned_at,
                   min(ts) FILTER (WHERE stage = $final_stage) AS closed_at
            FROM (SELECT * FROM inst {scope}) GROUP BY lead_id)
        SELECT f.*, r.* EXCLUDE (lead_id), i.assigned_at, i.closed_at, t.touch_at, lm.source, lm.campaign,
               lm.incomplete
        FROM f JOIN r USING (lead_id) JOIN i USING (lead_id)
        LEFT JOIN (SELECT lead_id, touch_at FROM first_touch {scope}) t USING (lead_id)
        LEFT JOIN leads_m lm ON lm.id = f.lead_id"""


def day_table_origin(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The instant stored business counters start from (None before the first sync with data)."""
    first = _meta(conn).get("day_first")
    if not first:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(first))
