"""A newcomer's first ten minutes with the command line, run in-process with Typer's test runner.

Before `init` every command says how to start and creates nothing; filters name what is valid; lists say
when there is more; labels work where keys do; a refusal says where the lead can go; tables keep ids whole.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from leadledger.cli.main import app as cli_app
from leadledger.cli.state import State

Run = Callable[..., Result]


def runner_for(url: str) -> Run:
    runner = CliRunner()

    def run(*args: str, code: int = 0, stdin: str | None = None) -> Result:
        result = runner.invoke(cli_app, ["--db", url, *args], input=stdin)
        State.reset(None)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code == code, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    return run


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path) -> Run:
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    run = runner_for(f"sqlite:///{db}")
    run("user", "add", "maria", "--role", "manager")
    run("team", "add", "sdr-east", "--calendar", "default", "--manager", "maria")
    run("user", "add", "ana", "--role", "rep", "--team", "sdr-east")
    return run


def add(cli: Run, n: int, **options: str) -> str:
    extra = [part for key, value in options.items() for part in (f"--{key}", value)]
    return cli("lead", "add", "--email", f"lead{n}@example.com", "--name", f"Lead {n}", *extra).stdout.splitlines()[-1]


# --- before init ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["lead", "list"], ["lead", "add", "--email", "a@b.io"], ["sweep"], ["report", "funnel"], ["user", "list"],
     ["serve"], ["pipeline"]],
)  # fmt: skip
def test_every_command_before_init_says_to_run_init_and_creates_nothing(tmp_path, command):
    db = tmp_path / "nothing-here.db"
    result = runner_for(f"sqlite:///{db}")(*command, code=1)
    assert result.stderr.startswith(f"error: no LeadLedger database at sqlite:///{db}")
    assert "run `leadledger init`" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no database file, no analytics store, nothing


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_not_mistaken_for_one(request, tmp_path, pg_server):
    from sqlalchemy import create_engine, text

    name = f"ll_empty_{tmp_path.name[-8:].lower()}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = pg_server.rpartition("/")[0] + f"/{name}"
        result = runner_for(url)("lead", "list", code=1)
        assert "no LeadLedger database at postgresql+psycopg://" in result.stderr and "leadledger init" in result.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_model_can_be_linted_and_read_without_a_database(tmp_path):
    run = runner_for(f"sqlite:///{tmp_path / 'none.db'}")
    assert "clean" in run("model", "lint").stdout
    assert run("model", "guide").stdout.startswith("# Status guide")
    assert "attempting_contact" in run("model", "show").stdout
    assert json.loads(run("model", "lint", "--format", "json").stdout)["errors"] == 0
    assert list(tmp_path.iterdir()) == []


def test_version_and_help_for_every_command():
    result = CliRunner().invoke(cli_app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("leadledger 0.")
    missing = []

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        if not getattr(command, "commands", None) and not (command.help or "").strip():
            missing.append(" ".join(path))

    walk(typer.main.get_command(cli_app), [])
    assert missing == []


# --- lead list -------------------------------------------------------------------------------------------


def test_lead_list_pages_with_a_cursor_and_says_when_there_is_more(cli):
    ids = [add(cli, n) for n in range(3)]
    first = cli("lead", "list", "--limit", "2")
    assert ids[0] in first.stdout and ids[1] in first.stdout and ids[2] not in first.stdout
    assert f"--after {ids[1]}" in first.stderr
    page = json.loads(cli("lead", "list", "--limit", "2", "--format", "json").stdout)
    assert [lead["id"] for lead in page["leads"]] == ids[:2] and page["next_cursor"] == ids[1]
    last = json.loads(cli("lead", "list", "--limit", "2", "--after", page["next_cursor"], "--format", "json").stdout)
    assert [lead["id"] for lead in last["leads"]] == ids[2:] and last["next_cursor"] is None
    assert "--after" not in cli("lead", "list", "--limit", "3").stderr


def test_lead_list_filters_name_what_is_valid(cli):
    add(cli, 1)
    unknown = cli("lead", "list", "--status", "atempting", code=1)
    assert "did you mean attempting_contact?" in unknown.stderr and "new, assigned, attempting_contact" in unknown.stderr
    assert "opportunity" in cli("lead", "list", "--stage", "opp", code=1).stderr
    owner = cli("lead", "list", "--owner", "anna", code=1)
    assert "unknown user 'anna'" in owner.stderr and "ana" in owner.stderr and "maria" in owner.stderr


def test_repeated_status_means_any_of_them_and_labels_work_as_keys(cli):
    first, second, third = add(cli, 1), add(cli, 2), add(cli, 3)
    cli("lead", "status", second, "Attempting Contact", "--log", "email_sent", "--actor", "ana")
    cli("lead", "status", third, "nurture", "--reason", "not_ready", "--set", "re_evaluate_on=2030-01-01", "--actor", "ana")

    def listed(*args: str) -> list[str]:
        return [lead["id"] for lead in json.loads(cli("lead", "list", *args, "--format", "json").stdout)["leads"]]

    assert listed("--status", "attempting_contact", "--status", "nurture") == [second, third]
    assert listed("--status", "Attempting Contact") == [second]
    assert listed("--status", "new") == [first]  # with its sub-status Assigned


# --- changes ---------------------------------------------------------------------------------------------


def test_lead_add_says_where_automation_left_the_lead(cli):
    created = cli("lead", "add", "--email", "jo@example.com", "--name", "Jo")
    assert "created lead as new -> assigned in stage lead, owner ana" in created.stdout
    data = json.loads(cli("lead", "add", "--email", "kim@example.com", "--name", "Kim", "--format", "json").stdout)
    assert (data["created_as"], data["status"], data["owner"]) == ("new", "assigned", "ana")


def test_an_unknown_status_suggests_the_closest_and_a_refusal_lists_where_the_lead_can_go(cli):
    lead = add(cli, 1)
    unknown = cli("lead", "status", lead, "conected", "--actor", "ana", code=1)
    assert "did you mean connected" in unknown.stderr
    refused = cli("lead", "status", lead, "working", "--actor", "ana", code=1)
    assert "is not an allowed transition; from Assigned it can go to attempting_contact, connected, nurture" in (
        refused.stderr
    )


def test_event_apply_exits_1_when_every_line_was_rejected(cli):
    lead = add(cli, 1)
    bad = "not json\n" + json.dumps({"id": "e1", "type": "email_sent", "lead": "LNOSUCHLEAD"}) + "\n"
    result = cli("event", "apply", "-", stdin=bad, code=1)
    assert "every line was rejected" in result.stderr
    good = json.dumps({"id": "e2", "type": "email_sent", "lead": lead, "at": "2026-01-01T00:00:00Z"})
    mixed = cli("event", "apply", "-", "--format", "json", stdin=bad + good + "\n", code=0)
    assert json.loads(mixed.stdout)["rejected"] == 2


def test_tables_keep_ids_and_status_keys_whole(cli):
    lead = cli("lead", "add", "--email", "long@example.com", "--name", "A lead with a very long name " * 3,
               "--company", "An equally long company name for the table " * 2).stdout.splitlines()[-1]  # fmt: skip
    cli("lead", "status", lead, "attempting_contact", "--log", "email_sent", "--actor", "ana")
    table = cli("lead", "list").stdout
    assert lead in table and "attempting_contact" in table and "…" not in table


def test_a_fresh_database_url_needs_init_then_works(tmp_path):
    run = runner_for(f"sqlite:///{tmp_path / 'new' / 'leads.db'}")
    run("lead", "list", code=1)
    assert not (tmp_path / "new").exists()
    assert "database ready" in run("init").stdout
    assert json.loads(run("lead", "list", "--format", "json").stdout) == {"leads": [], "next_cursor": None}



def test_model_lint_on_a_database_warns_about_endpoints_and_booking_links(cli):
    findings = json.loads(cli("model", "lint", "--format", "json").stdout)["findings"]
    checks = {(f["check"], f["subject"]) for f in findings}
    assert ("webhook_endpoint", "stop_nurture") in checks and ("booking_url", "calendar_link") in checks
    cli("endpoint", "add", "marketing", "https://hooks.example.com/m", "--secret", "s3cret-s3cret-s3cret")
    cli("user", "set", "ana", "--booking-url", "https://cal.example.com/ana")
    findings = json.loads(cli("model", "lint", "--format", "json").stdout)["findings"]
    checks = {(f["check"], f["subject"]) for f in findings}
    assert ("webhook_endpoint", "stop_nurture") not in checks and ("booking_url", "calendar_link") not in checks
    assert "not an http(s) link" in cli("user", "set", "ana", "--booking-url", "cal.example.com", code=1).stderr
