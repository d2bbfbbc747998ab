"""`leadledger segment ...` as a marketer's script uses it: list, show, export (CSV/JSON, a file), changes."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadledger.cli.main import app
from leadledger.cli.state import State


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path):
    """A database with 300 demo leads (in-process: Typer's runner), shared by the tests of this module."""
    root = tmp_path_factory.mktemp("segment-cli")
    db = root / "cli.db"
    shutil.copy(sqlite_template, db)
    runner = CliRunner()
    patch = pytest.MonkeyPatch()
    patch.delenv("LEADLEDGER_ANALYTICS_DB", raising=False)

    def run(*args: str, ok: bool = True) -> str:
        State._app = None
        result = runner.invoke(app, ["--db", f"sqlite:///{db}", *args], env={"COLUMNS": "200"})
        assert (result.exit_code == 0) == ok, result.output
        return result.stdout

    run("demo", "--leads", "300", "--seed", "5")
    run.root = root  # type: ignore[attr-defined]
    yield run
    if State._app is not None:
        State._app.db.dispose()
    State._app = None
    patch.undo()


def test_list_show_and_export_agree(cli):
    listed = {s["key"]: s["members"] for s in json.loads(cli("segment", "list", "--format", "json"))["segments"]}
    assert listed["suppress"] > 0 and listed["nurture_not_now"] > 0
    shown = json.loads(cli("segment", "show", "nurture_not_now", "--format", "json"))
    assert shown["members"] == listed["nurture_not_now"] == sum(g["members"] for g in shown["by_reason"])
    rows = list(csv.DictReader(io.StringIO(cli("segment", "export", "nurture_not_now"))))
    assert len(rows) == listed["nurture_not_now"]
    assert {r["segment"] for r in rows} == {"nurture_not_now"} and {r["status"] for r in rows} <= {
        "nurture",
        "recycled",
    }
    as_json = json.loads(cli("segment", "export", "nurture_not_now", "--format", "json"))
    assert [r["id"] for r in as_json] == [r["id"] for r in rows]
    suppressed = {r["id"] for r in csv.DictReader(io.StringIO(cli("segment", "export", "suppress")))}
    assert not suppressed & {r["id"] for r in rows}


def test_export_to_a_file_as_of_a_past_time_and_changes(cli):
    target = cli.root / "audience.csv"
    printed = cli("segment", "export", "suppress", "--as-of", "2026-10-01T00:00:00Z", "--output", str(target))
    assert "wrote" in printed and target.read_text().startswith("id,email,name")
    changes = json.loads(cli("segment", "changes", "suppress", "--since", "2026-10-01", "--format", "json"))
    then = {r["id"] for r in csv.DictReader(target.open())}
    now = {r["id"] for r in csv.DictReader(io.StringIO(cli("segment", "export", "suppress")))}
    assert {r["id"] for r in changes["entered"]} == now - then
    assert {r["id"] for r in changes["left"]} == then - now


def test_errors_are_one_sentence(cli):
    cli("segment", "show", "nope", ok=False)
    cli("segment", "export", "suppress", "--as-of", "yesterday", ok=False)
