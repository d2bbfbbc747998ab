"""The `leadledger` command line: a stable contract other tools script against.

Commands build a request, call a service function and print the result; they hold no rules of their own.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from leadledger.cli.accounts import register as register_accounts
from leadledger.cli.api import register as register_api
from leadledger.cli.automation import register as register_automation
from leadledger.cli.council import council_app
from leadledger.cli.imports import import_app
from leadledger.cli.leads import lead_app
from leadledger.cli.model import init, model_app
from leadledger.cli.ops import register as register_ops
from leadledger.cli.output import Format, console, emit, fail, show
from leadledger.cli.people import team_app, user_app
from leadledger.cli.quality import register as register_quality
from leadledger.cli.reports import report_app
from leadledger.cli.review import review_app
from leadledger.cli.segments import register as register_segments
from leadledger.cli.state import FormatOpt, State
from leadledger.cli.timecmds import register as register_time
from leadledger.config import keep_new_files_private
from leadledger.model.source import ModelError
from leadledger.services.errors import ServiceError, as_service_error


class _Commands(TyperGroup):
    """The root command group: every error a command can expect becomes one sentence on stderr and exit 1.

    Here rather than around `app()` so that Typer's in-process test runner sees exactly what a user sees.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (ServiceError, ModelError) as exc:
            fail(str(exc))
        except FileNotFoundError as exc:
            fail(f"no such file: {exc.filename}")
        except Exception as exc:
            translated = as_service_error(exc)  # a database the command cannot reach or store into
            if translated is None:
                raise
            fail(str(translated))


app = typer.Typer(
    cls=_Commands,
    help="LeadLedger: lead status management with a status model as code and an append-only ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(model_app, name="model")
app.add_typer(user_app, name="user")
app.add_typer(team_app, name="team")
app.add_typer(lead_app, name="lead")
app.add_typer(report_app, name="report")
app.add_typer(import_app, name="import")
app.add_typer(review_app, name="review")
app.add_typer(council_app, name="council")
register_automation(app)
register_api(app)  # serve, token, hook, demo-logins
register_time(app)
register_segments(app)
register_quality(app)
register_accounts(app)
register_ops(app)  # backup, restore, export, verify, partitions
app.command()(init)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"leadledger {version('leadledger')}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(
    db: Annotated[
        Optional[str], typer.Option("--db", help="database URL (default: $LEADLEDGER_DB or sqlite:///leadledger.db)")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    keep_new_files_private()
    if State._app is None or db != State.db:  # an app already built for this database (in-process runs) stays
        State.reset(db)


@app.command()
def pipeline(fmt: FormatOpt = Format.table) -> None:
    """Leads per status and stage right now, with bars."""
    from leadledger.services.pipeline import pipeline_counts

    counts = pipeline_counts(State.app())
    if fmt is not Format.table:
        emit(counts["rows"], ["status", "label", "total", *counts["stages"]], fmt, json_value=counts)
        return
    from rich.table import Table

    table = Table(title=f"pipeline ({counts['total']} leads)", header_style="bold")
    table.add_column("status")
    for stage in counts["stages"]:
        table.add_column(stage, justify="right")
    table.add_column("total", justify="right")
    table.add_column("")
    biggest = max((r["total"] for r in counts["rows"]), default=0) or 1
    for row in counts["rows"]:
        bar = "█" * max(0, round(30 * row["total"] / biggest))
        table.add_row(
            row["label"], *[str(row[s] or "") for s in counts["stages"]], str(row["total"]), f"[cyan]{bar}[/]"
        )
    show(table)


@app.command()
def demo(
    leads: Annotated[int, typer.Option("--leads", help="how many leads")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="random seed: the same seed gives the same data")] = 7,
    days: Annotated[int, typer.Option("--days", help="spread lead creation over this many days before now")] = 180,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="do nothing when the database already has leads")
    ] = False,
) -> None:
    """Write realistic demo data: reps, teams, sources and lead histories drawn from the seeds' rates and durations."""
    from leadledger.cli.output import progress
    from leadledger.services.demo import generate

    with progress("demo leads", leads) as advance:
        summary = generate(State.app(), leads=leads, seed=seed, days=days, progress=advance, if_empty=if_empty)
    if summary["skipped"]:
        console.print("demo: the database already has leads; nothing added", markup=False)
        return
    console.print(
        f"demo: {summary['leads']} leads, {summary['entries']} ledger entries, "
        f"{summary['activities']} activities in {summary['seconds']:.1f} s",
        markup=False,
    )


def main() -> None:
    """Entry point: run the app; known errors are one sentence (see `_Commands`), others never a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        translated = as_service_error(exc)
        if translated is not None:
            fail(str(translated))
        fail(f"unexpected {exc.__class__.__name__}: {exc}", 2)
