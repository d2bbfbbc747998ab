"""The command line as a script uses it: exit codes, stdout formats, one-sentence errors.

The commands run in-process (`clikit`: what they print and their exit codes are what a shell sees); the
one-sentence errors are also checked from a real process, where `leadledger`'s own entry point prints them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clikit import Completed, run_in_process

from leadledger.model.loader import default_model_text


def _database(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    db = tmp_path / "cli.db"
    shutil.copy(sqlite_template, db)
    return {"LEADLEDGER_DB": f"sqlite:///{db}", "COLUMNS": "200"}


def _checked(done: Completed | subprocess.CompletedProcess[str], ok: bool | None) -> None:
    if ok is True:
        assert done.returncode == 0, done.stderr + done.stdout
    elif ok is False:
        assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: Path):
    env = _database(tmp_path, sqlite_template)

    def run(*args: str, ok: bool | None = True, stdin: str | None = None) -> Completed:
        done = run_in_process(args, env=env, cwd=tmp_path, stdin=stdin)
        _checked(done, ok)
        return done

    return run


@pytest.fixture
def process_cli(tmp_path: Path, sqlite_template: Path):
    """The same, each command a real `leadledger` process."""
    env = {**os.environ, **_database(tmp_path, sqlite_template)}
    exe = shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"

    def run(*args: str, ok: bool | None = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [exe, *args], env=env, cwd=tmp_path, capture_output=True, text=True, input=stdin, timeout=120
        )
        _checked(done, ok)
        return done

    return run


def test_a_five_minute_tour_works_as_the_readme_shows(cli):
    cli("init")
    cli("user", "add", "maria", "--role", "manager")
    cli("team", "add", "east", "--calendar", "default", "--manager", "maria")
    cli("user", "add", "ana", "--role", "rep", "--team", "east")
    created = cli(
        "lead", "add", "--email", "jo@example.com", "--name", "Jo Doe", "--company", "Acme", "--source", "webinar"
    )
    lead_id = created.stdout.strip().splitlines()[-1]
    assert lead_id.startswith("L")
    cli("lead", "assign", lead_id, "ana", "--actor", "maria")
    cli("lead", "status", lead_id, "attempting_contact", "--log", "call_logged:outcome=no_answer", "--actor", "ana")
    refused = cli("lead", "status", lead_id, "disqualified", "--actor", "ana", ok=False)
    assert refused.returncode == 1 and "reason" in refused.stderr and "nothing was written" in refused.stderr
    cli("lead", "status", lead_id, "disqualified", "--reason", "budget", "--actor", "ana")
    shown = json.loads(cli("lead", "show", lead_id, "--format", "json").stdout)
    assert [e["to_status"] for e in shown["entries"]] == ["new", "assigned", "attempting_contact", "disqualified"]
    assert shown["entries"][1]["actor"] == "maria"


def test_a_refusal_lists_every_violation_as_json_and_writes_nothing(cli):
    cli("init")
    lead_id = cli("lead", "add", "--email", "a@b.io", "--name", "A").stdout.splitlines()[-1]
    out = cli("lead", "status", lead_id, "qualified", "--reason", "nope", "--format", "json", ok=False)
    payload = json.loads(out.stdout)
    assert payload["applied"] is False
    assert {v["field"] for v in payload["violations"]} >= {
        "status",
        "budget",
        "authority",
        "need",
        "timeline",
        "reason",
    }
    timeline = json.loads(cli("lead", "show", lead_id, "--format", "json").stdout)
    assert len(timeline["entries"]) == 1


@pytest.mark.parametrize("runner", ["cli", "process_cli"])
def test_bad_input_gets_one_clear_sentence(request, runner):
    cli = request.getfixturevalue(runner)
    cli("init")
    missing = cli("lead", "status", "L-nope", "working", ok=False)
    assert "no lead 'L-nope'" in missing.stderr
    bad_time = cli("lead", "add", "--email", "a@b.io", "--name", "A", "--at", "yesterday", ok=False)
    assert "--at" in bad_time.stderr
    unknown_user = cli("lead", "assign", "L-nope", "ghost", "--actor", "ghost", ok=False)
    assert "unknown user 'ghost'" in unknown_user.stderr
    bad_email = cli("lead", "add", "--email", "not-an-email", "--name", "A", ok=False)
    assert "email" in bad_email.stderr


def test_model_lint_passes_on_the_default_and_names_file_and_line_on_errors(cli, tmp_path):
    cli("init")
    fresh = cli("model", "lint")  # the default model sends webhooks to endpoints nobody registered yet: warned
    assert "0 errors, 5 warnings" in fresh.stdout and "endpoint 'crm', which is not registered" in fresh.stderr
    for endpoint in ("crm", "marketing", "sales_engagement"):
        cli("endpoint", "add", endpoint, f"https://hooks.example.com/{endpoint}", "--secret", "s3cret-value-long-enough")
    assert "clean" in cli("model", "lint").stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        default_model_text().replace("owner_role: rep\n    category: active", "owner_role: rep\n    category: busy", 1)
    )
    out = cli("model", "lint", str(broken), ok=False)
    assert out.returncode == 1 and f"{broken}:" in out.stderr and "category" in out.stderr
    no_owner = tmp_path / "no_owner.yaml"
    no_owner.write_text(
        default_model_text().replace(
            "    owner_role: ops\n    category: data_problem\n", "    category: data_problem\n", 1
        )
    )
    findings = json.loads(cli("model", "lint", str(no_owner), "--format", "json", ok=False).stdout)
    assert findings["errors"] >= 1 and any(f["check"] == "owner" and f["line"] for f in findings["findings"])


def test_model_guide_and_show(cli, tmp_path):
    cli("init")
    guide = cli("model", "guide").stdout
    assert "## Disqualified / Lost (`disqualified`)" in guide and "What happens automatically" in guide
    cli("model", "guide", "--format", "html", "--output", str(tmp_path / "guide.html"))
    assert "<h1>Status guide" in (tmp_path / "guide.html").read_text()
    shown = json.loads(cli("model", "show", "--format", "json").stdout)
    assert {row["status"] for row in shown} >= {"new", "stale_review", "duplicate"}


def test_model_apply_replaces_the_model_and_keeps_history(cli, tmp_path):
    cli("init")
    changed = tmp_path / "v2.yaml"
    changed.write_text(default_model_text().replace('version: "1"', 'version: "2"'))
    cli("user", "add", "ana", "--role", "rep")
    denied = cli("model", "apply", str(changed), "--actor", "ana", ok=False)
    assert "only ops" in denied.stderr
    cli("model", "apply", str(changed))
    history = json.loads(cli("model", "history", "--format", "json").stdout)
    assert [h["version"] for h in history] == ["1", "2"]


def test_demo_then_pipeline_and_list_in_every_format(cli):
    cli("init")
    cli("demo", "--leads", "300", "--seed", "11")
    pipeline = json.loads(cli("pipeline", "--format", "json").stdout)
    assert pipeline["total"] == 300
    listed = cli("lead", "list", "--status", "disqualified", "--limit", "5", "--format", "csv").stdout.splitlines()
    assert listed[0].startswith("id,name,email") and 1 < len(listed) <= 6
    table = cli("pipeline").stdout
    assert "Attempting Contact" in table
    again = cli("demo", "--leads", "10", "--if-empty")
    assert "nothing added" in again.stdout


def test_untrusted_lead_text_is_printed_literally(cli):
    cli("init")
    lead_id = cli("lead", "add", "--email", "x@y.io", "--name", "[bold red]Bobby[/] <script>").stdout.splitlines()[-1]
    shown = cli("lead", "show", lead_id).stdout
    assert "[bold red]Bobby[/] <script>" in shown
