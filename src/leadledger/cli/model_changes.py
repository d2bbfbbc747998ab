"""Command-line adapter for model versions: `model diff`, and the diff `model apply` shows before it applies.

`leadledger.cli.main` calls `register(model_app)`.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from leadledger.cli.output import console, print_json
from leadledger.cli.state import State
from leadledger.model.diff import ModelDiff, diff_markdown
from leadledger.services import model_changes
from leadledger.services.app import App


class DiffFormat(StrEnum):
    table = "table"
    json = "json"
    md = "md"


def version_ref(app: App, text: str) -> int | model_changes.Version:
    """A stored version id (`3`), `active`, or the path of a model file."""
    if text.isdigit():
        return int(text)
    if text == "active":
        return model_changes.version_ids(app)[-1] if model_changes.version_ids(app) else 0
    path = Path(text)
    return model_changes.proposed_version(path.read_text(encoding="utf-8"), str(path))


def show_diff(diff: ModelDiff, fmt: DiffFormat) -> None:
    if fmt is DiffFormat.json:
        print_json(diff.as_dict())
        return
    if fmt is DiffFormat.md:
        sys.stdout.write(diff_markdown(diff))
        return
    if diff.empty:
        console.print(f"no differences between {diff.old_label} and {diff.new_label}", markup=False)
        return
    table = Table(title=f"{diff.old_label} → {diff.new_label}", header_style="bold")
    for column in ("section", "key", "change", "what changed"):
        table.add_column(column)
    colours = {"added": "green", "removed": "red", "changed": "yellow"}
    for c in diff.changes:
        table.add_row(escape(c.section), escape(c.key), f"[{colours[c.change]}]{c.change}[/]", escape(c.describe()))
    console.print(table)


def register(model_app: typer.Typer) -> None:
    @model_app.command("diff")
    def model_diff(
        old: Annotated[
            Optional[str],
            typer.Argument(help="version id, `active`, or a model file (default: the version before NEW)"),
        ] = None,
        new: Annotated[
            Optional[str], typer.Argument(help="version id, `active`, or a model file (default: active)")
        ] = None,
        fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="table, json or md")] = DiffFormat.table,
    ) -> None:
        """What changed between two model versions: statuses, reasons, fields, transitions, roles, rules, SLAs,
        calendars... With one argument: that version or file against the active model."""
        app = State.app()
        if old is not None and new is None:
            first = version_ref(app, old)
            if isinstance(first, model_changes.Version):
                result = model_changes.diff(app, None, first)  # active -> the file
            else:
                result = model_changes.diff(app, first, None)  # that version -> active
        else:
            result = model_changes.diff(
                app,
                version_ref(app, old) if old is not None else None,
                version_ref(app, new) if new is not None else None,
            )
        show_diff(result, fmt)


def show_proposed_diff(app: App, text: str, file: str) -> None:
    """Before `model apply`: what the file changes against the active model (on stderr, so stdout stays the result)."""
    from leadledger.cli.output import err_console

    result = model_changes.diff(app, None, model_changes.proposed_version(text, file))
    if result.empty:
        err_console.print("the file changes nothing in the active model", markup=False)
        return
    counts = ", ".join(
        f"{section}: " + " ".join(f"{n} {kind}" for kind, n in kinds.items() if n)
        for section, kinds in result.summary().items()
    )
    err_console.print(f"changes against the active model - {counts}", markup=False, highlight=False)
    for c in result.changes:
        detail = c.describe()
        err_console.print(f"  {c.change:8} {c.section}: {c.key}" + (f" ({detail})" if detail else ""), markup=False)


def what_if_command(app: App, text: str, file: str, start: str | None, end: str | None, fmt: Any) -> None:
    """`model apply FILE --backtest`: the what-if report; nothing is applied or written."""
    from datetime import UTC, datetime

    from leadledger.cli.output import Format, emit, fail, progress

    def day(option: str, value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)")
            raise
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    with progress("replaying", None):
        report = model_changes.what_if(app, text, file=file, start=day("--from", start), end=day("--to", end))
    if fmt is Format.json:
        print_json(report)
        return
    show_diff(model_changes.diff(app, None, model_changes.proposed_version(text, file)), DiffFormat.table)
    replay = report["replay"]
    from leadledger.cli.model_migrations import show_migrations, show_moves

    moving = report["migrations"]
    show_migrations(moving["migrations"], fmt)
    if moving["migrations"] or moving["moves"]:
        show_moves(moving["moves"], fmt, title=f"leads the migrations would move ({moving['leads_to_move']}), "
                   f"stuck ({moving['leads_stuck']})")  # fmt: skip
    emit(report["refused"], ["from", "to", "why", "changes", "samples"], fmt,
         title=f"recorded changes the proposed model would refuse ({report['refused_changes']})")  # fmt: skip
    rows = []
    for rule in sorted(set(replay["rules"]) | set(replay["actual_rules"])):
        proposed, actual = replay["rules"].get(rule, {}), replay["actual_rules"].get(rule, {})
        rows.append(
            {
                "rule": rule,
                **{k: f"{proposed.get(k, 0)} ({actual.get(k, 0)})" for k in ("moved", "alerted", "escalated", "tasks")},
            }
        )
    emit(rows, ["rule", "moved", "alerted", "escalated", "tasks"], fmt,
         title=f"rules over {replay['leads']} leads, {replay['period']['from']} to {replay['period']['to']}: proposed (actual)")  # fmt: skip
    emit(replay["distribution"], ["status", "actual", "backtest", "difference"], fmt, title="status at the end")
    console.print("nothing was applied or written (what-if)", markup=False)
