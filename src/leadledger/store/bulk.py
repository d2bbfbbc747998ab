"""Fast many-row writes with bound parameters, bypassing per-value SQLAlchemy processing.

Values are converted once here the way the column types would store them (naive UTC times as text on
SQLite, JSON as text), then handed to the driver's `executemany`: several times faster for batches of
thousands of rows, with the same result in the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.types import JSON, DateTime

from leadledger.store.tables import UTCDateTime

IN_LIST = 900  # values per `IN (...)` list: below SQLite's default limit of bound parameters per statement


def chunks(items: Sequence[Any], size: int = IN_LIST) -> Iterator[list[Any]]:
    """`items` in consecutive lists of at most `size` (an IN list, a transaction's share of the work)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _converter(column: Any, sqlite: bool) -> tuple[Any, bool]:
    """How a value is handed to the driver for this column (None: as it is), and whether to memoise it."""
    kind = column.type
    if isinstance(kind, (UTCDateTime, DateTime)):
        # times repeat within a batch (the batch's `now`, a change's time): converted once per distinct value
        return (_time_text if sqlite else _naive_utc), True
    if isinstance(kind, JSON):
        return _json_text, False
    return None, False


def stored_time(value: datetime | None, sqlite: bool) -> Any:
    """A time as the UTCDateTime column stores it: naive UTC (on SQLite the text SQLAlchemy writes and reads)."""
    if value is None:
        return None
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return naive.isoformat(sep=" ", timespec="microseconds") if sqlite else naive


def _time_text(value: Any) -> Any:
    return stored_time(value, True)


def _naive_utc(value: Any) -> Any:
    return stored_time(value, False)


def _json_text(value: Any) -> Any:
    return None if value is None else json.dumps(value, default=_default, separators=(",", ":"))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def insert_many(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str] | None = None
) -> None:
    """INSERT rows (dicts with the same keys; `columns` of them when given) with one driver-level executemany."""
    if not rows:
        return
    columns = list(columns or rows[0].keys())
    _execute_many(conn, f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({{marks}})", table, columns, rows)


def update_many(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    set_columns: Sequence[str],
    where: Sequence[tuple[str, str]],
) -> int:
    """UPDATE table SET set_columns WHERE column = row[key] for each (column, key) in `where`; rows changed."""
    if not rows:
        return 0
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = (
        f"UPDATE {table.name} SET {', '.join(f'{c} = {mark}' for c in set_columns)} "
        f"WHERE {' AND '.join(f'{column} = {mark}' for column, _key in where)}"
    )
    columns = [*set_columns, *(column for column, _key in where)]
    keys = [*set_columns, *(key for _column, key in where)]
    return _execute_many(conn, sql, table, columns, rows, keys=keys)


def _execute_many(
    conn: Connection,
    sql: str,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str] | None = None,
) -> int:
    sqlite = conn.dialect.name == "sqlite"
    if "{marks}" in sql:
        sql = sql.format(marks=", ".join("?" if sqlite else "%s" for _ in columns))
    keys = keys or columns
    values: list[list[Any]] = []  # column by column: one pass per column, no per-row generator
    for column, key in zip(columns, keys, strict=True):
        convert, memoise = _converter(table.c[column], sqlite)
        raw = [row[key] for row in rows]
        if convert is None:
            values.append(raw)
        elif memoise:
            converted = {value: convert(value) for value in set(raw)}
            values.append([converted[value] for value in raw])
        else:
            values.append([convert(value) for value in raw])
    params = list(zip(*values, strict=True))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute_rows(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """One statement written with `?` marks for each row (values already in the driver's form); rows changed."""
    if not rows:
        return 0
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement written with `?` marks straight on the driver; returns the rows it changed."""
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return int(cursor.rowcount)
    finally:
        cursor.close()


def fetch_all(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a small query written with `?` marks, straight from the driver (no result processing).

    For queries whose columns need no conversion (ids, names, counts): run in every write transaction,
    SQLAlchemy's execution costs several times what the query does.
    """
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()
