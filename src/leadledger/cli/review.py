"""`leadledger review`: managers review their teams' status changes and the monthly spot-check sample.

Commands build a request, call `leadledger.services.review` and print the answer; the rules (who may see and
judge what) are the service's. `leadledger.cli.main` attaches `review_app`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Optional

import typer

from leadledger.cli.output import Format, console, emit, fail, print_json
from leadledger.cli.state import FormatOpt, State, actor_or_default
from leadledger.services import review as service

review_app = typer.Typer(
    help="Manager review of status changes: list, judge (ok / wrong usage), monthly spot-check samples.",
    no_args_is_help=True,
)
ActorOpt = Annotated[Optional[str], typer.Option("--actor", help="who reviews (default: $LEADLEDGER_ACTOR or admin)")]
TABLE_COLUMNS = ["entry", "at", "lead", "rep", "by", "change", "reason", "in_previous", "verdict"]
CSV_COLUMNS = ["entry", "at", "lead", "rep", "team", "actor", "actor_role", "source", "rule", "override_rule",
               "from_status", "to_status", "reason", "note", "hours_in_previous", "verdict", "verdict_note", "reviewer"]  # fmt: skip


def _date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date (YYYY-MM-DD)")
        raise


def _hours(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 60:.0f} min" if value < 1 else (f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} d")


def _flat(change: dict[str, Any], fmt: Format) -> dict[str, Any]:
    verdict = change.get("verdict") or {}
    by = change["actor"] if change["source"] == "manual" else f"{change['source']}: {change['rule'] or change['actor']}"
    if change.get("override_rule"):
        by += f" (overrides {change['override_rule']})"
    return {
        **change,
        "at": change["at"] if fmt is Format.csv else change["at"].strftime("%Y-%m-%d %H:%M"),
        "by": by,
        "change": f"{change['from_status']} → {change['to_status']}",
        "in_previous": _hours(change.get("hours_in_previous")),
        "verdict": verdict.get("verdict", "")
        if fmt is Format.csv
        else (f"{verdict['verdict']} ({verdict['reviewer']})" if verdict else ""),
        "verdict_note": verdict.get("note"),
        "reviewer": verdict.get("reviewer"),
    }


@review_app.command("transitions")
def transitions(
    team: Annotated[Optional[str], typer.Option("--team", help="one of the teams you manage")] = None,
    rep: Annotated[Optional[str], typer.Option("--rep", help="the rep accountable for the change")] = None,
    date_from: Annotated[Optional[str], typer.Option("--from", help="first day, YYYY-MM-DD (UTC)")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", help="last day, YYYY-MM-DD (UTC)")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="changes into or out of this status")] = None,
    overrides_only: Annotated[bool, typer.Option("--overrides-only", help="only overrides of automation")] = False,
    unreviewed: Annotated[bool, typer.Option("--unreviewed", help="only changes without a verdict")] = False,
    sample: Annotated[Optional[int], typer.Option("--sample", help="the changes of a spot-check sample")] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many (1-5000)")] = 200,
    offset: Annotated[int, typer.Option("--offset", help="skip this many")] = 0,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Your teams' status changes, oldest first: actor, rule, reason, time in the previous status, verdict."""
    result = service.list_transitions(
        State.app(),
        actor=actor_or_default(actor),
        team=team,
        rep=rep,
        date_from=_date("--from", date_from),
        date_to=_date("--to", date_to),
        status=status,
        overrides_only=overrides_only,
        unreviewed=unreviewed,
        sample_id=sample,
        limit=limit,
        offset=offset,
    )
    if fmt is Format.json:
        print_json(result)
        return
    shown = len(result["changes"])
    emit(
        [_flat(c, fmt) for c in result["changes"]],
        CSV_COLUMNS if fmt is Format.csv else TABLE_COLUMNS,
        fmt,
        title=f"status changes {offset + 1}-{offset + shown} of {result['total']}" if shown else None,
    )
    if fmt is Format.table:
        if not shown:
            console.print(f"no status changes match ({result['total']} in total)", markup=False)
        console.print("judge one: leadledger review mark ENTRY ok|wrong_usage --note TEXT", markup=False)


@review_app.command("mark")
def mark(
    entry: Annotated[int, typer.Argument(help="the entry number from `review transitions`")],
    verdict: Annotated[str, typer.Argument(help="ok or wrong_usage")],
    note: Annotated[Optional[str], typer.Option("--note", help="the feedback (required for wrong_usage)")] = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Judge one status change; wrong usage sends the rep the status's guide text in their inbox."""
    result = service.record_verdict(
        State.app(), actor=actor_or_default(actor), entry_id=entry, verdict=verdict, note=note
    )
    if fmt is Format.json:
        print_json(result)
        return
    told = f"; {result['notified']} was notified" if result["notified"] else ""
    console.print(f"entry {entry} ({result['lead']}): {result['verdict']}{told}", markup=False)


@review_app.command("sample")
def sample(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM")],
    per_rep: Annotated[int, typer.Option("--per-rep", help="changes drawn per rep")] = 10,
    manager: Annotated[Optional[str], typer.Option("--manager", help="ops: draw for this manager")] = None,
    seed: Annotated[Optional[str], typer.Option("--seed", help="default: derived from the month and manager")] = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The month's spot-check: a reproducible random sample of each rep's changes, stratified by status.

    Drawn once per month and manager; asking again shows the stored sample with its verdicts."""
    result = service.draw_sample(
        State.app(), actor=actor_or_default(actor), month=month, per_rep=per_rep, manager=manager, seed=seed
    )
    if fmt is Format.json:
        print_json(result)
        return
    rows = [
        {**item, "verdict": item["verdict"]["verdict"] if item["verdict"] else "", "stratum": item["stratum_changes"]}
        for item in result["items"]
    ]
    emit(
        rows,
        ["entry_id", "entry_at", "lead_id", "rep", "from_status", "to_status", "stratum", "verdict"],
        fmt,
        title=f"spot-check #{result['sample']} {result['month']} for {result['manager']} "
        f"({', '.join(result['teams'])}; {result['per_rep']} per rep, seed {result['seed']})",
    )
    if fmt is Format.table:
        console.print(
            f"{result['size']} changes; judge each: leadledger review mark ENTRY ok|wrong_usage --note TEXT",
            markup=False,
        )


@review_app.command("samples")
def samples(
    month: Annotated[Optional[str], typer.Option("--month", help="YYYY-MM")] = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Spot-check samples drawn so far, with how many of their changes have a verdict."""
    rows = service.list_samples(State.app(), actor=actor_or_default(actor), month=month)
    emit(rows, ["sample", "month", "manager", "teams", "per_rep", "size", "reviewed", "created_at", "created_by"], fmt)
