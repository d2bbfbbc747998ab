"""`leadledger report NAME` as a script uses it: exit codes, JSON and CSV on stdout, bars in the table.

The commands run in-process (`clikit`): what they print and their exit codes are what a shell sees.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from clikit import Completed, run_in_process

from leadledger.analytics import REPORT_NAMES


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path):
    """A database with 300 demo leads, shared by the tests of this module (they only read it)."""
    root = tmp_path_factory.mktemp("report-cli")
    db = root / "cli.db"
    shutil.copy(sqlite_template, db)
    env = {"LEADLEDGER_DB": f"sqlite:///{db}", "COLUMNS": "200", "LEADLEDGER_ANALYTICS_DB": None}

    def run(*args: str, ok: bool = True) -> Completed:
        done = run_in_process(args, env=env, cwd=root)
        assert (done.returncode == 0) == ok, done.stderr + done.stdout
        assert "Traceback" not in done.stderr
        return done

    run("demo", "--leads", "300", "--seed", "4")
    run.root = root  # type: ignore[attr-defined]
    return run


def test_every_report_prints_json_the_api_returns(cli):
    everything = json.loads(cli("report", "all", "--format", "json").stdout)
    assert list(everything) == list(REPORT_NAMES)
    for name, data in everything.items():
        assert data["report"] == name and data["as_of"]
    assert everything["overrides"] == json.loads(cli("report", "overrides", "--format", "json").stdout) | {
        "as_of": everything["overrides"]["as_of"]
    }
    funnel = json.loads(cli("report", "funnel", "--format", "json").stdout)
    first = funnel["steps"][0]
    assert (first["from"], first["to"]) == ("new", "attempting_contact")
    assert first["entered"] == 300 and 0 < first["reached"] <= 300
    distribution = json.loads(cli("report", "distribution", "--format", "json").stdout)
    assert sum(distribution["counts"].values()) == 300
    assert (cli.root / "cli.analytics.duckdb").exists()  # the store lives next to the SQLite file


def test_as_of_and_period_options(cli):
    earlier = json.loads(cli("report", "distribution", "--as-of", "2026-09-01T00:00:00Z", "--format", "json").stdout)
    now = json.loads(cli("report", "distribution", "--format", "json").stdout)
    assert earlier["total"] < now["total"]
    period = json.loads(
        cli("report", "funnel", "--from", "2026-10-01", "--to", "2026-10-31", "--format", "json").stdout
    )
    assert period["from"] == "2026-10-01" and period["to"] == "2026-10-31"
    assert period["steps"][0]["entered"] < 300
    grouped = json.loads(cli("report", "durations", "--by", "team", "--format", "json").stdout)
    assert {g["group"] for g in grouped["groups"]} >= {"sdr-east", "sdr-emea"}
    extra = json.loads(cli("report", "funnel", "--pair", "connected:working", "--format", "json").stdout)
    assert extra["steps"][-1]["from"] == "connected" and extra["steps"][-1]["to"] == "working"


def test_table_draws_bars_and_csv_has_a_header(cli):
    table = cli("report", "funnel").stdout
    assert "new → attempting_contact" in table and "█" in table
    rows = list(csv.reader(io.StringIO(cli("report", "sources", "--format", "csv").stdout)))
    assert rows[0][:3] == ["source", "leads", "assigned"]
    assert sum(int(r[1]) for r in rows[1:]) == 300
    grouped = list(csv.reader(io.StringIO(cli("report", "funnel", "--by", "source", "--format", "csv").stdout)))
    assert grouped[0] == ["group", "from", "to", "entered", "reached", "rate"]
    tables = cli("report", "all").stdout  # every report's table renders
    for name in REPORT_NAMES:
        assert f"{name} as of" in tables


def test_errors_are_one_sentence_and_exit_1(cli):
    unknown = cli("report", "nonsense", ok=False)
    assert unknown.returncode == 1 and "unknown report" in unknown.stderr
    bad_time = cli("report", "funnel", "--as-of", "yesterday", ok=False)
    assert "ISO 8601" in bad_time.stderr
    bad_by = cli("report", "funnel", "--by", "colour", ok=False)
    assert "--by" in bad_by.stderr
    bad_pair = cli("report", "funnel", "--pair", "qualified", ok=False)
    assert "FROM:TO" in bad_pair.stderr
    assert "point in time" in cli("report", "distribution", "--from", "2026-10-01", ok=False).stderr


def test_sla_refuses_until_the_records_are_built_then_reads_them(cli):
    # demo history is written in bulk: no SLA records until they are rebuilt
    refused = cli("report", "sla", ok=False)
    assert "sla rebuild" in refused.stderr and "of the 300 leads" in refused.stderr
    reps = json.loads(cli("report", "reps", "--format", "json").stdout)
    assert "sla rebuild" in reps["sla_breaches"] and all("sla_breaches" not in r for r in reps["reps"])
    built = json.loads(cli("sla", "rebuild", "--format", "json").stdout)
    assert built["leads"] == 300 and built["clocks"] > 300  # every lead starts New, with a first-contact clock
    data = json.loads(cli("report", "sla", "--format", "json").stdout)
    outcomes = ("met", "breached", "open", "cancelled")
    assert sum(row[k] for row in data["slas"] for k in outcomes) == built["clocks"]
    assert sum(row[k] for row in data["reps"] for k in outcomes) == built["clocks"]
    breached = sum(row["breached"] for row in data["slas"])
    assert built["breached"] <= breached <= built["breached"] + built["open"]  # clocks may come due since
    first_contact = next(row for row in data["slas"] if row["sla"] == "first_contact")
    assert first_contact["met"] + first_contact["breached"] > 0 and 0 <= first_contact["compliance"] <= 1
    reps = json.loads(cli("report", "reps", "--format", "json").stdout)
    assert sum(r["sla_breaches"] for r in reps["reps"]) == sum(row["breached"] for row in data["reps"] if row["responsible"])


def test_sync_reports_what_it_copied(tmp_path, sqlite_template):
    db = tmp_path / "sync.db"
    shutil.copy(sqlite_template, db)
    env = {"LEADLEDGER_DB": f"sqlite:///{db}", "COLUMNS": "200", "LEADLEDGER_ANALYTICS_DB": None}

    def run(*args: str) -> str:
        done = run_in_process(args, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    lead = run("lead", "add", "--email", "s@example.com", "--name", "Sam").splitlines()[-1]
    first = run("report", "sync")
    assert "sync.analytics.duckdb: 1 ledger rows, 0 activities, 1 leads derived" in first
    run("lead", "status", lead, "attempting_contact", "--log", "email_sent")
    second = run("report", "sync")
    assert ": 1 ledger rows, 1 activities, 1 leads derived" in second
    assert ": 0 ledger rows, 0 activities, 0 leads derived" in run("report", "sync")
