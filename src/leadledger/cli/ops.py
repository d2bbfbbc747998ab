"""Command-line adapter for operations: backup, restore, export, verify.

Each command calls one function of `leadledger.ops` and prints what it did; `--format json` for scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from leadledger.cli.output import console, err_console, print_json
from leadledger.services.app import App


class SummaryFormat(StrEnum):
    """What these commands print is a summary of what they did, never rows: a table (text) or JSON."""

    table = "table"
    json = "json"


FormatOpt = Annotated[SummaryFormat, typer.Option("--format", "-f", help="table or json")]


def _app() -> App:
    from leadledger.cli.state import State

    return State.app()


@contextmanager
def _progress() -> Iterator[Callable[[str, int], None] | None]:
    """A one-line progress report on a terminal (table name and rows copied) while the block runs, nothing in a
    pipe. What backup and restore hand their copy loop."""
    if not err_console.is_terminal:
        yield None
        return
    with err_console.status("starting") as status:
        yield lambda table, rows: status.update(f"{table}: {rows:,} rows")


def backup_command(
    file: Annotated[Path, typer.Argument(help="the backup file to write (must not exist)")],
    fmt: FormatOpt = SummaryFormat.table,
) -> None:
    """Back up the whole database to FILE, consistently, while the server keeps writing.

    SQLite: the online backup API. PostgreSQL: every table read in one snapshot. The file is a SQLite
    database either way, and `leadledger restore` puts it into an empty SQLite or PostgreSQL database."""
    from leadledger.ops.backup import backup

    with _progress() as report:
        summary = backup(_app(), file, progress=report)
    if fmt is SummaryFormat.json:
        print_json(summary.as_dict())
        return
    console.print(
        f"backup {summary.file}: {sum(summary.tables.values()):,} rows in {len(summary.tables)} tables "
        f"(ledger {summary.tables.get('ledger', 0):,}), schema {summary.revision}, from {summary.source}",
        markup=False,
    )


def restore_command(
    file: Annotated[Path, typer.Argument(help="a file made by `leadledger backup`")],
    fmt: FormatOpt = SummaryFormat.table,
) -> None:
    """Restore a backup into an empty database (LEADLEDGER_DB or --db: SQLite or PostgreSQL), then upgrade it."""
    from leadledger.ops.backup import restore

    with _progress() as report:
        summary = restore(_app(), file, progress=report)
    if fmt is SummaryFormat.json:
        print_json(summary.as_dict())
        return
    console.print(
        f"restored {summary.file} into {summary.target}: {sum(summary.tables.values()):,} rows in "
        f"{len(summary.tables)} tables (ledger {summary.tables.get('ledger', 0):,}); schema upgraded from "
        f"{summary.revision}",
        markup=False,
    )


class ExportKind(StrEnum):
    ledger = "ledger"
    leads = "leads"
    stints = "stints"
    activities = "activities"


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def export_command(
    kind: Annotated[ExportKind, typer.Argument(help="ledger, leads, stints or activities")],
    out: Annotated[Path, typer.Argument(help="the file to write")],
    file_format: Annotated[ExportFormat, typer.Option("--format", help="parquet or csv")] = ExportFormat.parquet,
    since: Annotated[
        Optional[str],
        typer.Option("--since", help="only what is new since this id (the last run's next_since) or ISO time"),
    ] = None,
    json_summary: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Export for a warehouse (DuckDB writes the file). Stints carry the durations report's own definitions."""
    from leadledger.ops.export import export

    summary = export(_app(), kind.value, out, fmt=file_format.value, since=since)
    if json_summary:
        print_json(summary.as_dict())
        return
    console.print(
        f"{summary.kind}: {summary.rows:,} rows to {summary.file} ({summary.format}); "
        f"next time: --since {summary.next_since}",
        markup=False,
    )


def verify_command(
    since: Annotated[
        Optional[str], typer.Option("--since", help="only the leads with entries above this ledger id or since this time")
    ] = None,
    at: Annotated[
        Optional[int], typer.Option("--at", help="take the chain digest at this ledger id (default: the last entry)")
    ] = None,
    expect: Annotated[
        Optional[str], typer.Option("--expect", help="the digest recorded earlier at --at: exit 1 if it differs now")
    ] = None,
    fmt: FormatOpt = SummaryFormat.table,
) -> None:
    """Recompute the ledger's hash chains; exit 1 naming the first entry that does not match."""
    from leadledger.ops.verify import verify

    if expect is not None and at is None:
        raise typer.BadParameter("--expect needs --at: the ledger id the digest was recorded at", param_hint="--expect")
    result = verify(_app(), since=since, at=at, expect=expect)
    if fmt is SummaryFormat.json:
        print_json(result.as_dict())
    elif result.ok:
        console.print(f"ledger verified: {result.entries:,} entries of {result.leads:,} leads, every chain intact; "
                      f"chain digest {result.digest} at ledger id {result.digest_at}", markup=False)  # fmt: skip
    else:
        first = result.first
        assert first is not None
        where = f"entry {first.entry_id} (lead {first.lead_id}, seq {first.seq})" if first.entry_id is not None \
            else f"lead {first.lead_id}" if first.lead_id else "digest"
        err_console.print(f"ledger tampered: {where}: {first.what}; "
                          f"{len(result.problems)} problem(s) in {result.entries:,} entries", markup=False,
                          highlight=False)  # fmt: skip
    if not result.ok:
        raise SystemExit(1)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command("export")(export_command)
    app.command("verify")(verify_command)
