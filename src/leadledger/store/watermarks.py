"""The highest id of an append-only table below which every row is committed: a safe resume point.

PostgreSQL hands out ids before commit, so right after a read the table may still receive rows with lower
ids from transactions in flight. Taking a SHARE lock waits for those writers to commit (and holds new ones
back for the moment it takes to read the maximum), so every id up to the one read is final. SQLite
serialises writers: its maximum is final as it is.
"""

from __future__ import annotations

from sqlalchemy import Engine

LOCK_TIMEOUT = "10s"  # a long import transaction makes us wait at most this long, then the caller fails clearly


def stable_max_id(engine: Engine, table: str) -> int:
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            conn.exec_driver_sql(f'LOCK TABLE "{table}" IN SHARE MODE')
        return int(conn.exec_driver_sql(f'SELECT coalesce(max(id), 0) FROM "{table}"').scalar() or 0)
