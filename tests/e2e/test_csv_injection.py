"""Every CSV LeadLedger writes is safe to open in a spreadsheet (OWASP's CSV injection rule): a text cell
starting with =, +, -, @, a tab or a carriage return is written with a leading apostrophe, in every CSV the
command line prints and in an import's reject file, which imports back as it was."""

from __future__ import annotations

import csv
import enum
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from leadledger.bootstrap import build_app
from leadledger.cli import main as cli_main
from leadledger.domain.contacts import account_key
from leadledger.importers import import_file
from leadledger.importers.reading import CsvFile
from leadledger.model.loader import default_model_text
from leadledger.services import auth, people
from leadledger.services import leads as svc
from leadledger.services.csvcells import GUARD
from leadledger.services.leads import ActivityIn, ApprovalPending, ChangeSpec

HOSTILE = ["=HYPERLINK(\"http://x.example\",\"click\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\tTAB", "\rCR"]  # fmt: skip
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "csv.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    app = build_app(db_url=url)
    people.add_user(app, name="ana", role="rep", email="@ana")
    for n, text in enumerate(HOSTILE):
        svc.create_lead(app, actor="admin", owner="ana",
                        fields={"name": text, "company": text, "source": text, "email": f"l{n}@example.com"})  # fmt: skip
    app.db.dispose()
    monkeypatch.setattr(cli_main.State, "_app", None)
    return url


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


@pytest.mark.parametrize(
    "command",
    [
        ["lead", "list"],
        ["user", "list"],
        ["task", "list", "--assignee", "ana"],
        ["report", "sources"],
        ["report", "distribution", "--by", "source"],
        ["report", "reps"],
    ],
    ids=lambda c: " ".join(c),
)
def test_every_csv_the_command_line_prints_is_spreadsheet_safe(db: str, command: list[str]) -> None:
    result = CliRunner().invoke(cli_main.app, ["--db", db, *command, "--format", "csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = cells(result.stdout)
    assert written, result.stdout
    assert not [c for c in written if c.startswith(DANGEROUS)], result.stdout
    if command[0] == "lead" or command[-1] == "source":
        assert "'" + HOSTILE[0] in written and "'-2+3" in written  # the text is there, guarded


def test_a_reject_file_is_spreadsheet_safe_and_imports_back_as_it_was(db: str, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    with source.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "email", "status", "company"])
        writer.writerows([["x1", HOSTILE[0], "x1@example.com", "=no such status", HOSTILE[2]],
                          ["x2", "Fine", "x2@example.com", "new", "Acme"]])  # fmt: skip
    app = build_app(db_url=db)
    mapping = "columns: {id: id, name: name, email: email, status: status, company: company}"
    summary = import_file(app, kind="leads", path=source, actor="admin", mapping=mapping,
                          rejects_path=tmp_path / "rejects.csv")  # fmt: skip
    assert summary.rejected == 1
    text = (tmp_path / "rejects.csv").read_text(encoding="utf-8-sig")
    assert not [c for c in cells(text) if c.startswith(DANGEROUS)], text
    reread = CsvFile(tmp_path / "rejects.csv", encoding="utf-8-sig", delimiter=",")
    (_, values), *_ = list(reread.rows())
    reread.close()
    assert values[3:] == ["x1", HOSTILE[0], "x1@example.com", "=no such status", HOSTILE[2]]


# Every command that prints CSV, with what it needs. A new command with `--format csv` must be added here (the
# test below finds them all): a writer that forgets the guard is caught on its first run.
EVERY_CSV_COMMAND = {
    "sweep": [],
    "pipeline": [],
    "model lint": [],
    "model show": [],
    "model apply": ["{model}"],
    "model history": [],
    "model migrations": [],
    "model migrate": [],
    "user list": [],
    "team list": [],
    "lead add": ["--name", HOSTILE[0], "--company", HOSTILE[3], "--email", "new@example.com", "--owner", "ana"],
    "lead status": ["{lead2}", "attempting_contact", "--log", "email_sent", "--note", HOSTILE[1]],
    "lead stage": ["{lead2}", "mql", "--note", HOSTILE[1]],
    "lead assign": ["{lead2}", "ana", "--note", HOSTILE[1]],
    "lead update": ["{lead2}", "--set", f"title={HOSTILE[2]}", "--note", HOSTILE[1]],
    "lead list": [],
    "lead show": ["{lead}"],
    "import runs": [],
    "review transitions": ["--actor", "maria"],
    "review mark": ["{entry}", "wrong_usage", "--note", HOSTILE[3], "--actor", "maria"],
    "review sample": ["--month", "2026-11", "--actor", "maria"],
    "review samples": ["--actor", "maria"],
    "event apply": ["{events}"],
    "approval list": [],
    "approval approve": ["{approval}", "--actor", "maria", "--note", HOSTILE[1]],
    "approval deny": ["{approval2}", "--actor", "maria", "--note", HOSTILE[1]],
    "task list": [],
    "inbox list": ["maria"],
    "outbox list": [],
    "outbox deliver": [],
    "endpoint list": [],
    "token list": [],
    "hook list": [],
    "sla": ["--within", "10000"],
    "sla rebuild": [],
    "rules backtest": ["{model}"],
    "report": ["sources"],  # each report's CSV: test_every_csv_the_command_line_prints_is_spreadsheet_safe
    "segment list": [],
    "segment show": ["needs_first_response"],
    "segment export": ["needs_first_response"],
    "segment changes": ["needs_first_response", "--since", "2026-01-01"],
    "quality scan": [],
    "quality duplicates": [],
    "quality merge": ["{lead2}", "{lead3}", "--note", HOSTILE[1]],
    "quality unmerge": ["{lead3}"],
    "account refresh": [],
    "account list": [],
    "account show": ["{account}"],  # the account of the leads whose company is hostile text
    "segment sync-hooks": [],
}
# Their --format is table or json (they refuse csv); the CSV they write is the reject file, tested above. `export`
# writes a warehouse's file, whose values must load exactly as recorded (test_export): not a spreadsheet's.
NO_CSV_ON_STDOUT = {"import leads", "import history", "export"}


def _choices(param: Any) -> list[str]:
    """The values an option takes (Typer keeps the Enum it was declared with; plain Click a Choice type)."""
    declared = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(declared, type) and issubclass(declared, enum.Enum):
        return [str(member.value) for member in declared]
    return list(getattr(getattr(param, "type", None), "choices", ()))


def _commands_with_csv() -> set[str]:
    """Every command whose --format takes csv, found in the command line itself."""
    found: set[str] = set()

    def walk(command: Any, path: list[str]) -> None:
        for param in command.params:  # a group may take options too (`report NAME` is a group's callback)
            if "--format" in getattr(param, "opts", ()) and "csv" in _choices(param):
                found.add(" ".join(path))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli_main.app), [])
    return found


