"""Reading the source database's rows for DuckDB: what a sync and `leadledger export` copy through.

- PostgreSQL: `COPY ... TO STDOUT` as CSV files DuckDB loads with `read_csv` — or, for the first sync when
  DuckDB's postgres extension is installed, straight through it (`scanner`).
- SQLite: an id range of many rows (the ledger and activities of a first sync or a big import) goes through a
  child process that reads it with ADBC as Arrow into a DuckDB file this connection attaches
  (`sqlite_reader`: why a child process); other reads go through `fetchmany` and CSV files, where a process
  start (~0.15 s) would cost more than the rows. The child reads outside this connection's transaction,
  which is exact for an id range ending at an id read inside it: SQLite serialises writers, so the ids up to
  the highest one it saw committed are all there is.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from leadledger.analytics.store.connection import memory_limit, safe_setting

if TYPE_CHECKING:  # duckdb is imported where a store is opened: every CLI call would pay ~0.1 s for it
    import duckdb

Column = tuple[str, str, str, str]  # (name in DuckDB, DuckDB type, SQLite expression, PostgreSQL expression)
CHUNK_ROWS = 250_000
NULL_TEXT = "\\N"  # how NULL travels as text between the stores (a literal \N text would read as NULL)
CHILD_MIN_ROWS = 50_000  # an id range at least this wide is read by the child process (SQLite)
CHILD_STEP = 500_000  # ids per chunk the child reads: its memory stays bounded, its progress shows
_NUMBERS = ("BIGINT", "INTEGER", "BOOLEAN")  # written as they are; anything else travels as text
_READER = Path(__file__).with_name("sqlite_reader.py")


@dataclass(frozen=True)
class Snapshot:
    """PostgreSQL: the oldest transaction still running and those in progress when the rows were read."""

    xmin: int
    in_progress: tuple[int, ...]


class Source:
    """The rows of the database `conn` reads, as DuckDB table expressions; close() (or a `with` block)
    detaches the files the child processes wrote."""

    def __init__(self, conn: Connection, workdir: Path, duck: duckdb.DuckDBPyConnection | None = None):
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.workdir = workdir
        self.duck = duck  # where the child's files are attached (rows_between)
        self._files = 0
        self._attached: list[str] = []
        self.children = 0  # reads done by the child process (SQLite)
        self.scanner: str | None = None  # the DuckDB alias of the attached PostgreSQL database, when used

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.duck is not None:
            for alias in self._attached:
                self.duck.execute(f"DETACH {alias}")
        self._attached.clear()

    def rows_between(
        self,
        table: str,
        columns: Sequence[Column],
        after: int,
        upto: int,
        on_rows: Callable[[int], None] | None = None,
    ) -> str | None:
        """The rows with `after` < id <= `upto` (`upto` read in this connection's transaction)."""
        database = self.conn.engine.url.database or ""
        if self.sqlite and self.scanner is None and upto - after >= CHILD_MIN_ROWS and database not in ("", ":memory:"):
            return self._from_child(database, table, columns, after, upto, on_rows)
        return self.relation(table, columns, "id > ? AND id <= ?", [after, upto], on_rows)

    def _from_child(
        self,
        database: str,
        table: str,
        columns: Sequence[Column],
        after: int,
        upto: int,
        on_rows: Callable[[int], None] | None,
    ) -> str:
        assert self.duck is not None, "rows_between needs the DuckDB connection to attach the rows to"
        self.children += 1
        self._files += 1
        out = self.workdir / f"rows{self._files:05d}.duckdb"
        request = {
            "db": database,
            "out": str(out),
            "table": table,
            "select": ", ".join(f'{_as_text(c)} AS "{c[0]}"' for c in columns),
            "casts": ", ".join(_typed(c) for c in columns),
            "after": int(after),
            "upto": int(upto),
            "step": CHILD_STEP,
            "memory": memory_limit(),
        }
        child = subprocess.Popen(  # a script: the child imports neither LeadLedger nor its SQLite
            [sys.executable, str(_READER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        child.stdin.write(json.dumps(request))
        child.stdin.close()
        done = 0
        for line in child.stdout:
            copied = int(line)
            if on_rows:
                on_rows(copied - done)
            done = copied
        errors = child.stderr.read()
        if child.wait() != 0:
            raise RuntimeError(f"reading {table} from {database} failed: {errors.strip()[-2000:]}")
        alias = f"leadledger_rows_{self._files}"
        self.duck.execute(f"ATTACH '{safe_setting(str(out))}' AS {alias} (READ_ONLY)")
        self._attached.append(alias)
        return f"{alias}.rows"

    def relation(
        self,
        table: str,
        columns: Sequence[Column],
        where: str,
        params: Sequence[int],
        on_rows: Callable[[int], None] | None = None,
    ) -> str | None:
        """A DuckDB table expression of the rows (None when there are none to read)."""
        if self.scanner is not None:
            select = ", ".join(f"{c[3]} AS {c[0]}" for c in columns)
            bound = where
            for value in params:  # ids only: integers, inlined
                bound = bound.replace("?", str(int(value)), 1)
            query = f"SELECT {select} FROM {table} WHERE {bound}".replace("'", "''")
            return f"postgres_query('{self.scanner}', '{query}')"
        files = self.export(table, columns, where, params, on_rows)
        return read_csv_sql(files, columns) if files else None

    def snapshot(self) -> Snapshot | None:
        if self.sqlite:
            return None
        row = self.conn.exec_driver_sql(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, "
            "ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot())::text)"
        ).one()
        return Snapshot(int(row[0]), tuple(int(x) for x in row[1]))

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
        columns: Sequence[Column],
        where: str,
        params: Sequence[Any],
        on_rows: Callable[[int], None] | None = None,
    ) -> list[Path]:
        """Rows of `table` matching `where` (placeholders written as `?`) as CSV files of CHUNK_ROWS rows."""
        if self.sqlite:
            select = ", ".join(c[2] if c[1] in _NUMBERS else f"coalesce({c[2]}, '{NULL_TEXT}')" for c in columns)
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


def read_csv_sql(files: Sequence[Path], columns: Sequence[Column]) -> str:
    """A `read_csv` table function over our CSV files (paths are ours, never user input)."""
    names = ", ".join(f"'{c[0]}': '{c[1]}'" for c in columns)
    paths = ", ".join(f"'{safe_setting(str(p))}'" for p in files)
    return (
        f"read_csv([{paths}], header = false, delim = ',', quote = '\"', escape = '\"', "
        f"nullstr = '{NULL_TEXT}', auto_detect = false, new_line = '\\n', columns = {{{names}}})"
    )


def _as_text(column: Column) -> str:
    """How a column leaves SQLite for the child: the schema's never-NULL numbers as they are, anything else as
    text with NULL spelled `\\N` (as in the CSV files), so the driver types each column from its first batch
    whatever SQLite's affinity stored in it."""
    kind, expr = column[1], column[2]
    if kind in _NUMBERS:
        return expr
    if kind == "DOUBLE":  # 17 significant digits: text that reads back as the same double
        return f"CASE WHEN {expr} IS NULL THEN '{NULL_TEXT}' ELSE printf('%!.17g', {expr}) END"
    return f"coalesce(CAST({expr} AS TEXT), '{NULL_TEXT}')"


def _typed(column: Column) -> str:
    """The column as DuckDB stores it, read from what `_as_text` sent. Through text whatever arrived: a number
    may come as text (a nullable one, spelled `\\N` when NULL), and an empty result arrives untyped."""
    name, kind = f'"{column[0]}"', column[1]
    return f"CAST(NULLIF(CAST({name} AS VARCHAR), '{NULL_TEXT}') AS {kind}) AS {name}"
