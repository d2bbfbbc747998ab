"""`leadledger segment ...`: marketing audiences and suppression lists, computed from the ledger at any time."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated, Any, Optional

import typer

from leadledger.cli.output import Format, console, emit, fail, print_json, to_jsonable
from leadledger.cli.state import FormatOpt, State
from leadledger.services.csvcells import safe_cell

segment_app = typer.Typer(
    help="Marketing segments and suppression lists from lead status (seed 004), at any time.",
    no_args_is_help=True,
)
AsOfOpt = Annotated[
    Optional[str],
    typer.Option("--as-of", help="the audience as the ledger says it was then (ISO 8601; UTC if no zone)"),
]


def parse_moment(option: str, text: str | None, *, end_of_day: bool = False) -> datetime | None:
    """ISO 8601 time (UTC when no zone); a bare date is its first instant, or its last with `end_of_day`."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
            return start + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else start
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T09:00:00Z)")
        raise
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@segment_app.command("list")
def segment_list(as_of: AsOfOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Every segment of the model, suppression first, with its number of members."""
    from leadledger.marketing.segments import list_segments

    data = list_segments(State.app(), as_of=parse_moment("--as-of", as_of))
    rows = sorted(data["segments"], key=lambda s: s["kind"] != "suppression")
    emit(
        rows,
        ["key", "kind", "members", "label"],
        fmt,
        title=f"segments as of {data['as_of']:%Y-%m-%d %H:%M} UTC",
        json_value=data,
    )


@segment_app.command("show")
def segment_show(
    name: Annotated[str, typer.Argument(help="the segment's key (see `segment list`)")],
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """A segment's definition and its members: how many, per status and per reason."""
    from leadledger.marketing.segments import show_segment

    data = show_segment(State.app(), name, as_of=parse_moment("--as-of", as_of))
    if fmt is Format.json:
        print_json(data)
        return
    if fmt is Format.csv:
        emit(data["by_reason"], ["reason", "members"], fmt)
        return
    console.print(
        f"[bold]{data['label']}[/] ({data['key']}, {data['kind']}): {data['members']} leads "
        f"as of {data['as_of']:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    if data["description"]:
        console.print(data["description"], markup=False, highlight=False)
    if data["when"] is not None:
        console.print("when: " + json.dumps(data["when"]), markup=False, highlight=False)
    for group in ("include", "exclude"):
        if data[group]:
            console.print(f"{group}: {', '.join(data[group])}", markup=False)
    emit(data["by_status"], ["status", "members"], fmt, title="by status")
    emit(data["by_reason"], ["reason", "members"], fmt, title="by reason")


def write_export(rows: Iterable[Mapping[str, Any]], columns: list[str], fmt: Format, out: IO[str]) -> int:
    """CSV (spreadsheet-safe cells) or a JSON array, written row by row; returns the number of rows."""
    count = 0
    if fmt is Format.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell("" if row[c] is None else row[c]) for c in columns])
            count += 1
        return count
    out.write("[")
    for row in rows:
        out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(to_jsonable(dict(row)), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


@segment_app.command("export")
def segment_export(
    name: Annotated[str, typer.Argument(help="the segment's key")],
    as_of: AsOfOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="csv or json")] = Format.csv,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to a file instead of stdout")] = None,
) -> None:
    """The members as a marketing tool imports them: id, email, name, company, status, reason, stage, owner,
    segment. CSV cells are spreadsheet-safe (no formula injection); streamed, so any size fits."""
    from leadledger.marketing.segments import Export

    if fmt is Format.table:
        fail("--format: csv or json")
    export = Export(State.app(), name, fmt.value, as_of=parse_moment("--as-of", as_of))
    if output is None:
        sys.stdout.writelines(export)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(export)
    console.print(f"wrote {export.rows} leads of {name} to {output}", markup=False)


@segment_app.command("changes")
def segment_changes(
    name: Annotated[str, typer.Argument(help="the segment's key")],
    since: Annotated[str, typer.Option("--since", help="from this time (a bare date: its start)")],
    until: Annotated[
        Optional[str], typer.Option("--until", help="to this time (a bare date: its end); default now")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Who entered and who left the segment between two times (members then and not before, and the reverse)."""
    from leadledger.marketing.segments import EXPORT_COLUMNS, segment_changes

    start = parse_moment("--since", since)
    assert start is not None
    data = segment_changes(State.app(), name, since=start, until=parse_moment("--until", until, end_of_day=True))
    rows = [{"change": "entered", **r} for r in data["entered"]] + [{"change": "left", **r} for r in data["left"]]
    columns = ["change", *[c for c in EXPORT_COLUMNS if c != "segment"]]
    if fmt is Format.csv:
        write_export(rows, columns, fmt, sys.stdout)
        return
    emit(
        rows,
        columns,
        fmt,
        title=f"{name}: {len(data['entered'])} entered, {len(data['left'])} left between "
        f"{data['since']:%Y-%m-%d %H:%M} and {data['until']:%Y-%m-%d %H:%M} UTC",
        json_value=data,
    )


@segment_app.command("sync-hooks")
def segment_sync_hooks(
    name: Annotated[Optional[list[str]], typer.Argument(help="only these segments (default: every one with a webhook)")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Queue the on-enter/on-leave webhook messages of segments with a webhook, once (the worker does it every
    round): who entered and who left since the endpoint was last told. A segment's first sync sends nothing."""
    from leadledger.marketing.hooks import sync_hooks

    data = sync_hooks(State.app(), only=name or None)
    emit(
        data["segments"],
        ["segment", "endpoint", "entered", "left", "queued", "state"],
        fmt,
        title=f"{data['queued']} messages queued (leadledger outbox deliver, or the worker, sends them)",
        json_value=data,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(segment_app, name="segment")
