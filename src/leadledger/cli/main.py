"""The `leadledger` command line: a stable contract other tools script against.

Commands build a request, call a service function and print the result; they hold no rules of their own.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from leadledger.bootstrap import build_app
from leadledger.cli.api import register as register_api
from leadledger.cli.automation import register as register_automation
from leadledger.cli.council import council_app
from leadledger.cli.imports import import_app
from leadledger.cli.model import model_app
from leadledger.cli.output import Format, console, emit, err_console, fail, moment_option, print_json, rows_of, show
from leadledger.cli.quality import register as register_quality
from leadledger.cli.reports import report_app
from leadledger.cli.review import review_app
from leadledger.cli.segments import register as register_segments
from leadledger.cli.timecmds import register as register_time
from leadledger.config import Settings
from leadledger.domain.durations import parse_duration
from leadledger.model.loader import ModelError
from leadledger.services import leads as lead_service
from leadledger.services import models as model_service
from leadledger.services import people
from leadledger.services.app import App, NotInitialised
from leadledger.services.errors import ChangeRefused, ServiceError, as_service_error
from leadledger.services.leads import ActivityIn, ChangeSpec


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
user_app = typer.Typer(help="People who work leads, and their roles.", no_args_is_help=True)
team_app = typer.Typer(help="Teams and the business calendar each works on.", no_args_is_help=True)
lead_app = typer.Typer(help="Create, change, list and inspect leads.", no_args_is_help=True)
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


class State:
    """The App of this invocation, built on first use (commands that need no database never open one)."""

    db: str | None = None
    _app: App | None = None
    _checked = False

    @classmethod
    def reset(cls, db: str | None) -> None:
        if cls._app is not None:
            cls._app.db.dispose()
        cls.db, cls._app, cls._checked = db, None, False

    @classmethod
    def app(cls, *, initialised: bool = True) -> App:
        """The App; unless `initialised=False` (init), a database that `init` never set up is an error."""
        if cls._app is None:
            settings = Settings()
            cls._app = build_app(settings, db_url=cls.db)
        if initialised and not cls._checked:
            if not cls._app.is_initialised():
                raise NotInitialised(f"no LeadLedger database at {cls._app.db.describe()}: run `leadledger init`")
            cls._checked = True
        return cls._app

    @classmethod
    def has_database(cls) -> bool:
        """Whether an initialised database is there (without creating anything)."""
        return cls.app(initialised=False).is_initialised()


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, json or csv")]
ActorOpt = Annotated[
    Optional[str], typer.Option("--actor", help="who makes the change (default: $LEADLEDGER_ACTOR or admin)")
]
AtOpt = Annotated[Optional[str], typer.Option("--at", help="when it happened, ISO 8601 (UTC if no zone); default now")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="FIELD=VALUE, repeatable")]


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
    if State._app is None or db != State.db:  # an app already built for this database (in-process runs) stays
        State.reset(db)


def _actor(actor: str | None) -> str:
    return actor or Settings().actor


def _parse_at(text: str | None) -> datetime | None:
    return moment_option("--at", text)


def _parse_sets(values: list[str] | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in values or []:
        if "=" not in item:
            fail(f"--set {item!r}: write FIELD=VALUE")
        key, value = item.split("=", 1)
        fields[key.strip()] = value
    return fields


def _parse_log(text: str | None, at: datetime | None) -> ActivityIn | None:
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


def _show_refusal(exc: ChangeRefused, fmt: Format) -> None:
    if fmt is Format.json:
        print_json({"lead": exc.lead_id, "applied": False, "violations": [v.as_dict() for v in exc.violations]})
        raise SystemExit(1)
    err_console.print(f"[bold red]refused:[/] nothing was written for lead {exc.lead_id}", highlight=False)
    for violation in exc.violations:
        err_console.print(f"  - {violation.field}: {violation.message}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(1)


# --- init ---------------------------------------------------------------------------


@app.command()
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


# --- people -----------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help="rep, manager, ops or integration")],
    team: Annotated[Optional[str], typer.Option("--team")] = None,
    email: Annotated[Optional[str], typer.Option("--email")] = None,
    password: Annotated[
        bool, typer.Option("--password", help="set a password: asked twice, or the first line of standard input")
    ] = False,
    booking_url: Annotated[
        Optional[str], typer.Option("--booking-url", help="their calendar link ({owner.booking_url} in e-mails)")
    ] = None,
) -> None:
    """Add a person who works leads (integration users authenticate with `leadledger token create`)."""
    from leadledger.cli.api import read_new_password
    from leadledger.services import auth

    secret = read_new_password() if password else None
    user = auth.add_user(State.app(), actor=None, name=name, role=role, team=team, email=email, password=secret,
                         booking_url=booking_url)  # fmt: skip
    console.print(f"user {user['name']} ({user['role']}) added", markup=False)


@user_app.command("set")
def user_set(
    name: str,
    email: Annotated[Optional[str], typer.Option("--email", help="their e-mail address (\"\" clears it)")] = None,
    booking_url: Annotated[
        Optional[str], typer.Option("--booking-url", help="their calendar link (\"\" clears it)")
    ] = None,
    team: Annotated[Optional[str], typer.Option("--team")] = None,
) -> None:
    """Change a user's e-mail, calendar link or team."""
    user = people.update_user(State.app(), name=name, email=email, booking_url=booking_url, team=team)
    console.print(f"user {user['name']} updated", markup=False)


