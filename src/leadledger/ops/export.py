"""Exports for a warehouse: the ledger, leads, activities and stints as Parquet or CSV, written by DuckDB.

* `ledger` and `activities`: every column, one row per entry; `--since ID` takes the rows above that id (the
  summary's `next_since` is the id to pass next time), `--since TIME` the rows recorded at or after it.
* `leads`: the projection (every column; `fields` as JSON); `--since` takes the leads whose ledger grew since.
* `stints`: time in one status, computed by the same DuckDB SQL as `leadledger report durations` (entered,
  left, the entry's attributes, the calendar its business time runs on, calendar and business microseconds up
  to the export's `as_of`), so a warehouse grouping them by status reproduces the report exactly. `--since`
  takes every stint of the leads whose ledger grew since.

Rows come out of the database as `analytics.store` copies them (SQLite cursor, PostgreSQL `COPY`, through CSV
chunks), all reads of one export in one snapshot. Times are UTC (`TIMESTAMP WITH TIME ZONE`); JSON columns
are JSON text. The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Column, Float, Integer, LargeBinary, Table
from sqlalchemy.types import JSON, DateTime

from leadledger.analytics.store.connection import open_store
from leadledger.analytics.store.source import Source, read_csv_sql
from leadledger.analytics.store.sync import sync
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.store.tables import UTCDateTime, activities, leads, ledger
from leadledger.store.watermarks import stable_max_id

KINDS = ("ledger", "leads", "stints", "activities")
FORMATS = ("parquet", "csv")

ColumnSpec = tuple[str, str, str, str]  # (name, DuckDB type, SQLite expression, PostgreSQL expression)


@dataclass
class ExportSummary:
    kind: str
    file: str
    format: str
    rows: int
    since: str | None
    next_since: int  # pass this as --since next time
    as_of: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.file, "format": self.format, "rows": self.rows, "since": self.since,
                "next_since": self.next_since, "as_of": self.as_of.isoformat()}  # fmt: skip


def column_specs(table: Table) -> list[ColumnSpec]:
    """Every column of `table` as the export reads it from either database."""
    return [_spec(column) for column in table.columns]


def _spec(column: Column[Any]) -> ColumnSpec:
    name = column.name
    kind = column.type
    quoted = f'"{name}"'
    if isinstance(kind, (UTCDateTime, DateTime)):
        return name, "TIMESTAMP", quoted, quoted
    if isinstance(kind, Boolean):
        expr = f"CASE WHEN {quoted} THEN 1 ELSE 0 END"
        return name, "BOOLEAN", expr, f"CASE WHEN {quoted} IS NULL THEN NULL ELSE {expr} END"
    if isinstance(kind, JSON):
        return name, "JSON", quoted, f"{quoted}::text"
    if isinstance(kind, LargeBinary):
        return name, "VARCHAR", f"lower(hex({quoted}))", f"encode({quoted}, 'hex')"
    if isinstance(kind, Float):
        return name, "DOUBLE", quoted, quoted
    if isinstance(kind, Integer):  # BigInteger is one too
        # SQLite rows travel as CSV with NULL written as \N; the copier only spells NULL that way for text
        sqlite = f"coalesce(CAST({quoted} AS TEXT), '\\N')" if column.nullable else quoted
        return name, "BIGINT", sqlite, quoted
    return name, "VARCHAR", quoted, quoted


def parse_since(text: str | None) -> int | datetime | None:
    """`--since`: an id (digits) or an ISO 8601 time (UTC when it has no zone)."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if re.fullmatch(r"\d+", value):
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(f"--since: {text!r} is neither an id nor an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export(app: App, kind: str, out: Path, *, fmt: str = "parquet", since: str | None = None) -> ExportSummary:
    """Write one export file; returns what it holds and the watermark for the next incremental run."""
    if kind not in KINDS:
        raise Invalid(f"unknown export {kind!r}: choose from {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise Invalid(f"--format must be parquet or csv, not {fmt!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(handle)
    scratch = Path(scratch_name)
    scratch.unlink()  # DuckDB creates it
    mark = parse_since(since)
    try:
        if kind == "stints":
            rows, watermark, as_of = _export_stints(app, scratch, fmt, mark)
        else:
            rows, watermark, as_of = _export_table(app, kind, scratch, fmt, mark)
        os.replace(scratch, out)
    finally:
        scratch.unlink(missing_ok=True)
    return ExportSummary(kind, str(out), fmt, rows, since, watermark, as_of)


def _copy_options(fmt: str) -> str:
    return "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER true"


def _path_literal(path: Path) -> str:
    text = str(path)
    if "'" in text:
        raise Invalid(f"refusing an output path with a quote in it: {text!r}")
    return f"'{text}'"


def _ledger_filter(mark: int | datetime | None) -> tuple[str, list[Any]]:
    """Which ledger entries are new since the mark (an id, or a recorded-at time)."""
    if mark is None:
        return "1 = 1", []
    if isinstance(mark, int):
        return "id > ?", [mark]
    return "recorded_at >= ?", [mark.astimezone(UTC).replace(tzinfo=None)]


def _source_snapshot(app: App) -> Any:
    """A connection whose reads share one snapshot (PostgreSQL: REPEATABLE READ, read only)."""
    conn = app.db.engine.connect()
    if not app.db.is_sqlite:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def _sqlite_time(value: Any) -> Any:
    return value.isoformat(" ", "microseconds") if isinstance(value, datetime) else value


def _export_table(app: App, kind: str, scratch: Path, fmt: str, mark: int | datetime | None) -> tuple[int, int, datetime]:
    import duckdb

    table = {"ledger": ledger, "activities": activities, "leads": leads}[kind]
    specs = column_specs(table)
    numbered = "activities" if kind == "activities" else "ledger"
    # every id up to the watermark is committed: the next export, --since watermark, misses nothing
    watermark = stable_max_id(app.db.engine, numbered)
    if isinstance(mark, int) and mark > watermark:
        raise Invalid(f"--since {mark} is beyond the last {numbered} id ({watermark}): is this the right database?")
    where, params = _ledger_filter(mark)
    where, params = f"({where}) AND id <= ?", [*params, watermark]
    if kind == "leads":
        where = f"id IN (SELECT lead_id FROM ledger WHERE {where})" if mark is not None else "1 = 1"
        params = params if mark is not None else []
    if app.db.is_sqlite:
        params = [_sqlite_time(p) for p in params]
    as_of = app.clock.now()
    with tempfile.TemporaryDirectory(prefix="leadledger-export-") as work:
        duck = duckdb.connect()
        try:
            duck.execute("SET TimeZone = 'UTC'")
            columns = ", ".join(_output(name, kind_) for name, kind_, _, _ in specs)
            with _source_snapshot(app) as conn, conn.begin(), Source(conn, Path(work), duck) as source:
                if kind != "leads" and not isinstance(mark, datetime):  # an id range: SQLite's child can read it
                    rows_in = source.rows_between(table.name, specs, mark or 0, watermark)
                else:
                    files = source.export(table.name, specs, where, params)
                    rows_in = read_csv_sql(files, specs) if files else None
                if rows_in:
                    duck.execute(f"CREATE TEMP TABLE out AS SELECT {columns} FROM {rows_in} ORDER BY id")
                else:
                    empty = ", ".join(f'NULL::{_output_type(kind_)} AS "{name}"' for name, kind_, _, _ in specs)
                    duck.execute(f"CREATE TEMP TABLE out AS SELECT {empty} WHERE false")
            rows = int(duck.execute("SELECT count(*) FROM out").fetchall()[0][0])
            duck.execute(f"COPY out TO {_path_literal(scratch)} ({_copy_options(fmt)})")
        finally:
            duck.close()
    return rows, watermark, as_of


def _output(name: str, kind: str) -> str:
    if kind == "TIMESTAMP":
        return f'"{name}"::TIMESTAMPTZ AS "{name}"'  # stored as naive UTC; the session zone is UTC
    return f'"{name}"'


def _output_type(kind: str) -> str:
    return "TIMESTAMPTZ" if kind == "TIMESTAMP" else kind


# --- stints --------------------------------------------------------------------------------------------


STINT_COLUMNS = (
    "lead_id", "status", "entered_at", "left_at", "next_status", "prev_status", "entry_source", "entry_actor",
    "entry_role", "entry_reason", "entry_rule", "entry_owner", "entry_stage", "entry_off_model",
)  # fmt: skip


def _export_stints(app: App, scratch: Path, fmt: str, mark: int | datetime | None) -> tuple[int, int, datetime]:
    from leadledger.analytics.context import Options, Query

    as_of = app.clock.now()
    source = app.for_reports()
    model = source.loaded_model().model
    with open_store(app) as store:
        sync(store, source)
        # the store's final watermark: every ledger id up to it is copied (see analytics.store on PostgreSQL)
        final = store.execute("SELECT value FROM meta WHERE key = 'ledger_final'").fetchall()
        watermark = int(final[0][0]) if final and final[0][0] else 0
        query = Query(source, store, model, Options.make(now=as_of))
        scope = ""
        if mark is not None:
            if isinstance(mark, int):
                scope = "AND s.lead_id IN (SELECT lead_id FROM ledger_m WHERE id > $mark)"
            else:
                raise Invalid("--since for stints takes a ledger id (the `next_since` of the previous export)")
        calendars = list(query.facts.calendars)
        listed = ", ".join(f"s.{c}" for c in STINT_COLUMNS)
        store.execute("SET TimeZone = 'UTC'")
        sql = f"""CREATE OR REPLACE TEMP TABLE stint_export AS
            SELECT {listed},
                   list_extract($calendars::VARCHAR[], coalesce(om.cal, $default_cal) + 1) AS calendar,
                   (s.left_at IS NULL OR s.left_at > $t) AS open,
                   {Query.CALENDAR_US} AS calendar_us,
                   {Query.BUSINESS_US} AS business_us,
                   $t::TIMESTAMP AS as_of
            FROM stints s LEFT JOIN omap om ON om.owner = s.entry_owner
            WHERE s.entered_at <= $t {scope}
            ORDER BY s.lead_id, s.entered_at"""
        values = query.params(calendars=calendars, **({"mark": mark} if scope else {}))
        store.execute(sql, {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)})
        times = ("entered_at", "left_at", "as_of")
        columns = ", ".join(
            f'"{c}"::TIMESTAMPTZ AS "{c}"' if c in times else f'"{c}"'
            for c in (*STINT_COLUMNS, "calendar", "open", "calendar_us", "business_us", "as_of")
        )
        rows = int(store.execute("SELECT count(*) FROM stint_export").fetchall()[0][0])
        store.execute(f"COPY (SELECT {columns} FROM stint_export) TO {_path_literal(scratch)} ({_copy_options(fmt)})")
        store.execute("DROP TABLE stint_export")
    return rows, watermark, as_of
