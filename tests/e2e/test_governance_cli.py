"""Governance commands in-process (Typer's runner): model diff, reviews, samples, the council pack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadledger.cli.main import State
from leadledger.cli.main import app as cli_app
from leadledger.model.loader import default_model_text
from leadledger.services.app import App


@pytest.fixture
def run(app: App) -> Iterator:
    """Invoke `leadledger ARGS` against the test's app (its database and its fixed clock)."""
    runner = CliRunner()
    State._app = app

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli_app, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
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
