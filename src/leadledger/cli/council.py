"""`leadledger council pack`: the status council's quarterly review as Markdown, HTML or JSON.

`leadledger.cli.main` attaches `council_app`.
"""

from __future__ import annotations

import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from leadledger.cli.output import console, fail, print_json, to_jsonable
from leadledger.cli.state import State
from leadledger.config import Settings
from leadledger.services import council

council_app = typer.Typer(help="The status council: the quarterly pack of governance figures.", no_args_is_help=True)


class PackFormat(StrEnum):
    md = "md"
    html = "html"
    json = "json"


def _date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date (YYYY-MM-DD)")
        raise


@council_app.command("pack")
def pack(
    date_from: Annotated[
        Optional[str], typer.Option("--from", help="first day (default: the last ended quarter)")
    ] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="last day (default: the last ended quarter)")] = None,
    fmt: Annotated[PackFormat, typer.Option("--format", "-f", help="md, html or json")] = PackFormat.md,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to a file instead of stdout")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="who asks (a manager or ops)")] = None,
) -> None:
    """Usage per status and rep, rarely used statuses, overrides per rule, stale and mismatch rates, reason
    completeness, SLA compliance, spot-check accuracy, inconsistent usage, statuses that may not need to be
    separate (with the test), and what changed in the model during the period."""
    from datetime import timedelta

    from leadledger.analytics.council_render import pack_html, pack_markdown

    app = State.app()
    start, end = _date("--from", date_from), _date("--to", date_to)
    if start is None or end is None:
        today = app.clock.now().date()
        last_first, last_end = council.quarter_of(council.quarter_of(today)[0] - timedelta(days=1))
        start, end = start or last_first, end or last_end
    data = council.pack(app, actor=actor or Settings().actor, date_from=start, date_to=end)
    if fmt is PackFormat.json:
        if output is None:
            print_json(data)
            return
        import json

        text = json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n"
    else:
        text = pack_html(data) if fmt is PackFormat.html else pack_markdown(data)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}", markup=False)
