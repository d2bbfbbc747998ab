"""Every CSV LeadLedger writes is safe to open in a spreadsheet (OWASP's CSV injection rule): a text cell
starting with =, +, -, @, a tab or a carriage return is written with a leading apostrophe, in every CSV the
command line prints and in an import's reject file, which imports back as it was."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadledger.bootstrap import build_app
from leadledger.cli import main as cli_main
from leadledger.importers import import_file
from leadledger.importers.reading import CsvFile
from leadledger.services import leads as svc
from leadledger.services import people

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
