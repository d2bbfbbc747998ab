"""Backup while the server writes, restore into an empty database: consistent, complete, every report equal."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from leadledger import analytics
from leadledger.bootstrap import build_app
from leadledger.ops import backup as ops_backup
from leadledger.services import demo, people
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, Applied, ChangeSpec
from leadledger.services.errors import Invalid
from leadledger.services.writer import ChangeJob, ChangeWriter, CreateJob
from leadledger.store.tables import activities, leads, ledger


def _empty_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A URL to a database with nothing in it (not even `leadledger init`)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'restored-{uuid.uuid4().hex[:6]}.db'}"
    server: str = request.getfixturevalue("pg_server")
    name = f"ll_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()

    def drop() -> None:
        engine = create_engine(server, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    request.addfinalizer(drop)
    return f"{server.rpartition('/')[0]}/{name}"


def assert_consistent(app: App) -> int:
    """Every lead's projection is its last ledger entry and its entries are 1..version; returns the entry count."""
    with app.db.read() as conn:
        last = (
            select(ledger.c.lead_id, func.max(ledger.c.seq).label("top"), func.count().label("n"))
            .group_by(ledger.c.lead_id)
            .subquery()
        )
        rows = conn.execute(
            select(leads.c.id, leads.c.version, leads.c.status, leads.c.stage, leads.c.owner, last.c.top, last.c.n,
                   ledger.c.to_status, ledger.c.to_stage, ledger.c.to_owner)
            .join(last, last.c.lead_id == leads.c.id)
            .join(ledger, (ledger.c.lead_id == leads.c.id) & (ledger.c.seq == last.c.top))
        ).all()  # fmt: skip
        lead_count = conn.execute(select(func.count()).select_from(leads)).scalar_one()
        orphans = conn.execute(
            select(func.count()).select_from(activities).where(~activities.c.lead_id.in_(select(leads.c.id)))
        ).scalar_one()
    assert len(rows) == lead_count and orphans == 0
    for row in rows:
        assert row.version == row.top == row.n, row
        assert (row.status, row.stage, row.owner) == (row.to_status, row.to_stage, row.to_owner), row
    return sum(row.n for row in rows)


def _ledger_ids(app: App) -> set[int]:
    with app.db.read() as conn:
        return set(conn.execute(select(ledger.c.id)).scalars())


class Load:
    """Two clients of one change writer (what `leadledger serve` runs), creating and working leads until stopped."""

    def __init__(self, app: App):
        self.writer = ChangeWriter(app)
        self.stop = threading.Event()
        self.applied = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                n = next(self._counter)
                created = self.writer.apply(CreateJob("ana", {"name": f"Load {n}", "email": f"load{n}@example.com"},
                                                      owner="ana"))  # fmt: skip
                assert isinstance(created.outcome, Applied), created.outcome
                spec = ChangeSpec(created.outcome.lead_id, status="attempting_contact",
                                  log=ActivityIn("call_logged", data={"outcome": "no_answer"}))  # fmt: skip
                changed = self.writer.apply(ChangeJob("ana", spec))
                assert isinstance(changed.outcome, Applied), changed.outcome
                with self._lock:
                    self.applied += 2
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)

    def wait_for(self, count: int, timeout: float = 60) -> None:
        done = threading.Event()
        start = self.applied
        while self.applied < start + count and not self.errors:
            if done.wait(0.01) or timeout <= 0:
                break
            timeout -= 0.01
        assert not self.errors, self.errors
        assert self.applied >= start + count, "the load stalled"

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        self.writer.close()
        assert not self.errors, self.errors


@pytest.fixture
def busy_app(app: App) -> App:
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    demo.generate(app, leads=150, seed=5, workers=1)
    return app


@pytest.mark.parametrize("restore_into", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_backup_under_write_load_is_a_consistent_snapshot_and_restores(busy_app: App, tmp_path, request, restore_into,
                                                                        clock):  # fmt: skip
    app = busy_app
    file = tmp_path / "under-load.bak"
    seen_during: list[set[int]] = []

    def progress(table: str, rows: int) -> None:  # PostgreSQL only: the copy is under way, its snapshot taken
        if not seen_during:
            load.wait_for(4)  # changes committed after the snapshot: they must not be in the file
            seen_during.append(_ledger_ids(app))

    with Load(app) as load:
        load.wait_for(10)
        before = _ledger_ids(app)
        summary = ops_backup.backup(app, file, progress=progress)
        load.wait_for(6)
    after = _ledger_ids(app)
    assert load.applied >= 20
    assert summary.tables["ledger"] >= len(before)

    restored = build_app(db_url=_empty_database(request, restore_into, tmp_path), clock=clock)
    result = ops_backup.restore(restored, file)
    assert result.tables == summary.tables
    entries = assert_consistent(restored)
    restored_ids = _ledger_ids(restored)
    assert before <= restored_ids <= after and entries == len(restored_ids) == summary.tables["ledger"]
    if seen_during:  # the snapshot: nothing committed after it is in the file
        assert not app.db.is_sqlite
        assert restored_ids < seen_during[0]
    # the restored database takes new writes (sequences continue after the restored ids)
    writer = ChangeWriter(restored)
    try:
        done = writer.apply(CreateJob("ana", {"name": "After", "email": "after@example.com"}))
    finally:
        writer.close()
    assert isinstance(done.outcome, Applied)
    assert max(_ledger_ids(restored)) > max(restored_ids)
    restored.db.dispose()


@pytest.mark.parametrize("restore_into", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_report_of_a_restored_database_equals_the_original(busy_app: App, tmp_path, request, restore_into,
                                                                  clock, monkeypatch):  # fmt: skip
    file = tmp_path / "quiet.bak"
    ops_backup.backup(busy_app, file)
    restored = build_app(db_url=_empty_database(request, restore_into, tmp_path), clock=clock)
    ops_backup.restore(restored, file)
    if restored.db.is_sqlite:  # it holds password hashes and webhook secrets, as the original did
        assert Path(restored.db.engine.url.database or "").stat().st_mode & 0o777 == 0o600
    names = list(analytics.REPORT_NAMES)
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "original.duckdb"))
    original = analytics.run_reports(busy_app, names, skip_unavailable=True)
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "restored.duckdb"))
    again = analytics.run_reports(restored, names, skip_unavailable=True)
    assert again == original
    assert original["funnel"]["steps"] and original["durations"]["statuses"]
    restored.db.dispose()


def test_restore_refuses_a_database_that_is_not_empty_and_writes_nothing(busy_app: App, tmp_path, sqlite_url):
    file = tmp_path / "x.bak"
    ops_backup.backup(busy_app, file)
    target = build_app(db_url=sqlite_url)  # initialised by the fixture: it has tables
    with pytest.raises(Invalid, match="restore needs an empty database"):
        ops_backup.restore(target, file)
    with pytest.raises(Invalid, match="exists"):
        ops_backup.backup(busy_app, file)


def test_a_file_that_is_not_a_backup_is_refused_by_name(tmp_path, busy_app: App):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    empty = build_app(db_url=f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(Invalid, match="is not a LeadLedger backup"):
        ops_backup.restore(empty, bogus)
    target = tmp_path / "new.db"  # building the app made an empty database file (0600): nothing went into it
    assert not target.exists() or not sqlite3.connect(target).execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
