"""PostgreSQL time partitioning of the ledger and activities (see `ensure`); nothing on SQLite."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

PARTITIONED = ("ledger", "activities")
KEY = "recorded_at"


def is_partitioned(conn: Connection, table: str) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    found = conn.exec_driver_sql(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = %(t)s AND c.relnamespace = current_schema()::regnamespace",
        {"t": table},
    ).first()
    return found is not None


def ensure(conn: Connection, table: str, first: datetime, last: datetime) -> list[str]:
    raise NotImplementedError
