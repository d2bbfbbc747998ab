"""Shared fixtures: an initialised app on SQLite and on a real PostgreSQL, a controllable clock, factories.

PostgreSQL: `LEADLEDGER_TEST_PG` may name a server URL (postgresql+psycopg://user@host:port/db); otherwise a
throwaway cluster is started with initdb/pg_ctl for the test session. When `LEADLEDGER_TEST_REQUIRE`
contains `postgres` (CI sets it), a PostgreSQL test that cannot run fails instead of skipping.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.dependencies import models as fastapi_dependency_models
from hypothesis import settings
from sqlalchemy import create_engine, text

from leadledger.bootstrap import build_app
from leadledger.domain.clock import FixedClock
from leadledger.services import models, people
from leadledger.services.app import App

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York

# Property tests check behaviour, not speed: a busy CI machine must not fail them on a timing deadline.
settings.register_profile("leadledger", deadline=None)
settings.load_profile("leadledger")


_UMASK = os.umask(0o077)  # the umask the test run started with (read, then put back)
os.umask(_UMASK)


@pytest.fixture(autouse=True)
def _umask_restored() -> Iterator[None]:
    """The command line sets umask 077 (`keep_new_files_private`); run in-process, it must not carry over to
    other tests, as a command run from a shell leaves the shell's umask alone."""
    os.umask(_UMASK)
    yield
    os.umask(_UMASK)


@pytest.fixture(autouse=True)
def _fastapi_caches_cleared() -> Iterator[None]:
    """FastAPI caches facts about each route's callables in module-level LRU caches (4,096 entries each), keyed
    by the callable: a server builds its app once, but each test builds its own, and the caches kept dozens
    of them alive with their App, model and engine (1.2 M objects in a worker, which every full garbage
    collection then walked: a tenth of the run's time). Emptied after each test; they refill as needed."""
    yield
    for cached in vars(fastapi_dependency_models).values():
        if callable(getattr(cached, "cache_clear", None)):
            cached.cache_clear()


def _required(kind: str) -> bool:
    return kind in os.environ.get("LEADLEDGER_TEST_REQUIRE", "")


def skip_or_fail(kind: str, why: str) -> None:
    if _required(kind):
        pytest.fail(f"{kind} is required in this run but unavailable: {why}")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class _Cluster:
    """A throwaway PostgreSQL cluster for one test session (run as the postgres user when we are root)."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="leadledger-pg-"))
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o755)
        self._run(["initdb", "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--no-locale", "--no-sync"])  # fmt: skip
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(["pg_ctl", "-D", str(self.dir / "data"), "-w", "-l", str(self.dir / "log"), "-o", options, "start"])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        try:
            self._run(["pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server URL (admin database) for the session."""
    given = os.environ.get("LEADLEDGER_TEST_PG")
    if given:
        yield given
        return
    try:
        cluster = _Cluster()
    except Exception as exc:
        skip_or_fail("postgres", f"cannot start a PostgreSQL server: {exc}")
        return
    try:
        yield cluster.url
    finally:
        cluster.stop()


def _with_database(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> str:
    """A migrated, initialised database that each test copies (CREATE DATABASE ... TEMPLATE is fast)."""
    name = f"ll_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    app = build_app(db_url=_with_database(pg_server, name), clock=FixedClock(T0))
    models.initialise(app)
    app.db.dispose()
    admin.dispose()
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    app = build_app(db_url=f"sqlite:///{path}", clock=FixedClock(T0))
    models.initialise(app)
    with app.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    app.db.dispose()
    return path


def fresh_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A URL to an initialised, empty database of the given backend, private to the test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "leadledger.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    server: str = request.getfixturevalue("pg_server")
    template_name: str = request.getfixturevalue("pg_template")
    name = f"ll_t_{os.getpid()}_{next(_counter)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    admin.dispose()
    url = _with_database(server, name)

    def drop() -> None:
        engine = create_engine(server, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    request.addfinalizer(drop)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs twice: on SQLite and on a real PostgreSQL."""
    return fresh_database(request, request.param, tmp_path)


@pytest.fixture
def second_db_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """Another initialised database on db_url's backend (two worlds to compare, e.g. recorded and hand-mapped)."""
    (tmp_path / "second").mkdir()
    return fresh_database(request, "postgres" if db_url.startswith("postgresql") else "sqlite", tmp_path / "second")


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An initialised database on the real PostgreSQL server only (for tests about PostgreSQL itself)."""
    return fresh_database(request, "postgres", tmp_path)


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request, "sqlite", tmp_path)


@pytest.fixture
def another_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes further fresh databases ("sqlite" or "postgres") in the same test, for tests that compare two."""

    def make(backend: str) -> str:
        folder = tmp_path / f"another-{next(_counter)}"
        folder.mkdir()
        return fresh_database(request, backend, folder)

    return make


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    application = build_app(db_url=db_url, clock=clock)
    yield application
    application.db.dispose()


@pytest.fixture
def team_app(app: App) -> App:
    """An app with a team, a manager and two reps (ana, ben) on the default calendar."""
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    people.add_user(app, name="ben", role="rep", team="east")
    return app
