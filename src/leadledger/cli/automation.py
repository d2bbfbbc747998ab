"""Command-line adapter for automation: events in, approvals, tasks, the inbox, the outbox and its endpoints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from leadledger.cli.output import Format, console, emit, err_console, print_json, progress
from leadledger.cli.state import FormatOpt, State, actor_or_default

event_app = typer.Typer(
    help="Activity events (email sent/replied, call, meeting, form, opportunity...).", no_args_is_help=True
)
approval_app = typer.Typer(
    help="Changes waiting for a decision (e.g. a high-value lead to Disqualified).", no_args_is_help=True
)
task_app = typer.Typer(help="Tasks automation created for people.", no_args_is_help=True)
inbox_app = typer.Typer(help="In-app notifications per user.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="Messages to other systems (webhooks, e-mail): delivery and dead letters.", no_args_is_help=True
)
endpoint_app = typer.Typer(help="Where webhook actions deliver, and the secret that signs them.", no_args_is_help=True)

ActorOpt = Annotated[Optional[str], typer.Option("--actor", help="who acts (default: $LEADLEDGER_ACTOR or admin)")]


@event_app.command("apply")
def event_apply(
    file: Annotated[str, typer.Argument(help="a JSON-lines file, or - for standard input")],
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Apply events, one JSON object per line: {"id", "type", "lead", "at", "data"}. Replays change nothing.

    A bad line is reported with its number; the good lines are applied. Exit 0 when the file was read,
    1 when it could not be or when every line was rejected.
    """
    from leadledger.services.events import apply_events

    stream = sys.stdin if file == "-" else Path(file).open(encoding="utf-8-sig")  # noqa: SIM115 - closed below
    try:
        with progress("events", None) as advance:
            summary = apply_events(State.app(), stream, actor=actor_or_default(actor), progress=advance)
    finally:
        if stream is not sys.stdin:
            stream.close()
    result = summary.as_dict()
    nothing_taken = result["rejected"] > 0 and result["applied"] == 0 and result["duplicates"] == 0
    if fmt is Format.json:
        print_json(result)
        if nothing_taken:
            raise SystemExit(1)
        return
    skipped = f" ({result['webhooks_skipped']} skipped: no such endpoint)" if result["webhooks_skipped"] else ""
    console.print(
        f"applied {result['applied']}, duplicates {result['duplicates']}, rejected {result['rejected']}; "
        f"{result['status_changes']} automated changes, {result['leads_created']} leads created, "
        f"{result['tasks']} tasks, {result['notifications']} notifications, {result['webhooks']} webhooks{skipped}, "
        f"{result['emails']} e-mails queued",
        markup=False,
    )
    for error in result["errors"]:
        err_console.print(f"line {error['line']}: {error['error']}", markup=False, highlight=False)
    for refused in result["refused"]:
        listed = "; ".join(f"{v['field']}: {v['message']}" for v in refused["violations"])
        err_console.print(
            f"line {refused['line']}: rule {refused['rule']} refused for {refused['lead']}: {listed}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    for pending in result["approvals"]:
        console.print(
            f"line {pending['line']}: {pending['lead']} waits for approval #{pending['approval']}", markup=False
        )
    if nothing_taken:
        err_console.print("error: every line was rejected; nothing was applied", markup=False, highlight=False)
        raise SystemExit(1)


@approval_app.command("list")
def approval_list(
    status: Annotated[str, typer.Option("--status", help="pending, approved, denied or all")] = "pending",
    lead: Annotated[Optional[str], typer.Option("--lead")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Approval requests (pending by default)."""
    from leadledger.services.approvals import list_approvals

    rows = list_approvals(State.app(), status=None if status == "all" else status, lead_id=lead)
    for row in rows:
        row["requested"] = row["request"].get("status") or row["request"].get("stage")
    emit(
        rows,
        ["id", "lead_id", "rule", "requested", "requested_by", "requested_at", "status", "decided_by", "note"],
        fmt,
        json_value=rows if fmt is Format.json else None,
    )


def _decide(approval_id: int, approve: bool, note: str | None, actor: str | None, fmt: Format) -> None:
    from leadledger.services.approvals import decide

    result = decide(State.app(), approval_id=approval_id, actor=actor_or_default(actor), approve=approve, note=note)
    if fmt is Format.json:
        print_json(result)
    else:
        console.print(f"approval #{approval_id} {result['decision']} for {result['lead']}", markup=False)


@approval_app.command("approve")
def approval_approve(
    approval_id: int,
    note: Annotated[Optional[str], typer.Option("--note")] = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Approve: the change is applied now, checked against the lead as it is now."""
    _decide(approval_id, True, note, actor, fmt)


@approval_app.command("deny")
def approval_deny(
    approval_id: int,
    note: Annotated[Optional[str], typer.Option("--note")] = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Deny: the lead stays as it is; the decision is in the ledger."""
    _decide(approval_id, False, note, actor, fmt)


@task_app.command("list")
def task_list(
    assignee: Annotated[Optional[str], typer.Option("--assignee")] = None,
    status: Annotated[str, typer.Option("--status", help="open, done, cancelled or all")] = "open",
    lead: Annotated[Optional[str], typer.Option("--lead")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Tasks, soonest due first."""
    from leadledger.services.inbox import list_tasks

    rows = list_tasks(State.app(), assignee=assignee, status=None if status == "all" else status, lead_id=lead)
    emit(rows, ["id", "lead_id", "title", "assignee", "due_at", "status", "rule", "note"], fmt)


@task_app.command("done")
def task_done(
    task_id: int,
    no_change: Annotated[
        Optional[str],
        typer.Option("--no-change", help="why the lead stays in its status (a status's task is done by the move)"),
    ] = None,
    actor: ActorOpt = None,
) -> None:
    """Mark a task done (its assignee, a manager or ops). A status's task closes itself when the lead moves on."""
    from leadledger.services.inbox import complete_task

    complete_task(State.app(), task_id=task_id, actor=actor_or_default(actor), no_change=no_change)
    console.print(f"task #{task_id} done" + (f" (no change: {no_change})" if no_change else ""), markup=False)


@inbox_app.command("list")
def inbox_list(
    user: Annotated[Optional[str], typer.Argument(help="whose inbox (default: the acting user)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include read notifications")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """A user's notifications, newest first."""
    from leadledger.services.inbox import list_notifications

    rows = list_notifications(State.app(), recipient=user or actor_or_default(None), unread_only=not all_)
    emit(rows, ["id", "created_at", "kind", "lead_id", "message", "read_at"], fmt)


@inbox_app.command("read")
def inbox_read(
    user: Annotated[Optional[str], typer.Argument(help="whose inbox (default: the acting user)")] = None,
    ids: Annotated[Optional[list[int]], typer.Option("--id", help="only these notifications")] = None,
) -> None:
    """Mark notifications read."""
    from leadledger.services.inbox import mark_read

    count = mark_read(State.app(), recipient=user or actor_or_default(None), ids=ids)
    console.print(f"{count} notifications marked read", markup=False)


@outbox_app.command("list")
def outbox_list(
    status: Annotated[Optional[str], typer.Option("--status", help="pending, delivered or dead")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    fmt: FormatOpt = Format.table,
) -> None:
    """Outgoing messages, newest first."""
    from leadledger.services.outbox import list_messages

    rows = list_messages(State.app(), status=status, limit=limit)
    emit(rows, ["id", "kind", "topic", "target", "lead_id", "status", "attempts", "next_attempt_at", "last_error"], fmt)


@outbox_app.command("deliver")
def outbox_deliver(limit: Annotated[int, typer.Option("--limit")] = 500, fmt: FormatOpt = Format.table) -> None:
    """Deliver what is due now (webhooks signed with HMAC-SHA256, e-mail by SMTP); failures are retried later."""
    from leadledger.services.outbox import deliver

    report = deliver(State.app(), limit=limit).as_dict()
    if fmt is Format.json:
        print_json(report)
    else:
        console.print(
            f"delivered {report['delivered']}, failed {report['failed']} (will retry), dead {report['dead']}",
            markup=False,
        )


@outbox_app.command("redrive")
def outbox_redrive(
    ids: Annotated[Optional[list[int]], typer.Option("--id", help="only these messages")] = None,
) -> None:
    """Put dead-lettered messages back in the queue."""
    from leadledger.services.outbox import redrive

    console.print(f"{redrive(State.app(), ids=ids)} messages re-queued", markup=False)


@endpoint_app.command("add")
def endpoint_add(
    name: str,
    url: str,
    secret: Annotated[str, typer.Option("--secret", help="at least 16 characters; signs each delivery")],
    actor: ActorOpt = None,
) -> None:
    """Register a webhook endpoint (ops only)."""
    from leadledger.services.outbox import add_endpoint

    add_endpoint(State.app(), name=name, url=url, secret=secret, actor=actor_or_default(actor))
    console.print(f"endpoint {name} -> {url}", markup=False)


@endpoint_app.command("list")
def endpoint_list(fmt: FormatOpt = Format.table) -> None:
    """Webhook endpoints rules can deliver to (`webhook: {endpoint: NAME}` in the model)."""
    from leadledger.services.outbox import list_endpoints

    emit(list_endpoints(State.app()), ["name", "url", "active"], fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(event_app, name="event")
    app.add_typer(approval_app, name="approval")
    app.add_typer(task_app, name="task")
    app.add_typer(inbox_app, name="inbox")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(endpoint_app, name="endpoint")
