"""Backup and restore: one portable file, consistent while the server writes, restorable into either database.

A backup is a SQLite database file holding every LeadLedger table at the source's schema revision, plus a
`leadledger_backup` table that says what it is (format, source database kind, revision, when, row counts).

* From SQLite it is made with SQLite's online backup API in a single step: the copy reads one snapshot (WAL
  readers never block writers), so a server writing meanwhile is neither stopped nor half-copied.
* From PostgreSQL it is a logical export of every table inside one `REPEATABLE READ READ ONLY` transaction:
  every table is read from the same snapshot, committed changes only, while writers carry on.

`restore` writes a backup into an empty database of either kind (so it is also the way from SQLite to
PostgreSQL): on SQLite with the backup API again, on PostgreSQL with `COPY` in one transaction (sequences
set past the restored ids, time partitions created for the restored range), then the schema is brought to
this version's head. The file is written under a temporary name and renamed at the end: a backup that
was interrupted never looks like a finished one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, inspect

from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.store.db import Database, head_revision, migrate

FORMAT = "leadledger-backup/1"
META_TABLE = "leadledger_backup"
SKIPPED_TABLES = ("alembic_version", META_TABLE)
BATCH = 10_000

Progress = Callable[[str, int], None]  # (table, rows copied so far in it)


@dataclass
class BackupSummary:
    file: str
    source: str
    revision: str
    created_at: str
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "source": self.source, "revision": self.revision, "created_at": self.created_at,
                "tables": self.tables, "rows": sum(self.tables.values())}  # fmt: skip


# --- backup -------------------------------------------------------------------------------------------


def backup(app: App, target: Path, *, progress: Progress | None = None, overwrite: bool = False) -> BackupSummary:
    """Write a consistent backup of the whole database to `target` (a new file)."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise Invalid(f"{target} exists: choose a new file name (a backup never overwrites one)")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    scratch = Path(scratch_name)
    try:
        if app.db.is_sqlite:
            summary = _backup_sqlite(app, scratch)
        else:
            summary = _backup_postgres(app, scratch, progress)
        os.replace(scratch, target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    summary.file = str(target)
    return summary


def _sqlite_path(db: Database) -> str:
    database = db.engine.url.database or ""
    if database in ("", ":memory:"):
        raise Invalid("an in-memory SQLite database cannot be backed up: it lives only in its own process")
    return database


def _backup_sqlite(app: App, scratch: Path) -> BackupSummary:
    source = sqlite3.connect(_sqlite_path(app.db), timeout=60)
    dest = sqlite3.connect(scratch)
    try:
        source.execute("PRAGMA busy_timeout=60000")
        # one step (pages=-1): the whole copy reads a single snapshot; stepwise copies restart from the first
        # page whenever another connection writes, so under a steady load they might never finish
        source.backup(dest)
        revision = dest.execute("SELECT version_num FROM alembic_version").fetchone()
        if revision is None:
            raise Invalid("the database has no LeadLedger schema: nothing to back up")
        tables = _row_counts(dest)
        created = datetime.now(UTC).isoformat()
        _write_meta(dest, source="sqlite", revision=revision[0], created_at=created, tables=tables)
        dest.commit()
        dest.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dest.close()
        source.close()
    return BackupSummary("", "sqlite", revision[0], created, tables)


def _user_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [name for (name,) in rows if name not in SKIPPED_TABLES]


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in _user_tables(conn)}


