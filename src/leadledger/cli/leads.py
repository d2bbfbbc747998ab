"""The `lead` commands: create, change, log on, list and inspect leads (each a call to services.leads)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any, Optional

import typer

from leadledger.cli.output import Format, console, emit, err_console, fail, print_json, rows_of
from leadledger.cli.state import (
    ActorOpt,
    AtOpt,
    FormatOpt,
    SetOpt,
    State,
    actor_or_default,
    parse_at,
    parse_sets,
    show_refusal,
)
from leadledger.domain.durations import parse_duration
from leadledger.services import leads as lead_service
from leadledger.services.errors import ChangeRefused
from leadledger.services.leads import ActivityIn, ChangeSpec

lead_app = typer.Typer(help="Create, change, list and inspect leads.", no_args_is_help=True)

LEAD_COLUMNS = ["id", "name", "email", "company", "source", "owner", "status", "stage", "status_since"]


@lead_app.command("add")
def lead_add(
    email: Annotated[Optional[str], typer.Option("--email")] = None,
    name: Annotated[Optional[str], typer.Option("--name")] = None,
    phone: Annotated[Optional[str], typer.Option("--phone")] = None,
    company: Annotated[Optional[str], typer.Option("--company")] = None,
    source: Annotated[Optional[str], typer.Option("--source")] = None,
    campaign: Annotated[Optional[str], typer.Option("--campaign")] = None,
    owner: Annotated[Optional[str], typer.Option("--owner")] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", help="initial stage (default: the model's)")] = None,
    sets: SetOpt = None,
    at: AtOpt = None,
    key: Annotated[
        Optional[str], typer.Option("--key", help="idempotency key: the same key never creates twice")
    ] = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Create a lead (New, or Assigned when an owner is given). Prints the new lead's id on its last line."""
    fields: dict[str, Any] = {
        "name": name,
        "email": email,
        "phone": phone,
        "company": company,
        "source": source,
        "campaign": campaign,
    }
    fields.update(parse_sets(sets))
    try:
        result = lead_service.create_lead(
            State.app(),
            actor=actor_or_default(actor),
            fields=fields,
            owner=owner,
            stage=stage,
            at=parse_at(at),
            idempotency_key=key,
        )
    except ChangeRefused as exc:
        show_refusal(exc, fmt)
        return
    now = lead_service.get_lead(State.app(), result.lead_id)  # where automation (routing...) left it
    if fmt is Format.json:
        print_json(
            {"id": result.lead_id, "status": now["status"], "stage": now["stage"], "owner": now["owner"],
             "created_as": result.change.to_status if result.change else None, "duplicate": result.duplicate}
        )  # fmt: skip
        return
    if result.change:
        for warning in result.warnings:
            err_console.print(f"note: {warning.message}", markup=False, highlight=False)
        moved = f" -> {now['status']}" if now["status"] != result.change.to_status else ""
        owner = f", owner {now['owner']}" if now["owner"] else ", no owner yet"
        console.print(f"created lead as {result.change.to_status}{moved} in stage {now['stage']}{owner}", markup=False)
    else:
        console.print(f"already created with this key (now {now['status']})", markup=False)
    sys.stdout.write(result.lead_id + "\n")


PENDING_EXIT = 3  # the change was recorded as a request waiting for approval; the lead did not move


