"""Reports read a streaming replica (LEADLEDGER_REPORTS_DB): a primary and a pg_basebackup standby, started here.

The proof that the reports read the replica and not the primary: with replay paused on the standby, leads
written on the primary are missing from the reports; once replay resumes, they are there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from leadledger import analytics
from leadledger.bootstrap import build_app
from leadledger.services import leads as svc
from leadledger.services import models

pytestmark = pytest.mark.postgres


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_basebackup").exists():
            return candidate
    found = shutil.which("pg_basebackup")
    return Path(found).parent if found else None


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ReplicaPair:
    """A primary and its hot standby, each a throwaway cluster (as the postgres user when we are root)."""

    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="leadledger-replica-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        self.primary_port, self.standby_port = _port(), _port()
        self.started: list[Path] = []
        primary = self.root / "primary"
        self._run(["initdb", "-D", str(primary), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
                   "--no-sync"])  # fmt: skip
        self._start(primary, self.primary_port)
        standby = self.root / "standby"
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming hot standby
        self._run(["pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres", "-D",
                   str(standby), "-R", "-X", "stream", "--no-sync"])  # fmt: skip
        self._start(standby, self.standby_port)
        self.primary = f"postgresql+psycopg://postgres@127.0.0.1:{self.primary_port}/postgres"
        self.standby = f"postgresql+psycopg://postgres@127.0.0.1:{self.standby_port}/postgres"

    def _run(self, args: list[str]) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=180)

    def _start(self, data: Path, port: int) -> None:
        options = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        self._run(["pg_ctl", "-D", str(data), "-w", "-l", str(self.root / f"{data.name}.log"), "-o", options, "start"])
        self.started.append(data)

    def stop(self) -> None:
        try:
            for data in reversed(self.started):
                self._run(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def replica_pair() -> Iterator[ReplicaPair]:
    """Started once for this module (the only user), stopped after it."""
    try:
        pair = ReplicaPair()
    except Exception as exc:
        why = f"cannot start a primary and a standby: {exc}"
        if "postgres" in os.environ.get("LEADLEDGER_TEST_REQUIRE", ""):  # as tests/conftest.py's skip_or_fail
            pytest.fail(f"postgres is required in this run but unavailable: {why}")
        pytest.skip(why)
        return
    try:
        yield pair
    finally:
        pair.stop()


def _caught_up(primary_url: str, standby_url: str, timeout: float = 60) -> None:
    primary = create_engine(primary_url, isolation_level="AUTOCOMMIT")
    standby = create_engine(standby_url, isolation_level="AUTOCOMMIT")
    try:
        with primary.connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar()
        deadline = time.monotonic() + timeout
        with standby.connect() as conn:
            while not conn.execute(text("SELECT pg_last_wal_replay_lsn() >= :t"), {"t": target}).scalar():
                assert time.monotonic() < deadline, "the standby did not catch up"
                time.sleep(0.05)
    finally:
        primary.dispose()
        standby.dispose()


def test_reports_read_the_replica_named_by_leadledger_reports_db(replica_pair: ReplicaPair, tmp_path, monkeypatch):
    name = f"ll_{uuid.uuid4().hex[:8]}"
    admin = create_engine(replica_pair.primary, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    primary_url = replica_pair.primary.rpartition("/")[0] + f"/{name}"
    standby_url = replica_pair.standby.rpartition("/")[0] + f"/{name}"

    writer = build_app(db_url=primary_url)
    models.initialise(writer)
    for n in range(5):
        svc.create_lead(writer, actor="admin", fields={"name": f"L{n}", "email": f"l{n}@example.com"})
    _caught_up(replica_pair.primary, replica_pair.standby)

    monkeypatch.setenv("LEADLEDGER_REPORTS_DB", standby_url)
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "replica.duckdb"))
    reader = build_app(db_url=primary_url)
    assert reader.reports_db is not None and reader.for_reports().db.url == standby_url

    def total(app) -> int:
        return int(analytics.report(app, "distribution")["total"])

    assert total(reader) == 5
    standby = create_engine(standby_url, isolation_level="AUTOCOMMIT")
    with standby.connect() as conn:
        conn.execute(text("SELECT pg_wal_replay_pause()"))
        try:
            for n in range(5, 8):
                svc.create_lead(writer, actor="admin", fields={"name": f"L{n}", "email": f"l{n}@example.com"})
            assert total(reader) == 5  # the replica has not replayed them: the report did not read the primary
            monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "primary.duckdb"))
            monkeypatch.delenv("LEADLEDGER_REPORTS_DB")
            assert total(build_app(db_url=primary_url)) == 8  # the primary has them
            monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "replica.duckdb"))
        finally:
            conn.execute(text("SELECT pg_wal_replay_resume()"))
    standby.dispose()
    _caught_up(replica_pair.primary, replica_pair.standby)
    assert total(reader) == 8
    for app in (writer, reader):
        app.db.dispose()
    assert reader.reports_db is not None
    reader.reports_db.dispose()
