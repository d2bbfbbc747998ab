"""Database connections: one `Database` per URL, SQLite tuned for a single-file product, PostgreSQL for production.

Write transactions on SQLite start with BEGIN IMMEDIATE, so two writers queue for the lock instead of
failing halfway; on PostgreSQL the service layer locks the lead row (SELECT ... FOR UPDATE).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from leadledger.domain.statusmodel import StatusModel

_WRITE = "leadledger_write"

DatabaseError = DBAPIError  # what the database layer raises: adapters catch it by this name, through services


def error_kind(exc: BaseException) -> str:
    """What a database error means to a caller: "unavailable" (try again), "bad_value" (input), or "other"."""
    if isinstance(exc, OperationalError):
        return "unavailable"
    if isinstance(exc, DataError):
        return "bad_value"
    return "other"


class Database:
    """An engine plus the two kinds of transaction the services use: `write()` and `read()`."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            database = parsed.database or ""
            # the file is created by `migrate` (0600), never by opening: a command before `init` leaves no file
            file = database and database != ":memory:" and not database.startswith("file:")
            self.path = Path(database).expanduser() if file else None
            options: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
            if database in ("", ":memory:"):
                options["poolclass"] = StaticPool  # one shared connection, or each would see an empty database
            self.engine = create_engine(url, echo=echo, **options)
            _tune_sqlite(self.engine)
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def describe(self) -> str:
        """The URL without its password (and the absolute file for SQLite), for messages."""
        shown = make_url(self.url).render_as_string(hide_password=True)
        if self.is_sqlite and self.path is not None:
            return f"{shown} ({self.path.resolve()})"
        return shown

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any error."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def create_private(path: Path) -> None:
    """Create the database file readable and writable by its owner only (0600), unless it exists already.

    It holds password hashes, token hashes and webhook secrets; SQLite gives its -wal and -shm files the
    database file's permissions. An existing file keeps the permissions its owner gave it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours to emit
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # INSERT OR REPLACE deletes the ledger row it collides with; with recursive triggers that delete fires
        # the ledger's DELETE trigger, so it fails like UPDATE and DELETE (an insert trigger checking every
        # unique key would do the same at twice the cost of each ledger insert)
        cursor.execute("PRAGMA recursive_triggers=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # straight to the driver: an exec_driver_sql here cost as much as a query, in every transaction
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def is_initialised(db: Database) -> bool:
    """Whether `leadledger init` set this database up. Never creates anything: a missing SQLite file is not
    opened (opening would create it)."""
    if db.is_sqlite and db.path is not None and not db.path.exists():
        return False
    with db.engine.connect() as conn:
        return inspect(conn).has_table("model_versions")


def script_location() -> str:
    """Where the Alembic migrations shipped in the package live."""
    return str(resources.files("leadledger.store") / "migrations")


def migrate(
    db: Database,
    revision: str = "head",
    *,
    connection: Connection | None = None,
    model_of: Callable[[str], StatusModel] | None = None,
) -> None:
    """Bring the schema to `revision` with the migrations shipped in the package (creating a SQLite file, 0600,
    and its directory when needed).

    With `connection`, inside that connection's transaction (PostgreSQL's DDL is transactional: a restore
    creates the schema, copies the rows and upgrades in one all-or-nothing transaction). `model_of` compiles a
    stored model's text, for migrations that fill a column from the model's rules (the store does not compile
    models itself)."""
    from alembic import command
    from alembic.config import Config

    if db.is_sqlite and db.path is not None:
        create_private(db.path)  # owner-only: it holds password, token and webhook-secret hashes
    config = Config()
    config.set_main_option("script_location", script_location())
    config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    config.attributes["model_of"] = model_of
    if connection is not None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        return
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


_HEAD: list[str] = []


def head_revision() -> str:
    """The newest migration shipped in the package (what `leadledger init` upgrades a database to)."""
    if not _HEAD:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", script_location())
        head = ScriptDirectory.from_config(config).get_current_head()
        assert head is not None
        _HEAD.append(head)
    return _HEAD[0]
