"""The analytics store's first sync from PostgreSQL: DuckDB's postgres scanner when installed, batches otherwise."""

from __future__ import annotations

import time

import duckdb
import pytest

from leadledger import analytics
from leadledger.analytics.store.scanner import postgres_scanner_available
from leadledger.bootstrap import build_app
from leadledger.services import demo


@pytest.mark.postgres
def test_first_sync_uses_the_scanner_when_installed_and_batches_after(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    app = build_app(db_url=pg_url)
    demo.generate(app, leads=60, seed=4, workers=1)
    probe = duckdb.connect()
    started = time.monotonic()
    installed = postgres_scanner_available(probe)  # never downloads: answers at once on a machine without it
    assert time.monotonic() - started < 5
    probe.close()
    first = analytics.sync(app)
    assert first.method == ("postgres scanner" if installed else "batches") and first.ledger_rows > 60
    demo_lead = analytics.report(app, "distribution")["total"]
    assert demo_lead == 60
    demo.generate(app, leads=5, seed=9, workers=1)
    again = analytics.sync(app)
    assert again.method == "batches" and again.ledger_rows > 0  # incremental: always batches


@pytest.mark.postgres
def test_the_scanner_can_be_switched_off(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    monkeypatch.setenv("LEADLEDGER_DUCKDB_SCANNER", "0")
    app = build_app(db_url=pg_url)
    demo.generate(app, leads=20, seed=4, workers=1)
    assert analytics.sync(app).method == "batches"