def _apply_change(spec: ChangeSpec, actor: str | None, fmt: Format) -> None:
    try:
        result = lead_service.change_lead(State.app(), actor=actor_or_default(actor), spec=spec)
    except ChangeRefused as exc:
        show_refusal(exc, fmt)
        return
    except lead_service.ApprovalPending as pending:
        if fmt is Format.json:
            print_json({"lead": spec.lead_id, "applied": False, "pending_approval": pending.pending.approval_id,
                        "rule": pending.pending.rule, "approvers": list(pending.pending.approvers)})  # fmt: skip
        else:
            console.print(f"{spec.lead_id}: {pending}", markup=False)
        raise SystemExit(PENDING_EXIT) from None
    change = result.change
    if fmt is Format.json:
        print_json(
            {
                "lead": result.lead_id,
                "applied": True,
                "changed": result.changed,
                "duplicate": result.duplicate,
                "seq": result.seq,
                "status": change.to_status if change else None,
                "stage": change.to_stage if change else None,
                "owner": change.to_owner if change else None,
                "override_of_seq": change.override_of_seq if change else None,
                "warnings": [w.as_dict() for w in result.warnings],
            }
        )
        return
    if not result.changed:
        console.print(f"{result.lead_id}: unchanged, it already is as asked (nothing written)", markup=False)
        return
    if change is None:
        console.print(f"{result.lead_id}: already applied with this key (entry {result.seq})", markup=False)
        return
    for warning in result.warnings:
        err_console.print(f"note: {warning.message}", markup=False, highlight=False)
    parts = []
    if change.status_changed:
        parts.append(f"status {change.from_status} -> {change.to_status}")
    if change.stage_changed:
        parts.append(f"stage {change.from_stage} -> {change.to_stage}")
    if change.owner_changed:
        parts.append(f"owner {change.from_owner or '-'} -> {change.to_owner or '-'}")
    if change.override_rule or change.override_of_seq:
        parts.append(f"override of {change.override_rule or 'automated change'} (entry {change.override_of_seq})")
    console.print(f"{result.lead_id}: {'; '.join(parts) or 'fields updated'} (entry {result.seq})", markup=False)


LogOpt = Annotated[
    Optional[str], typer.Option("--log", help="log the interaction with the change: TYPE[:key=value,...]")
]
ReasonOpt = Annotated[Optional[str], typer.Option("--reason", help="a reason code from the model")]
NoteOpt = Annotated[Optional[str], typer.Option("--note")]
KeyOpt = Annotated[Optional[str], typer.Option("--key", help="idempotency key: the same key never applies twice")]