@user_app.command("list")
def user_list(fmt: FormatOpt = Format.table) -> None:
    """Everyone who can work leads or act on them: role, team, e-mail, calendar link, enabled or not."""
    emit(people.list_users(State.app()), ["name", "role", "team", "email", "booking_url", "active"], fmt)


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: they can no longer make changes or own new leads."""
    from leadledger.services import auth

    auth.set_user_active(State.app(), actor=None, name=name, active=False)  # its tokens are revoked too
    console.print(f"user {name} disabled", markup=False)


@user_app.command("enable")
def user_enable(name: str) -> None:
    """Enable a disabled user again (tokens revoked by the disable stay revoked)."""
    from leadledger.services import auth

    auth.set_user_active(State.app(), actor=None, name=name, active=True)
    console.print(f"user {name} enabled", markup=False)


@team_app.command("add")
def team_add(
    name: str,
    calendar: Annotated[str, typer.Option("--calendar", help="a calendar of the model (e.g. default, emea)")],
    manager: Annotated[Optional[str], typer.Option("--manager")] = None,
    booking_url: Annotated[
        Optional[str], typer.Option("--booking-url", help="the team's calendar link, for reps without their own")
    ] = None,
) -> None:
    """Add a team and the business calendar its SLAs and business hours run on."""
    team = people.add_team(State.app(), name=name, calendar=calendar, manager=manager, booking_url=booking_url)
    console.print(f"team {team['name']} added (calendar {team['calendar']})", markup=False)


@team_app.command("list")
def team_list(fmt: FormatOpt = Format.table) -> None:
    """Teams, the business calendar each works on, and their managers."""
    emit(people.list_teams(State.app()), ["name", "calendar", "manager"], fmt)


# --- leads ------------------------------------------------------------------------------------------

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
    fields.update(_parse_sets(sets))
    try:
        result = lead_service.create_lead(
            State.app(),
            actor=_actor(actor),
            fields=fields,
            owner=owner,
            stage=stage,
            at=_parse_at(at),
            idempotency_key=key,
        )
    except ChangeRefused as exc:
        _show_refusal(exc, fmt)
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
        console.print(
            f"created lead as {result.change.to_status}{moved} in stage {now['stage']}{owner}", markup=False
        )
    else:
        console.print(f"already created with this key (now {now['status']})", markup=False)
    sys.stdout.write(result.lead_id + "\n")


PENDING_EXIT = 3  # the change was recorded as a request waiting for approval; the lead did not move


def _apply_change(spec: ChangeSpec, actor: str | None, fmt: Format) -> None:
    try:
        result = lead_service.change_lead(State.app(), actor=_actor(actor), spec=spec)
    except ChangeRefused as exc:
        _show_refusal(exc, fmt)
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
    when = _parse_at(at)
    spec = ChangeSpec(
        lead_id=lead,
        status=status,
        reason=reason,
        fields=_parse_sets(sets),
        note=note,
        at=when,
        log=_parse_log(log, when),
        override=override,
        idempotency_key=key,
    )
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
    when = _parse_at(at)
    spec = ChangeSpec(
        lead_id=lead,
        stage=stage,
        reason=reason,
        fields=_parse_sets(sets),
        note=note,
        at=when,
        log=_parse_log(log, when),
        idempotency_key=key,
    )
    _apply_change(spec, actor, fmt)


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
    _apply_change(ChangeSpec(lead_id=lead, owner=owner, note=note, at=_parse_at(at)), actor, fmt)


@lead_app.command("update")
def lead_update(
    lead: str,
    sets: SetOpt = None,
    note: NoteOpt = None,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Update contact or custom fields (validated by the model's field types); recorded in the ledger."""
    fields = _parse_sets(sets)
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
        actor=_actor(actor),
        activity=ActivityIn(activity_type, at=_parse_at(at), data=_parse_sets(sets), key=key),
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
