"""Governance commands in-process (Typer's runner): model diff, reviews, samples, the council pack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadledger.cli.main import app as cli_app
from leadledger.cli.state import State
from leadledger.model.loader import default_model_text
from leadledger.services.app import App
from leadledger.services.errors import ServiceError


@pytest.fixture
def run(app: App) -> Iterator:
    """Invoke `leadledger ARGS` against the test's app (its database and its fixed clock)."""
    runner = CliRunner()
    State.reset(None)  # another in-process test may have left its --db behind
    State._app = app

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli_app, list(args), catch_exceptions=not ok)
        assert (result.exit_code == 0) == ok, result.output
        if not ok and result.exception is not None:  # `leadledger` (cli.main.main) prints it as one sentence
            assert isinstance(result.exception, (ServiceError, SystemExit)), result.exception
        return result

    yield invoke
    State._app = None


def test_model_diff_and_apply_show_what_a_file_changes(run, tmp_path: Path) -> None:
    file = tmp_path / "v2.yaml"
    file.write_text(default_model_text().replace('version: "1"', 'version: "2"', 1).replace(
        "label: Connected / Engaged", "label: Engaged", 1), encoding="utf-8")  # fmt: skip
    proposed = json.loads(run("model", "diff", str(file), "--format", "json").stdout)
    assert [(c["section"], c["key"]) for c in proposed["changes"]] == [("model", "version"), ("statuses", "connected")]
    applied = run("model", "apply", str(file))
    assert "changed  statuses: connected (label: Connected / Engaged → Engaged)" in applied.output
    stored = run("model", "diff", "--format", "md").stdout
    assert stored.startswith("# Status model changes: version 1 (default v1) → version 2 (default v2)")
    assert "**changed** `connected`: label: Connected / Engaged → Engaged" in stored
    assert "no differences" in run("model", "diff", "2", str(file)).stdout


def test_review_a_change_then_spot_check_the_month(run, app: App, monkeypatch, tmp_path: Path) -> None:
    from leadledger.services import leads as svc
    from leadledger.services import people
    from leadledger.services.leads import ActivityIn, ChangeSpec

    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    lead = svc.create_lead(app, actor="admin", fields={"name": "Jo", "email": "jo@example.com"}, owner="ana").lead_id
    svc.change_lead(app, actor="ana", spec=ChangeSpec(lead, status="attempting_contact", log=ActivityIn("email_sent")))
    listed = json.loads(run("review", "transitions", "--actor", "maria", "--format", "json").stdout)
    (change,) = [c for c in listed["changes"] if c["actor"] == "ana"]
    assert (change["from_status"], change["to_status"], change["rep"]) == ("assigned", "attempting_contact", "ana")
    rows = run("review", "transitions", "--actor", "maria", "--rep", "ana", "--format", "csv").stdout.splitlines()
    assert rows[0].startswith("entry,at,lead,rep,team,actor") and len(rows) == 2
    assert ",assigned,attempting_contact," in rows[1]
    run("review", "mark", str(change["entry"]), "wrong_usage", "--actor", "maria", ok=False)  # no note
    marked = run("review", "mark", str(change["entry"]), "wrong-usage", "--note", "log the call", "--actor", "maria")
    assert "wrong_usage; ana was notified" in marked.stdout
    inbox = run("inbox", "list", "ana", "--format", "json").stdout
    assert "Status guide - Attempting Contact" in inbox
    month = app.clock.now().strftime("%Y-%m")
    sample = json.loads(run("review", "sample", "--month", month, "--actor", "maria", "--format", "json").stdout)
    assert [i["entry_id"] for i in sample["items"]] == [change["entry"]]
    assert sample["items"][0]["verdict"]["verdict"] == "wrong_usage"
    reps = json.loads(run("report", "reps", "--format", "json").stdout)["reps"]
    ana = next(r for r in reps if r["owner"] == "ana")["status_accuracy"]
    assert (ana["sampled_reviewed"], ana["status_accuracy"]) == (1, 0.0)
    csv_rows = run("report", "reps", "--format", "csv").stdout.splitlines()
    assert csv_rows[0].endswith(",status_accuracy") and any(
        r.startswith("ana,") and r.endswith(",0.0") for r in csv_rows
    )
    assert "spot-check status accuracy" in run("report", "governance").stdout
    samples = run("review", "samples", "--actor", "maria", "--format", "csv").stdout
    assert samples.splitlines()[1].split(",")[1] == month


def test_a_renamed_status_linted_dry_run_applied_and_migrated(run, app: App, tmp_path: Path) -> None:
    from model_edits import default, dump, rename, with_migrations

    from leadledger.services import leads as svc
    from leadledger.services.leads import ActivityIn, ChangeSpec

    lead = svc.create_lead(app, actor="admin", fields={"name": "Jo", "email": "jo@example.com"}, owner="admin")
    svc.change_lead(app, actor="admin", spec=ChangeSpec(lead.lead_id, status="attempting_contact",
                                                        log=ActivityIn("email_sent")))  # fmt: skip
    renamed = rename(default(), "attempting_contact", "contacting")
    forgotten = tmp_path / "forgotten.yaml"
    forgotten.write_text(dump(with_migrations(renamed, {})), encoding="utf-8")
    linted = json.loads(run("model", "lint", str(forgotten), "--format", "json").stdout)  # against version 1
    assert [f["check"] for f in linted["findings"] if f["subject"] == "attempting_contact"] == ["migration_missing"]
    refused = run("model", "apply", str(forgotten), ok=False)
    assert "would strand leads nothing can move: 1 in attempting_contact" in refused.output + str(refused.exception)
    file = tmp_path / "v2.yaml"
    file.write_text(dump(with_migrations(renamed, {"attempting_contact": "contacting"})), encoding="utf-8")
    assert [f["check"] for f in json.loads(run("model", "lint", str(file), "--format", "json").stdout)["findings"]
            if f["subject"] == "attempting_contact"] == []  # fmt: skip
    dry = run("model", "apply", str(file), "--dry-run")
    assert "leads to move (1), stuck (0)" in dry.output and "dry run: nothing was stored or moved" in dry.output
    assert svc.get_lead(app, lead.lead_id)["status"] == "attempting_contact"
    applied = run("model", "apply", str(file))
    assert "moved 1 leads by migration entries (model version 2)" in applied.output
    shown = json.loads(run("model", "migrations", "--format", "json").stdout)
    assert [(m["from"], m["to"], m["kind"]) for m in shown["migrations"]] == [
        ("attempting_contact", "contacting", "rename")
    ]
    assert shown["moves"] == []
    assert "moved 0 leads" in run("model", "migrate").output


def test_a_file_lints_against_a_database_not_yet_initialised(tmp_path: Path) -> None:
    file = tmp_path / "m.yaml"
    file.write_text(default_model_text(), encoding="utf-8")
    State.reset(None)
    try:
        result = CliRunner().invoke(cli_app, ["--db", f"sqlite:///{tmp_path / 'empty.db'}", "model", "lint", str(file)])
    finally:
        State.reset(None)
    assert result.exit_code == 0, result.output
    assert result.output.split()[-1] == "clean"  # (a long path wraps the line)
    assert not (tmp_path / "empty.db").exists()  # asking whether there is a database creates none
