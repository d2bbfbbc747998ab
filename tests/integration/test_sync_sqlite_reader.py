"""The analytics store's big reads from SQLite go through a child process (ADBC, Arrow): the same rows as the
batches, typed the same, in a process of its own, and a failed child leaves the store as it was."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from leadledger import analytics
from leadledger.analytics.store import source as source_module
from leadledger.analytics.store.connection import ACTIVITY_COLUMNS, LEDGER_COLUMNS
from leadledger.analytics.store.source import Source
from leadledger.bootstrap import build_app
from leadledger.services import demo
from leadledger.services import leads as svc

TABLES = ("ledger_m", "act_m", "leads_m", "stints", "inst", "fvals", "first_touch", "lead_facts")

HOSTILE = {
    "name": 'Zoë "the, quoted" O\'Neil\nsecond line',
    "email": "zoe@example.com",
    "company": 'Ünïcode, Ltd; "x"\t\\N-like \\ back\\slash',
    "estimated_value": 0.30000000000000004,
}


def _store(path: Path) -> list[tuple[str, list[tuple[object, ...]]]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return [(t, conn.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()) for t in TABLES]
    finally:
        conn.close()


def _synced(app, path: Path, monkeypatch, *, child: bool):
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(path))
    monkeypatch.setattr(source_module, "CHILD_MIN_ROWS", 1 if child else 10**12)
    return analytics.sync(app)


@pytest.fixture
def app(sqlite_url, clock):
    """SQLite only: the child process reads SQLite files (PostgreSQL has COPY and its scanner)."""
    application = build_app(db_url=sqlite_url, clock=clock)
    yield application
    application.db.dispose()


def test_the_child_reads_exactly_what_the_batches_read(app, tmp_path, clock, monkeypatch):
    demo.generate(app, leads=150, seed=5, workers=1)
    svc.create_lead(app, actor="admin", fields=HOSTILE)
    by_child = _synced(app, tmp_path / "child.duckdb", monkeypatch, child=True)
    by_batches = _synced(app, tmp_path / "batches.duckdb", monkeypatch, child=False)
    assert by_child.method == "sqlite reader" and by_batches.method == "batches"
    assert by_child.ledger_rows == by_batches.ledger_rows > 150
    assert by_child.activity_rows == by_batches.activity_rows > 0
    assert _store(tmp_path / "child.duckdb") == _store(tmp_path / "batches.duckdb")
    # the child's SQLite (ADBC links its own) never entered this process: two copies would break each
    # other's file locks
    assert "adbc_driver_sqlite" not in sys.modules and "adbc_driver_manager" not in sys.modules

    clock.advance(timedelta(hours=2))  # an incremental sync either way gives the same store again
    demo.generate(app, leads=20, seed=8, workers=1)
    assert _synced(app, tmp_path / "child.duckdb", monkeypatch, child=True).method == "sqlite reader"
    assert _synced(app, tmp_path / "batches.duckdb", monkeypatch, child=False).method == "batches"
    assert _store(tmp_path / "child.duckdb") == _store(tmp_path / "batches.duckdb")
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "child.duckdb"))
    assert analytics.report(app, "distribution")["total"] == 171


def test_an_empty_range_comes_back_typed(app, tmp_path, monkeypatch):
    monkeypatch.setattr(source_module, "CHILD_MIN_ROWS", 1)
    duck = duckdb.connect()
    with app.db.engine.connect() as conn, Source(conn, tmp_path, duck) as source:
        ledger = source.rows_between("ledger", LEDGER_COLUMNS, 10**9, 10**9 + 5)
        acts = source.rows_between("activities", ACTIVITY_COLUMNS, 0, 10)
        assert source.children == 2
        kinds = duck.execute(f"DESCRIBE SELECT * FROM {ledger}").fetchall()
        assert [(k[0], k[1]) for k in kinds] == [(c[0], c[1]) for c in LEDGER_COLUMNS]
        assert duck.execute(f"SELECT count(*) FROM {ledger}").fetchall() == [(0,)]
        assert duck.execute(f"SELECT count(*) FROM {acts}").fetchall() == [(0,)]


def test_a_failed_child_names_the_table_and_leaves_the_store_as_it_was(app, tmp_path, clock, monkeypatch):
    demo.generate(app, leads=30, seed=5, workers=1)
    _synced(app, tmp_path / "store.duckdb", monkeypatch, child=False)
    before = _store(tmp_path / "store.duckdb")
    clock.advance(timedelta(hours=1))
    demo.generate(app, leads=10, seed=6, workers=1)
    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.stderr.write('no reader here')\nsys.exit(3)\n")
    monkeypatch.setattr(source_module, "_READER", broken)
    with pytest.raises(RuntimeError, match=r"reading ledger from .* failed: no reader here"):
        _synced(app, tmp_path / "store.duckdb", monkeypatch, child=True)
    assert _store(tmp_path / "store.duckdb") == before
    monkeypatch.undo()
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    assert analytics.sync(app).ledger_rows > 10  # the next sync copies what the failed one did not
    assert analytics.report(app, "distribution")["total"] == 40