def _write_meta(conn: sqlite3.Connection, **values: Any) -> None:
    conn.execute(f"CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    values = {"format": FORMAT, **values}
    conn.executemany(f"INSERT INTO {META_TABLE} VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])


def _backup_postgres(app: App, scratch: Path, progress: Progress | None) -> BackupSummary:
    with app.db.engine.connect() as pg:
        pg = pg.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with pg.begin():
            # the snapshot is taken by the first statement: every table below is read from it
            revision = pg.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if revision is None:
                raise Invalid("the database has no LeadLedger schema: nothing to back up")
            created = datetime.now(UTC).isoformat()
            container = Database(f"sqlite:///{scratch}")
            try:
                migrate(container, revision)  # the same tables, as SQLite holds them
            finally:
                container.dispose()
            dest = sqlite3.connect(scratch)
            try:
                dest.execute("PRAGMA journal_mode=OFF")
                dest.execute("PRAGMA synchronous=OFF")
                dest.execute("PRAGMA foreign_keys=OFF")
                tables: dict[str, int] = {}
                for table in _user_tables(dest):
                    tables[table] = _copy_pg_table(pg, dest, table, progress)
                _write_meta(dest, source="postgresql", revision=revision, created_at=created, tables=tables)
                dest.commit()
                dest.execute("PRAGMA journal_mode=DELETE")
            finally:
                dest.close()
    return BackupSummary("", "postgresql", revision, created, tables)


def _pg_columns(pg: Connection, table: str) -> dict[str, str]:
    rows = pg.exec_driver_sql(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %(t)s ORDER BY ordinal_position",
        {"t": table},
    )
    return {name: kind for name, kind in rows}


def _to_sqlite(kind: str) -> Callable[[Any], Any] | None:
    """How a value PostgreSQL hands back is stored the way SQLAlchemy stores it on SQLite."""
    if kind.startswith("timestamp"):
        return lambda v: None if v is None else v.isoformat(" ", "microseconds")
    if kind in ("json", "jsonb"):
        return lambda v: None if v is None else json.dumps(v, separators=(",", ":"))
    if kind == "boolean":
        return lambda v: None if v is None else int(v)
    return None


def _copy_pg_table(pg: Connection, dest: sqlite3.Connection, table: str, progress: Progress | None) -> int:
    wanted = [row[1] for row in dest.execute(f'PRAGMA table_info("{table}")')]
    kinds = _pg_columns(pg, table)
    missing = [c for c in wanted if c not in kinds]
    if missing:
        raise Invalid(f"table {table} lacks column(s) {', '.join(missing)}: the schema is not at its revision")
    converters = [_to_sqlite(kinds[c]) for c in wanted]
    columns = ", ".join(f'"{c}"' for c in wanted)
    insert = f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" for _ in wanted)})'
    raw = pg.connection.driver_connection
    assert raw is not None
    copied = 0
    with raw.cursor(name=f"leadledger_backup_{table}") as cursor:  # server-side: memory stays flat
        cursor.itersize = BATCH
        cursor.execute(f'SELECT {columns} FROM "{table}"')
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                break
            if any(converters):
                rows = [
                    tuple(v if f is None else f(v) for f, v in zip(converters, row, strict=True)) for row in rows
                ]
            dest.executemany(insert, rows)
            copied += len(rows)
            if progress:
                progress(table, copied)
    return copied


# --- reading a backup ----------------------------------------------------------------------------------


def describe(source: Path) -> dict[str, Any]:
    """What a backup file holds (its `leadledger_backup` table), or a clear error when it is not one."""
    if not Path(source).is_file():
        raise Invalid(f"{source}: no such backup file")
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            meta = {k: json.loads(v) for k, v in conn.execute(f"SELECT key, value FROM {META_TABLE}")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise Invalid(f"{source} is not a LeadLedger backup ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise Invalid(f"{source} is a backup in format {meta.get('format')!r}; this version reads {FORMAT}")
    return meta


# --- restore ------------------------------------------------------------------------------------------


@dataclass
class RestoreSummary:
    file: str
    target: str
    revision: str
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "target": self.target, "restored_revision": self.revision,
                "tables": self.tables, "rows": sum(self.tables.values())}  # fmt: skip


def restore(app: App, source: Path, *, progress: Progress | None = None) -> RestoreSummary:
    """Write the backup into the app's database, which must be empty; then upgrade it to this version's head.

    All or nothing: on PostgreSQL one transaction (schema, rows, sequences, upgrade); on SQLite the file is
    assembled under a temporary name and moved into place when complete."""
    source = Path(source)
    meta = describe(source)
    _check_revision(meta["revision"])
    _require_empty(app.db)
    if app.db.is_sqlite:
        tables = _restore_sqlite(app.db, source)
    else:
        tables = _restore_postgres(app.db, source, meta["revision"], progress)
    app.db.dispose()  # connections opened before the restore may have cached the old (empty) schema
    return RestoreSummary(str(source), "sqlite" if app.db.is_sqlite else "postgresql", meta["revision"], tables)


def _check_revision(revision: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from leadledger.store.db import script_location

    config = Config()
    config.set_main_option("script_location", script_location())
    try:
        ScriptDirectory.from_config(config).get_revision(revision)
    except CommandError as exc:
        raise Invalid(
            f"the backup's schema revision {revision} is unknown here (this version is at {head_revision()}): "
            "restore it with the LeadLedger version that made it, or a newer one"
        ) from exc


def _require_empty(db: Database) -> None:
    if db.is_sqlite:
        path = _sqlite_path(db)
        if not Path(path).exists():
            return
    with db.engine.connect() as conn:
        names = inspect(conn).get_table_names()
    if names:
        listed = ", ".join(sorted(names)[:5]) + ("…" if len(names) > 5 else "")
        raise Invalid(
            f"restore needs an empty database; this one has {len(names)} table(s) ({listed}): "
            "point LEADLEDGER_DB at a new database (do not run `leadledger init` first)"
        )


def _restore_sqlite(db: Database, source: Path) -> dict[str, int]:
    db.dispose()
    target = Path(_sqlite_path(db))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(handle)
    scratch = Path(scratch_name)
    try:
        backup_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dest = sqlite3.connect(scratch)
        try:
            backup_conn.backup(dest)
            dest.execute(f"DROP TABLE {META_TABLE}")
            dest.commit()
        finally:
            dest.close()
            backup_conn.close()
        assembled = Database(f"sqlite:///{scratch}")
        try:
            migrate(assembled)  # WAL mode and this version's schema
            with assembled.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            counts = _counts_of(assembled)
        finally:
            assembled.dispose()
        if target.exists() and _without_tables(target):
            for suffix in ("-wal", "-shm"):  # an empty database (made when the app was built): nothing to keep
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            target.unlink()
        if target.exists():
            raise Invalid(f"{target} appeared while restoring: nothing was overwritten")
        scratch.chmod(0o600)  # as store.db creates a database file: it holds password hashes and secrets
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    return counts


def _without_tables(path: Path) -> bool:
    """An empty file, or a SQLite database with no table in it (not a file of some other kind)."""
    if path.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def _counts_of(db: Database) -> dict[str, int]:
    path = _sqlite_path(db)
    conn = sqlite3.connect(path)
    try:
        return _row_counts(conn)
    finally:
        conn.close()


def _restore_postgres(db: Database, source: Path, revision: str, progress: Progress | None) -> dict[str, int]:
    backup_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    tables: dict[str, int] = {}
    try:
        with db.engine.connect() as pg, pg.begin():
            migrate(db, revision, connection=pg)
            names = set(_user_tables(backup_conn))
            order = [t.name for t in _sorted_tables(pg) if t.name in names]
            order += sorted(names - set(order))
            _prepare_partitions(pg, backup_conn, names)
            pg.exec_driver_sql("SET CONSTRAINTS ALL DEFERRED")  # references checked at commit, in any order
            raw = pg.connection.driver_connection
            assert raw is not None
            for table in order:
                tables[table] = _copy_into_pg(raw, backup_conn, table, progress)
            for table in order:
                _advance_sequence(pg, table)
            migrate(db, connection=pg)
    finally:
        backup_conn.close()
    return tables


def _sorted_tables(pg: Connection) -> list[Any]:
    metadata = MetaData()
    metadata.reflect(bind=pg)
    return list(metadata.sorted_tables)


def _prepare_partitions(pg: Connection, backup_conn: sqlite3.Connection, names: set[str]) -> None:
    """Partitioned tables (PostgreSQL at scale) get a partition for every month the restored rows cover."""
    from leadledger.store import partitions

    for table in partitions.PARTITIONED:
        if table not in names or not partitions.is_partitioned(pg, table):
            continue
        first, last = backup_conn.execute(
            f'SELECT min("{partitions.KEY}"), max("{partitions.KEY}") FROM "{table}"'
        ).fetchone()
        if first is not None:
            partitions.ensure(pg, table, _as_time(first), _as_time(last))


def _as_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows(conn: sqlite3.Connection, sql: str) -> Iterator[Sequence[Any]]:
    cursor = conn.execute(sql)
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            return
        yield from rows


def _copy_into_pg(raw: Any, backup_conn: sqlite3.Connection, table: str, progress: Progress | None) -> int:
    """COPY the table's rows in: text in, each value parsed by PostgreSQL as its column's type."""
    columns = [row[1] for row in backup_conn.execute(f'PRAGMA table_info("{table}")')]
    listed = ", ".join(f'"{c}"' for c in columns)
    copied = 0
    with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({listed}) FROM STDIN') as copy:
        for row in _rows(backup_conn, f'SELECT {listed} FROM "{table}"'):
            copy.write_row(row)
            copied += 1
            if progress and copied % BATCH == 0:
                progress(table, copied)
    if progress:
        progress(table, copied)
    return copied


def _advance_sequence(pg: Connection, table: str) -> None:
    """Restored ids came with the rows: the id sequence must continue after the highest."""
    has_id = pg.exec_driver_sql(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = %(t)s AND column_name = 'id'",
        {"t": table},
    ).first()
    if has_id is None:
        return
    sequence = pg.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, 'id')", {"t": f'"{table}"'}).scalar()
    if sequence is None:
        return
    pg.exec_driver_sql(
        f'SELECT setval(%(s)s, coalesce((SELECT max(id) FROM "{table}"), 0) + 1, false)', {"s": sequence}
    )
