"""Sync: copy the ledger, activities and leads rows above the id watermarks, then re-derive what they touch.

The account-review flags (`account_flags`) are copied whole at every sync, even when no ledger row is new: a
flag is raised, cleared or dismissed without a ledger entry, and there are few (one per flagged account).

PostgreSQL hands out sequence values before commit, so a row with a lower id can become visible after a
higher one was copied. The watermark therefore only advances past ids once every transaction that was in
progress when they were read has ended (``pg_current_snapshot``); rows above the final watermark are read
again and de-duplicated by id. SQLite serialises writers, so there the highest id read is final.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from leadledger.services.app import App
from leadledger.store.bulk import chunks

if TYPE_CHECKING:  # duckdb is imported where a store is opened: every CLI call would pay ~0.1 s for it
    import duckdb

from leadledger.analytics import status_map
from leadledger.analytics.store.connection import (
    ACTIVITY_COLUMNS,
    FLAG_COLUMNS,
    LEAD_COLUMNS,
    LEDGER_COLUMNS,
    ProgressFn,
    SyncStats,
    count_rows,
    ensure_schema,
    read_meta,
    reset,
    write_meta,
)
from leadledger.analytics.store.derive import FULL_REBUILD_SHARE, ModelFacts, rebuild_derived
from leadledger.analytics.store.scanner import attach_postgres
from leadledger.analytics.store.source import Snapshot, Source, read_csv_sql
from leadledger.analytics.store.status import write_sync_status

# --- sync -------------------------------------------------------------------------------------------


def sync(conn: duckdb.DuckDBPyConnection, app: App, progress: ProgressFn | None = None) -> SyncStats:
    """Bring the store up to date with the ledger, activities and leads; returns what it did."""
    started = time.perf_counter()
    stats = SyncStats()
    ensure_schema(conn)
    with app.db.engine.connect() as source_conn:
        if not app.db.is_sqlite:
            source_conn = source_conn.execution_options(isolation_level="REPEATABLE READ")
        with (
            source_conn.begin(),
            tempfile.TemporaryDirectory(prefix="leadledger-sync-") as workdir,
            Source(source_conn, Path(workdir), conn) as source,
        ):
            snapshot = source.snapshot()
            loaded = app.loaded_model(source_conn)
            model_id = str(_latest_model_id(source_conn))
            meta = read_meta(conn)
            ledger_final = int(meta.get("ledger_final", 0))
            if ledger_final and source.entry_key(ledger_final) != _mirrored_key(conn, ledger_final):
                reset(conn)  # the database was replaced or restored: start over
                stats.reset = True
                meta = read_meta(conn)
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
                conn.execute("BEGIN TRANSACTION")
                try:
                    _copy_flags(conn, source, stats)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                write_sync_status(conn, app, ledger_max)
                stats.seconds = time.perf_counter() - started
                return stats
            if not source.sqlite and ledger_final == 0 and ledger_max > 0:
                source.scanner = attach_postgres(conn, app.db.url)
            stats.method = "postgres scanner" if source.scanner else "batches"
            conn.execute("BEGIN TRANSACTION")
            try:
                _load_new_rows(conn, source, stats, ledger_final, activity_final, ledger_max, activity_max, progress)
                if source.children:
                    stats.method = "sqlite reader"
                _copy_flags(conn, source, stats)
                status_map.apply(conn, status_map.rules_for(source_conn), "new_ledger_leads")  # renamed statuses
                phase = time.perf_counter()
                rebuild_derived(conn, loaded.model, model_id, meta, stats, progress)
                stats.phases["derive"] = time.perf_counter() - phase
                _advance_pending(conn, meta, snapshot, "ledger", ledger_max)
                _advance_pending(conn, meta, snapshot, "activity", activity_max)
                conn.execute("DELETE FROM act_recent WHERE id <= $final", {"final": int(meta.get("activity_final", 0))})
                write_meta(conn, {"model_id": model_id, "synced_at": datetime.now(UTC).isoformat()})
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                if source.scanner:
                    conn.execute(f"DETACH {source.scanner}")
            write_sync_status(conn, app, ledger_max)
    stats.seconds = time.perf_counter() - started
    return stats


def _copy_flags(conn: duckdb.DuckDBPyConnection, source: Source, stats: SyncStats) -> None:
    """Replace `flags_m` with every row of `account_flags` as the source's snapshot has them."""
    phase = time.perf_counter()
    files = source.export("account_flags", FLAG_COLUMNS, "1 = 1", [])
    conn.execute("DELETE FROM flags_m")
    if files:
        conn.execute(f"INSERT INTO flags_m SELECT * FROM {read_csv_sql(files, FLAG_COLUMNS)}")
    stats.phases["flags"] = time.perf_counter() - phase


