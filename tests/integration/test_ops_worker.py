"""The worker's heartbeat and its log lines: what readiness and log collectors rely on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from leadledger.services import worker
from leadledger.services.app import App
from leadledger.store.heartbeats import WorkerTotals, heartbeats


def _exe() -> str:
    return shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"


def test_worker_once_logs_one_json_line_per_round_and_beats(sqlite_url: str):
    env = {**os.environ, "LEADLEDGER_DB": sqlite_url, "LEADLEDGER_LOG": "json"}
    done = subprocess.run([_exe(), "worker", "--once", "--no-deliver"], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing but JSON lines, and those on standard error
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    rounds = [line for line in lines if line["msg"] == "worker round"]
    assert len(rounds) == 1
    line = rounds[0]
    assert line["level"] == "INFO" and line["logger"] == "leadledger.worker" and line["job"] == "worker_round"
    assert line["round"] == 1 and line["fired"] == 0 and len(line["sweep_id"]) == 32
    assert line["worker"].endswith(f":{line['worker'].rsplit(':', 1)[1]}") and "ts" in line
    from leadledger.bootstrap import build_app

    app = build_app(db_url=sqlite_url)
    with app.db.read() as conn:
        (row,) = heartbeats(conn)
    assert row.worker == line["worker"] and row.rounds == 1 and row.sweeps == 1 and row.last_error is None


def test_a_failing_round_is_recorded_in_the_heartbeat_and_the_worker_carries_on(app: App, monkeypatch):
    calls = []

    def flaky(app_: App):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return {"fired": 2, "moved": 1, "sweep_id": "x"}

    monkeypatch.setattr(worker, "sweep_once", flaky)
    stop = threading.Event()
    totals = WorkerTotals(worker="test-host:1")
    seen: list[dict] = []

    def report(result: dict) -> None:
        seen.append(result)
        with app.db.read() as conn:
            (row,) = heartbeats(conn)
        if len(seen) == 1:
            assert row.last_error == "RuntimeError: database went away" and row.sweeps == 0
        else:
            assert row.last_error is None and row.sweeps == 1 and row.fired_total == 2 and row.moved_total == 1
            stop.set()

    worker.run(app, interval=0, deliver=False, stop=stop, report=report, totals=totals)
    assert len(seen) == 2 and seen[0]["error"] == "RuntimeError: database went away"


def test_worker_once_fails_loudly_when_its_round_fails(app: App, monkeypatch):
    monkeypatch.setattr(worker, "sweep_once", lambda app_: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        worker.run(app, once=True, deliver=False)
