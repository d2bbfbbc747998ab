"""The first sync from PostgreSQL through DuckDB's own postgres scanner, when the extension is installed.

A first sync copies every row; reading them straight from PostgreSQL skips the CSV round trip. Incremental
syncs keep the batches (`source.Source.export`): they read few rows, and the watermark logic is the same.
The extension is never downloaded here (`LEADLEDGER_DUCKDB_SCANNER=0` turns its use off).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import duckdb

SCANNER_ALIAS = "leadledger_source"


def postgres_scanner_available(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether DuckDB's postgres extension is installed here; never downloads it."""
    import duckdb

    if os.environ.get("LEADLEDGER_DUCKDB_SCANNER", "1") == "0":
        return False
    conn.execute("SET autoinstall_known_extensions = false")
    conn.execute("SET autoload_known_extensions = false")
    found = conn.execute(
        "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'postgres_scanner'"
    ).fetchall()
    if not found or not found[0][0]:
        return False
    try:
        conn.execute("LOAD postgres_scanner")
    except duckdb.Error:
        return False
    return True


def attach_postgres(conn: duckdb.DuckDBPyConnection, url: str) -> str | None:
    """Attach the source database read-only through DuckDB's postgres scanner; None when it cannot be used
    (not installed, or the attach fails): the sync then copies in batches, as incremental syncs always do."""
    import duckdb

    if not postgres_scanner_available(conn):
        return None
    parsed = make_url(url)
    parts = {"host": parsed.host, "port": parsed.port, "dbname": parsed.database, "user": parsed.username,
             "password": parsed.password}  # fmt: skip
    conninfo = " ".join(
        f"{key}='{str(value).replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
        for key, value in parts.items()
        if value is not None
    )
    try:
        conn.execute(f"ATTACH '{conninfo.replace(chr(39), chr(39) * 2)}' AS {SCANNER_ALIAS} (TYPE postgres, READ_ONLY)")
    except duckdb.Error:
        return None
    return SCANNER_ALIAS
