"""A child process that copies an id range of a SQLite table into a DuckDB file, as Arrow, with no Python rows.

`source.Source` runs it (as a script, so it imports none of LeadLedger) for the big reads of a sync: at 1 M
leads the ledger and activities copy took 66 s through `fetchmany` and CSV, and takes about 27-31 s this way.

Why a process of its own: the ADBC driver links its own copy of SQLite, and two copies of SQLite in one
process break each other's POSIX locks (closing a file in one drops the other's locks; see "How To Corrupt An
SQLite Database File", 2.2.1) — in a server that writes the same file, that risks the database. In a child
process it is one more reader, as safe as any other.

Request (JSON on stdin): db, out (a new DuckDB file), table, select (the SQLite select list), casts (the
DuckDB select list over it), after and upto (ids: the rows with after < id <= upto), step (ids per chunk),
memory (DuckDB's limit). Prints the rows copied so far after each chunk; the table is `rows` in `out`.
"""

from __future__ import annotations

import json
import sys

BATCH_ROWS = 65_536  # rows per Arrow batch; also how many rows the driver types each column by


def main() -> None:
    request = json.load(sys.stdin)
    import adbc_driver_sqlite
    import duckdb
    from adbc_driver_manager import _lib

    database = adbc_driver_sqlite.connect(request["db"])
    source = _lib.AdbcConnection(database)
    out = duckdb.connect(request["out"])
    try:
        out.execute("SET preserve_insertion_order = false")
        out.execute(f"SET memory_limit = '{request['memory']}'")
        after, upto, step = int(request["after"]), int(request["upto"]), int(request["step"])
        copied, created = 0, False
        while after < upto or not created:
            top = min(upto, after + step)
            statement = _lib.AdbcStatement(source)
            statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
            statement.set_sql_query(
                f"SELECT {request['select']} FROM {request['table']} WHERE id > {after} AND id <= {top}"
            )
            stream, _ = statement.execute_query()  # DuckDB finds the stream by its variable's name
            verb = "INSERT INTO rows" if created else "CREATE TABLE rows AS"
            copied += out.execute(f"{verb} SELECT {request['casts']} FROM stream").fetchone()[0]  # type: ignore[index]
            del stream
            statement.close()
            created = True
            after = top
            print(copied, flush=True)
    finally:
        out.close()
        source.close()
        database.close()


if __name__ == "__main__":
    main()
