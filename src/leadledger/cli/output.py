"""How the command line shows data: a Rich table on a terminal, or JSON / CSV for scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from leadledger.domain.moments import parse_day, parse_moment
from leadledger.services.csvcells import safe_cell

console = Console()
err_console = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def to_jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (dict, list)):
        return json.dumps(to_jsonable(value), ensure_ascii=False)
    return str(value)


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    json_value: Any = None,
) -> None:
    """Print rows as a table, JSON (`json_value` if given, else the rows) or CSV (header + rows)."""
    if fmt is Format.json:
        print_json(json_value if json_value is not None else [dict(r) for r in rows])
    elif fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([safe_cell(_csv_cell(row.get(c))) for c in columns])
    else:
        table = Table(title=title, header_style="bold")
        for column in columns:
            add_column(table, column.replace("_", " "), key=is_key_column(column))
        for row in rows:
            table.add_row(*[_escape(_cell(row.get(c))) for c in columns])  # names and notes never act as markup
        show(table)


# Ids and keys are what people copy into the next command: a table never cuts them short.
_KEY_COLUMNS = frozenset({"id", "#", "lead", "lead_id", "status", "stage", "from", "to", "key", "rule", "sla",
                          "owner", "assignee", "responsible", "subject", "delivery_id"})  # fmt: skip


def is_key_column(name: str) -> bool:
    return name in _KEY_COLUMNS or name.endswith(("_id", "_status", "_stage"))


def add_column(table: Table, header: str, *, key: bool = False, justify: str = "left") -> None:
    """A key column keeps its whole values on one line (see `show`); the others wrap, never cut short."""
    if key:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    else:
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]


def show(table: Table) -> None:
    """On a terminal, fit its width with key columns whole (the others wrap); into a pipe or a file, the
    table's natural width, so nothing is cut for a script or a pager either."""
    for column in table.columns:
        if column.no_wrap:
            widths = [Text.from_markup(c).cell_len if isinstance(c, str) else 0 for c in column.cells]
            column.min_width = min(max([len(str(column.header)), *widths]), 60)
    if console.is_terminal:
        console.print(table)
    else:
        wide = Console(file=sys.stdout, width=100_000, highlight=False)
        natural = wide.measure(table).maximum
        Console(file=sys.stdout, width=max(natural, 20), highlight=False).print(table)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(to_jsonable(value), ensure_ascii=False)
    return value


def _escape(text: str) -> str:
    """Lead names and notes are untrusted: never let them act as Rich markup."""
    from rich.markup import escape

    return escape(text)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Any]:
    """A Rich progress bar on a terminal; silent when output goes to a pipe or file."""
    if not sys.stderr.isatty():
        yield lambda advance=1: None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance=1: bar.advance(task, advance)


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {_escape(message)}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def moment_option(option: str, text: str | None) -> datetime | None:
    """A time given on the command line (UTC when it has no zone), read by the product's one parser and range."""
    if text is None:
        return None
    try:
        return parse_moment(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")
        raise


def day_option(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return parse_day(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")
        raise


def rows_of(items: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{c: item.get(c) for c in columns} for item in items]
