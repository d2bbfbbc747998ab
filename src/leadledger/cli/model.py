"""`init` and the `model` commands: create the database, lint, read, guide, apply and list the status model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from leadledger.cli.model_changes import register as register_model_changes
from leadledger.cli.model_migrations import register as register_model_migrations
from leadledger.cli.output import Format, console, emit, err_console, fail
from leadledger.cli.state import (
    ActorOpt,
    FormatOpt,
    State,
    actor_or_default,
)
from leadledger.services import models as model_service

model_app = typer.Typer(
    help="The status model: lint it, read it, generate the status guide, replace it.", no_args_is_help=True
)
register_model_changes(model_app)  # model diff
register_model_migrations(model_app)  # model migrations, model migrate


def init(
    model: Annotated[
        Optional[Path], typer.Option("--model", help="a status model YAML file (default: the built-in model)")
    ] = None,
) -> None:
    """Create or upgrade the database and store the status model."""
    text = model.read_text(encoding="utf-8") if model else None
    result = model_service.initialise(
        State.app(initialised=False), model_text=text, model_file=str(model) if model else "default_model.yaml"
    )
    console.print(f"database ready: {result['database']}", markup=False)
    if result["model"]:
        console.print(
            f"status model {result['model']['name']} v{result['model']['version']} stored (version id {result['model']['id']})",
            markup=False,
        )


def _load_model_arg(file: Path | None) -> Any:
    """FILE when given; else the database's active model, or the built-in one when there is no database yet."""
    from leadledger.model.loader import default_model_text, load_file, load_text

    if file is not None:
        return load_file(file)
    if not State.has_database():
        return load_text(default_model_text(), "default_model.yaml (built in: no database yet)")
    return State.app().loaded_model()


@model_app.command("lint")
def model_lint(
    file: Annotated[Optional[Path], typer.Argument(help="a model file; default: the database's active model")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Check a model: the five tests of every status, 8-12 primary statuses, reasons, reachability, dead ends.

    With a database, a FILE's `migrations:` are also linted against every stored version (a status removed with
    no migration, a migrated key reused, chains across versions), as `model apply` will."""
    from leadledger.model.lint import lint

    loaded = _load_model_arg(file)
    if not State.has_database():
        findings = lint(loaded)
    elif file is None:  # the active model: its migrations were linted against the versions before it when stored
        findings = lint(loaded, model_service.lint_environment(State.app()))
    else:  # also what only the database knows: webhook endpoints, booking links, the stored model versions
        from leadledger.services.status_migrations import lint_with_history

        findings = lint_with_history(State.app(), loaded)
    errors = sum(1 for f in findings if f.level == "error")
    if fmt is Format.table:
        for f in findings:
            colour = "red" if f.level == "error" else "yellow"
            where = f"{loaded.file}:{f.line}" if f.line else loaded.file
            err_console.print(f"[{colour}]{f.level}[/] {where}: [{f.check}] {f.subject}: {f.message}", highlight=False)
        summary = f"{loaded.file}: {errors} errors, {len(findings) - errors} warnings"
        console.print(summary if findings else f"{loaded.file}: clean", markup=False)
    else:
        emit(
            [f.as_dict() for f in findings],
            ["level", "check", "subject", "message", "line"],
            fmt,
            json_value={
                "file": loaded.file,
                "errors": errors,
                "warnings": len(findings) - errors,
                "findings": [f.as_dict() for f in findings],
            },
        )
    raise SystemExit(1 if errors else 0)


@model_app.command("guide")
def model_guide(
    file: Annotated[Optional[Path], typer.Argument(help="a model file; default: the active model")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or html")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to a file instead of stdout")] = None,
) -> None:
    """The status guide (seed 000): what each status means, when to use it, required data, automation, next steps."""
    from leadledger.model.guide import guide_html, guide_markdown

    if fmt not in ("md", "html"):
        fail("--format must be md or html")
    loaded = _load_model_arg(file)
    text = guide_html(loaded.model) if fmt == "html" else guide_markdown(loaded.model)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text)


@model_app.command("show")
def model_show(
    file: Annotated[Optional[Path], typer.Argument(help="a model file; default: the active model")] = None,
    fmt: FormatOpt = Format.table,
    yaml_text: Annotated[bool, typer.Option("--yaml", help="print the model file itself")] = False,
) -> None:
    """The statuses of the model, their stages, owners and ways out."""
    loaded = _load_model_arg(file)
    if yaml_text:
        sys.stdout.write(loaded.text)
        return
    model = loaded.model
    rows = []
    for status in model.statuses.values():
        rows.append(
            {
                "status": status.key,
                "label": status.label,
                "parent": status.parent,
                "category": status.category,
                "owner": status.owner_role,
                "stages": ", ".join(sorted(status.stages, key=model.stage_rank)),
                "next": ", ".join(model.allowed_targets(status.key)),
                "locked": status.locked,
            }
        )
    emit(
        rows,
        ["status", "label", "parent", "category", "owner", "stages", "next", "locked"],
        fmt,
        title=f"status model {model.name} v{model.version}",
    )


@model_app.command("apply")
def model_apply(
    file: Path,
    actor: ActorOpt = None,
    backtest: Annotated[
        bool, typer.Option("--backtest", help="what-if: replay --from/--to under FILE and report; apply nothing")
    ] = False,
    start: Annotated[Optional[str], typer.Option("--from", help="with --backtest: first day (YYYY-MM-DD)")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="with --backtest: until this day (default: now)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the migrations and the leads they would move; store nothing")
    ] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Replace the active model with FILE (ops only); it must lint without errors. Old versions are kept.

    What the file changes (`model diff`) is shown first, then its migrations and the leads they move (leads in
    a renamed, merged or split status move by appended migration entries). With --dry-run nothing is stored or
    moved. With --backtest nothing is applied: the period is replayed under FILE and the report says what would
    have been refused, which rules would have fired and how the status distribution would differ."""
    from leadledger.cli.model_changes import show_proposed_diff, what_if_command
    from leadledger.cli.model_migrations import apply_command

    text = file.read_text(encoding="utf-8")
    if backtest:
        what_if_command(State.app(), text, str(file), start, end, fmt)
        return
    show_proposed_diff(State.app(), text, str(file))
    apply_command(State.app(), text, str(file), actor_or_default(actor), dry_run=dry_run, fmt=fmt)


@model_app.command("history")
def model_history(fmt: FormatOpt = Format.table) -> None:
    """Every stored version of the model."""
    rows = model_service.model_history(State.app())
    emit(rows, ["id", "name", "version", "digest", "created_at", "created_by"], fmt)