def _latest_model_id(conn: Connection) -> int:
    from leadledger.store import repository as repo

    latest = repo.latest_model_id(conn)
    return int(latest or 0)


def _mirrored_key(conn: duckdb.DuckDBPyConnection, entry_id: int) -> tuple[str, int] | None:
    rows = conn.execute("SELECT lead_id, seq FROM ledger_m WHERE id = $id", {"id": entry_id}).fetchall()
    return (rows[0][0], int(rows[0][1])) if rows else None


def _advance_pending(
    conn: duckdb.DuckDBPyConnection, meta: dict[str, str], snapshot: Snapshot | None, prefix: str, max_id: int
) -> None:
    """Move the final watermark once no transaction that could still add lower ids is running."""
    final = int(meta.get(f"{prefix}_final", 0))
    if snapshot is None or not snapshot.in_progress:
        if final >= max_id and not meta.get(f"{prefix}_pending"):
            return
        values: dict[str, Any] = {f"{prefix}_final": max(final, max_id), f"{prefix}_pending": None}
        values[f"{prefix}_pending_xid"] = None
        write_meta(conn, values)
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
        write_meta(conn, values)
        _remember(meta, values)


def _remember(meta: dict[str, str], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = str(value)


def _load_new_rows(
    conn: duckdb.DuckDBPyConnection,
    source: Source,
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

        rows = source.rows_between("ledger", LEDGER_COLUMNS, ledger_final, ledger_max, ledger_progress)
        if rows:
            # rows above the final watermark may have been copied already (PostgreSQL): only new ids count
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE new_rows AS SELECT * FROM {rows} "
                "WHERE id NOT IN (SELECT id FROM ledger_m WHERE id > $final)",
                {"final": ledger_final},
            )
            conn.execute("INSERT INTO ledger_m SELECT * FROM new_rows")
            stats.ledger_rows = count_rows(conn, "new_rows")
            conn.execute("INSERT INTO new_ledger_leads SELECT DISTINCT lead_id FROM new_rows")
            conn.execute("DROP TABLE new_rows")
    stats.phases["ledger"] = time.perf_counter() - phase
    phase = time.perf_counter()
    if activity_max > activity_final:
        acts = source.rows_between("activities", ACTIVITY_COLUMNS, activity_final, activity_max)
        if acts:
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE new_acts AS SELECT * FROM {acts} "
                "WHERE id NOT IN (SELECT id FROM act_recent)"
            )
            conn.execute("INSERT INTO act_recent SELECT id FROM new_acts")
            conn.execute("INSERT INTO act_m SELECT lead_id, type, ts FROM new_acts")
            stats.activity_rows = count_rows(conn, "new_acts")
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
    refreshed = count_rows(conn, "new_ledger_leads")
    if refreshed:
        total = count_rows(conn, "leads_m")
        if refreshed > max(50_000, FULL_REBUILD_SHARE * total):
            everyone = source.relation("leads", LEAD_COLUMNS, "1 = 1", [])
            conn.execute("DELETE FROM leads_m")
            if everyone:
                conn.execute(f"INSERT INTO leads_m SELECT * FROM {everyone}")
        else:
            ids = [row[0] for row in conn.execute("SELECT lead_id FROM new_ledger_leads").fetchall()]
            files = []
            for batch in chunks(ids):
                marks = ", ".join("?" for _ in batch)
                part = source.export("leads", LEAD_COLUMNS, f"id IN ({marks})", batch)
                files.extend(part)
            conn.execute("DELETE FROM leads_m WHERE id IN (SELECT lead_id FROM new_ledger_leads)")
            if files:
                conn.execute(f"INSERT INTO leads_m SELECT * FROM {read_csv_sql(files, LEAD_COLUMNS)}")
        stats.leads_refreshed = refreshed
    stats.phases["leads"] = time.perf_counter() - phase
