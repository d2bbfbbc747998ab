"""Command-line adapter for status migrations: what `model apply` does about renamed, merged, split and removed
statuses (`--dry-run` lists it), `model migrations` (the map as composed across versions, and the leads still
in an old key) and `model migrate` (finish moving them).

`cli.model` calls `register(model_app)`, and `apply_command` from `model apply`.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from leadledger.cli.output import Format, console, emit, err_console, print_json
from leadledger.cli.state import State, actor_or_default
from leadledger.services import status_migrations
from leadledger.services.app import App


def _app() -> App:
    return State.app()


def show_migrations(rows: list[dict[str, Any]], fmt: Format) -> None:
    if rows:
        emit(rows, ["from", "to", "kind", "reason"], fmt, title="migrations: old key → status (history reads through them)")


def show_moves(groups: list[dict[str, Any]], fmt: Format, *, title: str) -> None:
    if not groups:
        console.print("no lead is in a status the model drops", markup=False)
        return
    rows = [{**g, "samples": ", ".join(g["samples"][:5])} for g in groups]
    emit(rows, ["from", "to", "leads", "problem", "samples"], fmt, title=title)


def show_findings(plan: dict[str, Any]) -> None:
    for finding in plan["errors"] + plan["warnings"]:
        colour = "red" if finding["level"] == "error" else "yellow"
        where = f"{plan['file']}:{finding['line']}" if finding["line"] else plan["file"]
        err_console.print(
            f"[{colour}]{finding['level']}[/] {where}: [{finding['check']}] {finding['subject']}: {finding['message']}",
            highlight=False,
        )


def apply_command(app: App, text: str, file: str, actor: str, *, dry_run: bool, fmt: Format) -> None:
    """`model apply FILE [--dry-run]`: the migrations and the leads they move are listed first; with --dry-run
    nothing is stored or moved."""
    result = status_migrations.apply_model(app, text, file, actor, dry_run=dry_run)
    plan = result["plan"]
    if fmt is Format.json:
        print_json(result)
        return
    show_findings(plan)
    show_migrations(plan["migrations"], fmt)
    show_moves(plan["moves"], fmt, title=f"leads to move ({plan['leads_to_move']}), stuck ({plan['leads_stuck']})")
    if dry_run:
        console.print("dry run: nothing was stored or moved", markup=False)
        return
    stored, migrated = result["model"], result["migrated"]
    console.print(f"model {stored['name']} v{stored['version']} is active (version id {stored['id']})", markup=False)
    _report_migrated(migrated)


def _report_migrated(migrated: dict[str, Any]) -> None:
    console.print(
        f"moved {migrated['moved']} leads by migration entries (model version {migrated['model_version']})",
        markup=False,
    )
    for item in migrated["refused"]:
        err_console.print(f"  not moved: {item['lead']} in {item['from']}: {item['why']}", markup=False)
    if migrated["refused"]:
        raise SystemExit(1)


def register(model_app: typer.Typer) -> None:
    @model_app.command("migrations")
    def model_migrations(
        fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")] = Format.table,
    ) -> None:
        """The active model's migrations and every older key that reads through them (composed across
        versions), and the leads still in a key the model dropped."""
        app = _app()
        report = status_migrations.current(app)
        if fmt is Format.json:
            print_json(report)
            return
        if not report["migrations"]:
            console.print("no status was ever renamed, merged or split", markup=False)
        show_migrations(report["migrations"], fmt)
        show_moves(report["moves"], fmt, title="leads still in an old key (`leadledger model migrate` moves them)")

    @model_app.command("migrate")
    def model_migrate(
        actor: Annotated[
            Optional[str], typer.Option("--actor", help="who moves them (ops; default: $LEADLEDGER_ACTOR or admin)")
        ] = None,
        fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json")] = Format.table,
    ) -> None:
        """Move the leads still in a key the active model dropped, by appended migration entries (ops only).
        `model apply` does this itself; run it again after an interruption or after fixing a stuck lead."""
        migrated = status_migrations.migrate(_app(), actor_or_default(actor))
        if fmt is Format.json:
            print_json(migrated)
            return
        _report_migrated(migrated)
