"""Automation through the command line: events from a file and stdin, replays, approvals and overrides.

The commands run in-process (`clikit`): what they print and their exit codes are what a shell sees.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clikit import Completed, run_in_process


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path):
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    env = {"LEADLEDGER_DB": f"sqlite:///{db}", "COLUMNS": "200"}

    def run(*args: str, code: int = 0, stdin: str | None = None) -> Completed:
        done = run_in_process(args, env=env, cwd=tmp_path, stdin=stdin)
        assert done.returncode == code, done.stderr + done.stdout
        assert "Traceback" not in done.stderr
        return done

    run("init")
    run("user", "add", "maria", "--role", "manager")
    run("team", "add", "sdr-east", "--calendar", "default", "--manager", "maria")
    run("user", "add", "ana", "--role", "rep", "--team", "sdr-east")
    return run


def at(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def test_events_from_a_file_and_stdin_are_applied_once(cli, tmp_path):
    lead = cli("lead", "add", "--email", "kim@example.com", "--name", "Kim").stdout.splitlines()[-1]
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(
            [
                json.dumps({"id": "e1", "type": "email_sent", "lead": lead, "at": at(30)}),
                "this is not json",
                json.dumps(
                    {
                        "id": "e2",
                        "type": "email_replied",
                        "lead": lead,
                        "at": at(20),
                        "data": {"classification": "positive"},
                    }
                ),
            ]
        )
        + "\n"
    )
    first = json.loads(cli("event", "apply", str(events), "--format", "json").stdout)
    assert (first["applied"], first["rejected"], first["duplicates"]) == (2, 1, 0)
    assert first["errors"][0]["line"] == 2
    again = json.loads(cli("event", "apply", "-", "--format", "json", stdin=events.read_text()).stdout)
    assert (again["applied"], again["duplicates"], again["status_changes"]) == (0, 2, 0)
    shown = json.loads(cli("lead", "show", lead, "--format", "json").stdout)
    assert [e["to_status"] for e in shown["entries"]] == ["new", "assigned", "attempting_contact", "connected"]


def test_an_override_of_an_automated_change_is_logged_and_reported(cli):
    lead = cli("lead", "add", "--email", "ooo@example.com", "--name", "Ooo").stdout.splitlines()[-1]
    lines = [
        json.dumps({"id": "a1", "type": "email_sent", "lead": lead, "at": at(30)}),
        json.dumps(
            {"id": "a2", "type": "email_replied", "lead": lead, "at": at(20), "data": {"classification": "neutral"}}
        ),
    ]
    cli("event", "apply", "-", stdin="\n".join(lines))
    out = cli(
        "lead",
        "status",
        lead,
        "attempting_contact",
        "--log",
        "email_sent",
        "--note",
        "it was an auto-reply",
        "--actor",
        "ana",
        "--format",
        "json",
    )
    assert json.loads(out.stdout)["override_of_seq"] == 4
    shown = json.loads(cli("lead", "show", lead, "--format", "json").stdout)
    assert shown["entries"][-1]["override_rule"] == "email_reply_connects"


def test_a_high_value_disqualification_waits_for_approval_through_the_cli(cli):
    lead = cli("lead", "add", "--email", "big@example.com", "--name", "Big", "--set", "estimated_value=120000").stdout
    lead = lead.splitlines()[-1]
    cli("lead", "status", lead, "attempting_contact", "--log", "email_sent", "--actor", "ana")
    pending = cli(
        "lead", "status", lead, "disqualified", "--reason", "budget", "--actor", "ana", "--format", "json", code=3
    )
    approval = json.loads(pending.stdout)["pending_approval"]
    listed = json.loads(cli("approval", "list", "--format", "json").stdout)
    assert [a["id"] for a in listed] == [approval]
    cli("approval", "approve", str(approval), "--actor", "ana", code=1)  # a rep cannot approve
    cli("approval", "approve", str(approval), "--actor", "maria", "--note", "confirmed")
    shown = json.loads(cli("lead", "show", lead, "--format", "json").stdout)
    assert shown["lead"]["status"] == "disqualified"
    assert shown["entries"][-1]["data"]["approved_by"] == "maria"
    assert json.loads(cli("approval", "list", "--format", "json").stdout) == []


def test_tasks_and_inbox_show_what_automation_created(cli):
    lead = cli("lead", "add", "--email", "t@example.com", "--name", "Tia").stdout.splitlines()[-1]
    tasks = json.loads(cli("task", "list", "--assignee", "ana", "--format", "json").stdout)
    assert [t["lead_id"] for t in tasks] == [lead]
    refused = cli("task", "done", str(tasks[0]["id"]), "--actor", "ana", code=1)  # done by moving the lead on
    assert "attempting_contact" in refused.stderr and "--no-change" in refused.stderr
    cli("task", "done", str(tasks[0]["id"]), "--no-change", "already on a call with them", "--actor", "ana")
    assert json.loads(cli("task", "list", "--assignee", "ana", "--format", "json").stdout) == []
    (done,) = json.loads(cli("task", "list", "--assignee", "ana", "--status", "all", "--format", "json").stdout)
    assert done["note"] == "no change: already on a call with them"


def test_sweep_from_the_command_line_is_idempotent_and_lists_sla_clocks(cli):
    lead = cli("lead", "add", "--email", "slow@example.com", "--name", "Slow").stdout.splitlines()[-1]
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    first = json.loads(cli("sweep", "--now", later, "--format", "json").stdout)
    assert first["fired"] >= 1 and first["rules"]["new_unrouted_24h"] == 1 and first["sla_breaches"] == 1
    again = json.loads(cli("sweep", "--now", later, "--format", "json").stdout)
    assert (again["fired"], again["sla_breaches"]) == (0, 0)
    clocks = json.loads(cli("sla", "--format", "json").stdout)
    assert [(c["lead_id"], c["sla"], c["status"]) for c in clocks] == [(lead, "first_contact", "breached")]