def test_the_list_of_csv_commands_is_complete() -> None:
    assert _commands_with_csv() - NO_CSV_ON_STDOUT == set(EVERY_CSV_COMMAND)


def test_every_command_that_prints_csv_guards_every_cell(db: str, tmp_path: Path) -> None:
    app = build_app(db_url=db)
    people.add_user(app, name="maria", role="manager", email="=maria@example.com")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ben", role="rep", team="east")

    def pending(lead: str) -> int:
        svc.change_lead(app, actor="ben", spec=ChangeSpec(lead, status="attempting_contact",
                                                          log=ActivityIn("email_sent"), note=HOSTILE[2]))  # fmt: skip
        with pytest.raises(ApprovalPending) as held:
            svc.change_lead(app, actor="ben", spec=ChangeSpec(lead, status="disqualified", reason="budget",
                                                              note=HOSTILE[3]))  # fmt: skip
        return held.value.pending.approval_id

    worth = {"name": HOSTILE[0], "company": HOSTILE[1], "estimated_value": 60000}
    lead, lead2, lead3 = (
        svc.create_lead(app, actor="admin", owner="ben", fields={**worth, "email": f"t{n}@example.com"}).lead_id
        for n in range(3)
    )
    approval, approval2 = pending(lead), pending(lead3)
    svc.create_lead(app, actor="admin", fields={"name": HOSTILE[2], "email": "nobody-yet@example.com"})  # status new
    entry = next(e["id"] for e in svc.timeline(app, lead)["entries"] if e["to_status"] == "attempting_contact")
    auth.issue_token(app, user="ana", name=HOSTILE[3])
    app.db.dispose()
    (tmp_path / "events.jsonl").write_text(json.dumps({"id": HOSTILE[0], "type": "call_logged", "lead": lead,
                                           "at": "2026-11-23T14:00:00Z", "data": {"outcome": "voicemail", "summary": HOSTILE[1]}}) + "\n")  # fmt: skip
    with (tmp_path / "leads.csv").open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([["id", "name", "email", "status", "company"],
                                   ["x1", HOSTILE[0], "x1@example.com", "=no such status", HOSTILE[2]]])  # fmt: skip
    (tmp_path / "map.yaml").write_text("columns: {id: id, name: name, email: email, status: status, company: company}")
    (tmp_path / "model.yaml").write_text(default_model_text())
    values = {"{lead}": lead, "{lead2}": lead2, "{lead3}": lead3, "{entry}": str(entry), "{approval}": str(approval),
              "{approval2}": str(approval2),
              "{events}": str(tmp_path / "events.jsonl"), "{leads_csv}": str(tmp_path / "leads.csv"),
              "{mapping}": str(tmp_path / "map.yaml"), "{rejects}": str(tmp_path / "rejects.csv"),
              "{model}": str(tmp_path / "model.yaml"),
              "{account}": account_key(worth["company"], "t0@example.com")}  # fmt: skip
    unsafe: list[str] = []
    guarded: set[str] = set()
    for command, args in EVERY_CSV_COMMAND.items():
        argv = ["--db", db, *command.split(), *(values.get(a, a) for a in args), "--format", "csv"]
        result = CliRunner().invoke(cli_main.app, argv, catch_exceptions=False)
        if result.exit_code != 0:
            unsafe.append(f"{command}: exit {result.exit_code}: {result.output[-300:]}")
            continue
        written = cells(result.stdout)
        dangerous = [c for c in written if c.startswith(DANGEROUS)]
        if dangerous:
            unsafe.append(f"{command}: {dangerous}")
        if any(c.startswith(GUARD) for c in written):
            guarded.add(command)
    assert not unsafe, "\n".join(unsafe)
    # the hostile text did reach the CSVs that show it (names, e-mails, notes, token names), guarded
    assert {"lead list", "lead show", "review transitions", "token list", "user list", "report",
            "segment export", "account list", "account show"} <= guarded  # fmt: skip
