"""`leadledger import` as a script runs it: JSON summary, exit codes, one-sentence errors, and a SIGKILL halfway
that leaves no half-written lead and can be run again to completion.

The commands run in-process (`clikit`: what they print and their exit codes are what a shell sees), except
the import that is killed (a real process, sent SIGKILL).
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clikit import Completed, run_in_process

from leadledger.bootstrap import build_app
from leadledger.domain.clock import FixedClock
from leadledger.importers import import_file
from leadledger.importers.service import BATCH_LEADS

EXE = shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"
HISTORY_HEADER = [
    "Id",
    "IsDeleted",
    "LeadId",
    "CreatedById",
    "CreatedDate",
    "Field",
    "DataType",
    "OldValue",
    "NewValue",
]
STEPS = ("Open - Not Contacted", "Working - Contacted", "Closed - Not Converted", "Closed - Converted")


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path):
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    env = {"LEADLEDGER_DB": f"sqlite:///{db}", "COLUMNS": "200"}

    def run(*args: str, ok: bool | None = True) -> Completed:
        done = run_in_process(args, env=env, cwd=tmp_path)
        if ok is True:
            assert done.returncode == 0, done.stderr + done.stdout
        elif ok is False:
            assert done.returncode != 0, done.stdout
        assert "Traceback" not in done.stderr
        return done

    run.db = db  # type: ignore[attr-defined]
    run.env = {**os.environ, **env}  # type: ignore[attr-defined]  # for a real process
    return run


def leads_file(folder: Path) -> Path:
    path = folder / "leads.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["id", "email", "created", "status"])
        writer.writerow(["L1", "a@x.io", "2025-01-01T00:00:00Z", "new"])
        writer.writerow(["L2", "b@x.io", "not a date", "new"])
        writer.writerow(["L3", "", "2025-01-02T00:00:00Z", "working"])
    return path


MAPPING = "columns: {id: id, email: email, created_at: created, status: status}\n"


def test_an_import_prints_a_json_summary_and_exits_0_when_rows_are_rejected(cli, tmp_path):
    (tmp_path / "map.yaml").write_text(MAPPING)
    done = cli("import", "leads", str(leads_file(tmp_path)), "--map", "map.yaml", "--format", "json")
    summary = json.loads(done.stdout)
    assert {k: summary[k] for k in ("read", "imported", "rejected", "off_model")} == {
        "read": 3, "imported": 2, "rejected": 1, "off_model": 0,
    }  # fmt: skip
    assert summary["rejects_file"] == str(tmp_path / "leads.rejects.csv")
    rejected = (tmp_path / "leads.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rejected[1].startswith("3,created_at,cannot read 'not a date' as a time")
    table = cli("import", "leads", str(leads_file(tmp_path)), "--map", "map.yaml", "--rejects", "bad.csv")
    assert "skipped (already recorded, or no change) │ 2" in table.stdout
    assert (tmp_path / "bad.csv").exists()
    runs = json.loads(cli("import", "runs", "--format", "json").stdout)
    assert [(r["status"], r["summary"]["imported"]) for r in runs] == [("done", 0), ("done", 2)]


def test_strict_exits_1_and_writes_nothing(cli, tmp_path):
    (tmp_path / "map.yaml").write_text(MAPPING)
    leads_file(tmp_path)
    done = cli("import", "leads", "leads.csv", "--map", "map.yaml", "--strict", "--format", "json", ok=False)
    assert done.returncode == 1 and json.loads(done.stdout)["ok"] is False
    listed = json.loads(cli("lead", "list", "--format", "json").stdout)
    assert listed == {"leads": [], "next_cursor": None}


def test_a_file_that_cannot_be_imported_is_one_sentence_and_exit_1(cli, tmp_path):
    missing = cli("import", "leads", "nope.csv", "--map", "nope.yaml", ok=False)
    assert "nope.yaml: cannot read the mapping file" in missing.stderr
    (tmp_path / "map.yaml").write_text("columns:\n  id: Lead Id\n")
    leads_file(tmp_path)
    wrong = cli("import", "leads", "leads.csv", "--map", "map.yaml", ok=False)
    assert (
        "map.yaml:2: columns.id: leads.csv has no column 'Lead Id' (its columns: id, email, created, status)"
        in wrong.stderr
    )
    assert cli("import", "history", "leads.csv", "--preset", "hubspot", ok=False).returncode == 1


def salesforce_history(path: Path, leads: int) -> int:
    """A LeadHistory export of `leads` leads, four rows each, in no useful order."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(leads):
        created = start + timedelta(minutes=n)
        lead = f"00Q{n:015d}"
        rows.append([f"017{n:012d}c", "false", lead, "005A", _sf(created), "created", "Text", "", ""])
        for step in range(1, 4):
            at = created + timedelta(days=step)
            rows.append([f"017{n:012d}{step}", "false", lead, "005A", _sf(at), "Status", "Picklist", STEPS[step - 1],
                         STEPS[step]])  # fmt: skip
    random.Random(7).shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HISTORY_HEADER)
        writer.writerows(rows)
    return len(rows)


def _sf(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def per_lead(db: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Each lead's entries (at, kind, status, stage) in timeline order, read straight from the file."""
    conn = sqlite3.connect(db)
    found: dict[str, list[tuple[str, str, str, str]]] = {}
    for lead, at, kind, status, stage in conn.execute(
        "SELECT lead_id, at, kind, to_status, to_stage FROM ledger ORDER BY lead_id, at, seq"
    ):
        found.setdefault(lead, []).append((at, kind, status, stage))
    mismatched = conn.execute(
        "SELECT count(*) FROM leads l JOIN ledger e ON e.lead_id = l.id AND e.seq = l.version "
        "WHERE e.to_status != l.status OR e.to_stage != l.stage"
    ).fetchone()[0]
    conn.close()
    assert mismatched == 0
    return found


@pytest.mark.slow
def test_a_killed_import_leaves_no_half_written_lead_and_can_be_run_again_to_completion(cli, tmp_path, sqlite_template):
    total_leads = 3 * BATCH_LEADS  # three batches: the kill lands between two of them
    history = tmp_path / "LeadHistory.csv"
    salesforce_history(history, total_leads)
    reference_db = tmp_path / "reference.db"
    shutil.copy(sqlite_template, reference_db)
    reference_app = build_app(db_url=f"sqlite:///{reference_db}", clock=FixedClock(datetime.now(UTC)))
    import_file(reference_app, kind="history", path=history, actor="admin", preset="salesforce",
                rejects_path=tmp_path / "ref.rejects.csv")  # fmt: skip
    reference_app.db.dispose()
    expected = per_lead(reference_db)
    assert len(expected) == total_leads

    process = subprocess.Popen([EXE, "import", "history", str(history), "--preset", "salesforce"], env=cli.env,
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    written = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{cli.db}?mode=ro", uri=True, timeout=1) as peek:
                written = peek.execute("SELECT count(*) FROM leads").fetchone()[0]
        except sqlite3.OperationalError:
            written = 0
        if written:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert 0 < written < total_leads, "the import should be killed between two batches"

    partial = per_lead(cli.db)
    assert 0 < len(partial) < total_leads
    assert all(partial[lead] == expected[lead] for lead in partial)  # every lead there is whole

    again = json.loads(cli("import", "history", str(history), "--preset", "salesforce", "--format", "json").stdout)
    assert again["leads_created"] == total_leads - len(partial)
    assert per_lead(cli.db) == expected
    runs = json.loads(cli("import", "runs", "--format", "json").stdout)
    assert [r["status"] for r in runs] == ["done", "interrupted"]
