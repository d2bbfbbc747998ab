"""Command-line adapter for time: the sweep, SLA clocks and the background worker."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from leadledger.cli.output import Format, console, emit, fail, moment_option, print_json, progress
from leadledger.cli.state import FormatOpt, State

sla_app = typer.Typer(
    help="SLA clocks: due soon and breached (run without a subcommand), or rebuilt from history.",
    invoke_without_command=True,
)


def _parse_now(text: str | None) -> datetime | None:
    return moment_option("--now", text)


def sweep_command(
    now: Annotated[
        Optional[str], typer.Option("--now", help="evaluate as of this time (ISO 8601); default now")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Evaluate every SLA clock and time rule once; what already fired does not fire again."""
    from leadledger.services.sweep import sweep

    summary = sweep(State.app(), now=_parse_now(now)).as_dict()
    if fmt is Format.json:
        print_json(summary)
        return
    rows = [{"rule": name, "fired": count} for name, count in summary["rules"].items()]
    rows += [{"rule": f"sla:{name}", "fired": count} for name, count in summary["sla"].items()]
    emit(rows, ["rule", "fired"], fmt, title=f"sweep at {summary['now']}")
    if summary["refused"]:
        refusals = [
            {"lead": item["lead"], "rule": item["rule"],
             "why": "; ".join(f"{v['field']}: {v['message']}" for v in item["violations"])}
            for item in summary["refused"]
        ]  # fmt: skip
        emit(refusals, ["lead", "rule", "why"], fmt, title="refused by the model (tried again on the next sweep)")
    console.print(
        f"fired {summary['fired']}, SLA breaches {summary['sla_breaches']}, moved {summary['moved']}, "
        f"waiting for approval {summary['pending_approvals']}, refused {len(summary['refused'])}"
        + (
            f", webhooks skipped (no such endpoint) {summary['webhooks_skipped']}"
            if summary["webhooks_skipped"]
            else ""
        ),
        markup=False,
    )


@sla_app.callback()
def sla_list(
    ctx: typer.Context,
    within: Annotated[float, typer.Option("--within", help="hours ahead to look for clocks coming due")] = 24,
    fmt: FormatOpt = Format.table,
) -> None:
    """SLA clocks due within the next hours, and breached clocks still running."""
    if ctx.invoked_subcommand is not None:
        return
    from leadledger.services.sweep import due_soon

    rows = due_soon(State.app(), within_hours=within)
    emit(
        rows,
        ["lead_id", "name", "sla", "status", "started_at", "due_at", "responsible", "team"],
        fmt,
        title="SLA clocks due soon or breached",
    )


@sla_app.command("rebuild")
def sla_rebuild(fmt: FormatOpt = Format.table) -> None:
    """Recompute SLA clocks from the recorded history (after importing or generating history in bulk)."""
    from leadledger.services.sla import rebuild

    with progress("SLA clocks", None) as advance:
        counts = rebuild(State.app(), progress=advance)
    if fmt is Format.json:
        print_json(counts)
    else:
        console.print(
            f"{counts['clocks']} SLA clocks for {counts['leads']} leads: {counts['breached']} breached, "
            f"{counts['open']} open",
            markup=False,
        )