@lead_app.command("status")
def lead_status(
    lead: str,
    status: str,
    reason: ReasonOpt = None,
    sets: SetOpt = None,
    note: NoteOpt = None,
    log: LogOpt = None,
    override: Annotated[bool, typer.Option("--override", help="this replaces an automated change")] = False,
    actor: ActorOpt = None,
    at: AtOpt = None,
    key: KeyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Change a lead's status. Exit 1 with every violation listed, and nothing written, when the model refuses."""
    spec = _move(lead, reason, sets, note, log, at, key, status=status, override=override)
    _apply_change(spec, actor, fmt)


@lead_app.command("stage")
def lead_stage(
    lead: str,
    stage: str,
    reason: ReasonOpt = None,
    sets: SetOpt = None,
    note: NoteOpt = None,
    log: LogOpt = None,
    actor: ActorOpt = None,
    at: AtOpt = None,
    key: KeyOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Move a lead to another lifecycle stage (forward only, except the model's listed steps back)."""
    _apply_change(_move(lead, reason, sets, note, log, at, key, stage=stage), actor, fmt)


def _move(
    lead: str,
    reason: str | None,
    sets: list[str] | None,
    note: str | None,
    log: str | None,
    at: str | None,
    key: str | None,
    **target: Any,
) -> ChangeSpec:
    """The change `lead status` and `lead stage` ask for: the target (`status=` or `stage=`) with its reason,
    the data to enter it, a note, activities logged with it, when, and the idempotency key."""
    when = parse_at(at)
    return ChangeSpec(
        lead_id=lead,
        reason=reason,
        fields=parse_sets(sets),
        note=note,
        at=when,
        log=parse_log(log, when),
        idempotency_key=key,
        **target,
    )


@lead_app.command("assign")
def lead_assign(
    lead: str,
    owner: str,
    note: NoteOpt = None,
    actor: ActorOpt = None,
    at: AtOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Give a lead an owner (a New lead becomes Assigned). Owner history is kept in the ledger."""
    _apply_change(ChangeSpec(lead_id=lead, owner=owner, note=note, at=parse_at(at)), actor, fmt)


@lead_app.command("update")
def lead_update(
    lead: str,
    sets: SetOpt = None,
    note: NoteOpt = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Update contact or custom fields (validated by the model's field types); recorded in the ledger."""
    fields = parse_sets(sets)
    if not fields:
        fail("give at least one --set FIELD=VALUE")
    _apply_change(ChangeSpec(lead_id=lead, fields=fields, note=note), actor, fmt)


@lead_app.command("log")
def lead_log(
    lead: str,
    activity_type: Annotated[str, typer.Argument(metavar="TYPE", help="email_sent, call_logged, meeting_held...")],
    sets: SetOpt = None,
    at: AtOpt = None,
    key: KeyOpt = None,
    actor: ActorOpt = None,
) -> None:
    """Log an interaction (call, email, meeting) on a lead; entry rules such as Connected's read these."""
    added = lead_service.log_activity(
        State.app(),
        lead_id=lead,
        actor=actor_or_default(actor),
        activity=ActivityIn(activity_type, at=parse_at(at), data=parse_sets(sets), key=key),
    )
    console.print(f"{lead}: {activity_type} logged" if added else f"{lead}: already logged with this key", markup=False)


@lead_app.command("list")
def lead_list(
    status: Annotated[
        Optional[list[str]], typer.Option("--status", help="a status key or label; repeat it for any of several")
    ] = None,
    not_status: Annotated[
        Optional[list[str]], typer.Option("--not-status", help="repeatable: none of these (with sub-statuses)")
    ] = None,
    stage: Annotated[Optional[str], typer.Option("--stage", help="a stage key or label")] = None,
    owner: Annotated[Optional[str], typer.Option("--owner", help="a user name")] = None,
    team: Annotated[Optional[list[str]], typer.Option("--team", help="repeatable: any of these teams")] = None,
    source: Annotated[Optional[str], typer.Option("--source")] = None,
    reason: Annotated[Optional[list[str]], typer.Option("--reason", help="repeatable: any of these reasons")] = None,
    campaign: Annotated[Optional[list[str]], typer.Option("--campaign", help="repeatable: any of these")] = None,
    company: Annotated[Optional[str], typer.Option("--company", help="the company, any case")] = None,
    segment: Annotated[
        Optional[list[str]], typer.Option("--segment", help="repeatable: a member of every one of these now")
    ] = None,
    older_than: Annotated[Optional[str], typer.Option("--in-status-longer-than", help="e.g. 24h, 7d")] = None,
    after: Annotated[
        Optional[str], typer.Option("--after", help="the cursor printed with the previous page (its last id)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="leads per page")] = 50,
    fmt: FormatOpt = Format.table,
) -> None:
    """List leads by status (any of several, or not), stage, owner, team, source, reason, campaign, company,
    segment or age in status, a page at a time (oldest first).

    JSON is {"leads": [...], "next_cursor": ID or null}; pass the cursor to --after for the next page.
    """
    try:
        age = parse_duration(older_than) if older_than else None
    except ValueError as exc:
        fail(f"--in-status-longer-than: {exc}")
    members = None
    if segment:
        from leadledger.marketing.segments import segment_members

        members = segment_members(State.app(), segment)
    rows = lead_service.list_leads(
        State.app(),
        status=status or (),
        not_status=not_status or (),
        stage=stage,
        owner=owner,
        team=team or (),
        source=source,
        reason=reason or (),
        campaign=campaign or (),
        company=company,
        lead_ids=members,
        in_status_longer_than=age,
        after=after,
        limit=limit + 1,  # one more than asked says whether there is a next page
    )
    page, cursor = rows[:limit], (rows[limit - 1]["id"] if len(rows) > limit else None)
    if fmt is Format.json:
        print_json({"leads": page, "next_cursor": cursor})
        return
    emit(rows_of(page, LEAD_COLUMNS), LEAD_COLUMNS, fmt)
    if cursor is not None:
        err_console.print(
            f"{len(page)} leads shown; more match: add --after {cursor} for the next page (or a larger --limit)",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip


@lead_app.command("show")
def lead_show(lead: str, fmt: FormatOpt = Format.table) -> None:
    """A lead and its timeline: every ledger entry and every logged activity."""
    from leadledger.services.merge import merged_timelines

    data = lead_service.timeline(State.app(), lead)
    data["merged"] = merged_timelines(State.app(), lead)
    if fmt is Format.json:
        print_json(data)
        return
    entries = data["entries"]
    if fmt is Format.csv:
        emit(
            entries,
            [
                "seq",
                "at",
                "kind",
                "source",
                "actor",
                "from_status",
                "to_status",
                "from_stage",
                "to_stage",
                "to_owner",
                "reason",
                "rule",
                "override_rule",
                "off_model",
                "note",
                "data",
            ],
            fmt,
        )
        return
    info = data["lead"]
    console.print(f"[bold]{info['id']}[/]", highlight=False)
    for label in ("name", "email", "phone", "company", "source", "campaign", "owner", "team", "status", "stage"):
        if info.get(label):
            console.print(f"  {label:<9} {info[label]}", markup=False, highlight=False)
    for key, value in info["fields"].items():
        console.print(f"  {key:<9} {value}", markup=False, highlight=False)
    rows = []
    for e in entries:
        change = []
        if e["from_status"] != e["to_status"]:
            change.append(f"{e['from_status'] or '∅'} → {e['to_status']}")
        if e["from_stage"] != e["to_stage"]:
            change.append(f"stage {e['from_stage'] or '∅'} → {e['to_stage']}")
        if e["from_owner"] != e["to_owner"]:
            change.append(f"owner {e['from_owner'] or '∅'} → {e['to_owner'] or '∅'}")
        flags = []
        if e["override_of_seq"]:
            flags.append(f"override of {e['override_rule'] or 'automation'} #{e['override_of_seq']}")
        if e["off_model"]:
            flags.append("off-model")
        rows.append(
            {
                "#": e["seq"],
                "at": e["at"],
                "change": "; ".join(change) or e["kind"],
                "reason": e["reason"],
                "by": f"{e['actor']} ({e['source']})",
                "flags": ", ".join(flags),
                "note": e["note"],
            }
        )
    emit(rows, ["#", "at", "change", "reason", "by", "flags", "note"], fmt, title="timeline")
    if data["activities"]:
        acts = [{"at": a["at"], "type": a["type"], "by": a["actor"], "data": a["data"]} for a in data["activities"]]
        emit(acts, ["at", "type", "by", "data"], fmt, title="activities")
    for merged in data.get("merged", []):
        rows = [
            {"#": e["seq"], "at": e["at"], "status": e["to_status"], "reason": e["reason"],
             "by": f"{e['actor']} ({e['source']})", "note": e["note"]}
            for e in merged["entries"]
        ]  # fmt: skip
        emit(rows, ["#", "at", "status", "reason", "by", "note"], fmt, title=f"merged from {merged['lead_id']}")


def parse_log(text: str | None, at: datetime | None) -> ActivityIn | None:
    """`call_logged:outcome=connected` -> an activity logged with the change."""
    if not text:
        return None
    kind, _, rest = text.partition(":")
    data = {}
    for pair in filter(None, rest.split(",")):
        if "=" not in pair:
            fail(f"--log {text!r}: write TYPE or TYPE:key=value,key=value")
        k, v = pair.split("=", 1)
        data[k.strip()] = v.strip()
    return ActivityIn(kind.strip(), at=at, data=data)