def worker_command(
    interval: Annotated[float, typer.Option("--interval", help="seconds between rounds")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="one round, then exit")] = False,
    deliver: Annotated[bool, typer.Option("--deliver/--no-deliver", help="deliver the outbox too")] = True,
    analytics: Annotated[
        bool, typer.Option("--analytics/--no-analytics", help="bring the reports' analytics store up to date each round")
    ] = False,
) -> None:
    """Run sweeps on a schedule, sync segment webhooks and deliver the outbox (webhooks and e-mail) until stopped
    (Ctrl-C, SIGTERM).

    Each round ends with a heartbeat (what `/readyz` checks). With LEADLEDGER_LOG=json each round is one JSON
    line on standard error instead of the text line."""
    from leadledger import logs
    from leadledger.bootstrap import worker_steps
    from leadledger.services.worker import run

    logs.configure()

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def report(result: dict[str, Any]) -> None:
        if logs.json_enabled():
            return  # the worker logged the round as one JSON line
        if "error" in result:
            console.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} round failed: {result['error']}", markup=False)
            return
        swept = result.get("sweep")
        delivery = result.get("delivery") or {}
        fired = "skipped (another worker is sweeping)" if swept is None else f"fired {swept['fired']}"
        hooks = result.get("segment_hooks") or {}
        synced = f"; segment hooks: {hooks['error']}" if "error" in hooks else (
            f"; segment hooks queued {hooks['queued']}" if hooks.get("queued") else "")  # fmt: skip
        console.print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} sweep {fired}{synced}; delivered {delivery.get('delivered', 0)}, "
            f"failed {delivery.get('failed', 0)}, dead {delivery.get('dead', 0)}",
            markup=False,
        )

    from leadledger.analytics import sync

    run(State.app(), interval=interval, once=once, deliver=deliver, stop=stop, report=report,
        analytics=sync if analytics else None, steps=worker_steps())  # fmt: skip


rules_app = typer.Typer(
    help="Automation rules: try a rule set on recorded history before switching it on.", no_args_is_help=True
)


def _parse_day(text: str | None, option: str) -> datetime | None:
    return moment_option(option, text)  # a date alone is its midnight, UTC


@rules_app.command("backtest")
def rules_backtest(
    file: Annotated[Path, typer.Argument(help="a model file, or a file with only automation sections")],
    start: Annotated[Optional[str], typer.Option("--from", help="replay leads created from this date")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="until this date (default: now)")] = None,
    sweep_every: Annotated[str, typer.Option("--sweep-every", help="how often time rules are evaluated")] = "1d",
    fmt: FormatOpt = Format.table,
) -> None:
    """Replay recorded history under a proposed rule set and report what it would have done; writes nothing."""
    from leadledger.domain.durations import parse_duration
    from leadledger.services.backtest import backtest

    try:
        every = parse_duration(sweep_every)
    except ValueError as exc:
        fail(f"--sweep-every: {exc}")
    with progress("replaying", None) as advance:
        report = backtest(
            State.app(),
            file.read_text(encoding="utf-8"),
            start=_parse_day(start, "--from"),
            end=_parse_day(end, "--to"),
            sweep_every=every,
            file=str(file),
            progress=advance,
        )
    if fmt is Format.json:
        print_json(report)
        return
    rows = []
    for rule in sorted(set(report["rules"]) | set(report["actual_rules"])):
        proposed = report["rules"].get(rule, {})
        actual = report["actual_rules"].get(rule, {})
        rows.append(
            {
                "rule": rule,
                **{
                    k: f"{proposed.get(k, 0)} ({actual.get(k, 0)})"
                    for k in ("moved", "reassigned", "alerted", "escalated", "tasks", "webhooks")
                },
                "samples": ", ".join(proposed.get("samples", [])[:3]),
            }
        )
    emit(
        rows,
        ["rule", "moved", "reassigned", "alerted", "escalated", "tasks", "webhooks", "samples"],
        fmt,
        title=f"backtest over {report['leads']} leads: proposed (actual)",
    )
    sla_rows = [
        {"sla": name, **counts, "actual breached": report["actual_sla"].get(name, {}).get("breached", 0)}
        for name, counts in report["sla"].items()
    ]
    emit(sla_rows, ["sla", "met", "breached", "open", "cancelled", "actual breached"], fmt, title="SLA clocks")
    emit(report["distribution"], ["status", "actual", "backtest", "difference"], fmt, title="status at the end")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
    app.command("worker")(worker_command)
    app.add_typer(sla_app, name="sla")
    app.add_typer(rules_app, name="rules")
