"""The sweep: every SLA clock and time rule evaluated set-based in SQL, idempotently.

Each time rule is one SELECT over the projection (indexed by status and time in status); business-time
thresholds become one cutoff instant per calendar, computed before the query. What fires is recorded in
`rule_firings` (unique per rule, lead and stint), so running the sweep twice at the same time fires nothing
twice. Alerts and tasks are INSERT ... SELECT in the same transaction; moves go through change handling
(`changes.apply` in a unit of work), in chunks, each chunk recording its firings in the same transaction as
its changes. A move the model refuses is not a firing: it is reported (`refused`, with the violations; once
per stint in the ops inbox) and tried again on the next sweep while the rule's condition still holds.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.sql import ColumnElement

from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timerules import Duration, TimeRule
from leadledger.services import changes
from leadledger.services.app import App
from leadledger.services.changes import ChangeSpec, PendingApproval
from leadledger.services.errors import ChangeRefused
from leadledger.services.lead_tasks import open_while
from leadledger.services.people import SYSTEM
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import due
from leadledger.store.bulk import chunks
from leadledger.store.tables import activities, leads, notifications, rule_firings, sla_clocks, tasks, teams, users

MOVE_CHUNK = 1000
ADVANCE_CHUNK = 5000
BY_KEY_UP_TO = 5000  # due leads looked up by key; more: one range scan per rule


@dataclass
class SweepSummary:
    now: datetime
    sweep_id: str
    rules: Counter[str] = field(default_factory=Counter)
    sla_breaches: Counter[str] = field(default_factory=Counter)
    moved: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    pending_approvals: int = 0
    webhooks_skipped: int = 0  # moves whose on-enter webhook names no active endpoint
    examined: int = 0  # leads whose due-at had come: the only ones per-lead rules looked at

    @property
    def fired(self) -> int:
        return sum(self.rules.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "sweep_id": self.sweep_id,
            "fired": self.fired,
            "rules": dict(sorted(self.rules.items())),
            "sla_breaches": sum(self.sla_breaches.values()),
            "sla": dict(sorted(self.sla_breaches.items())),
            "moved": self.moved,
            "pending_approvals": self.pending_approvals,
            "refused": self.refused,
            "webhooks_skipped": self.webhooks_skipped,
            "examined": self.examined,
        }


def sweep(app: App, *, now: datetime | None = None) -> SweepSummary:
    """Evaluate SLA clocks and time rules at `now` (default: the clock); fire what is due, once.

    Per-lead rules look only at leads whose due-at has come (`leads.due_at`, indexed: `domain.due`); once
    judged, those leads' due-at moves forward to when a rule could next fire for them. Sweeps are meant to
    run in time order (a sweep at an earlier `now` than the last one may not see what the later one judged).
    """
    now = now or app.clock.now()
    summary = SweepSummary(now=now, sweep_id=uuid.uuid4().hex)
    model = app.loaded_model().model
    with app.db.write() as conn:
        due_ids = _due_ids(conn, now)
        summary.examined = len(due_ids)
        _sla_breaches(conn, now, summary)
        for rule in model.time_rules:
            if rule.action.kind != "move":
                if rule.group_by is not None:
                    summary.rules[rule.name] += _fire_group(conn, rule, now, summary.sweep_id)
                    continue
                summary.rules[rule.name] += 0
                for scope in _scopes(due_ids, now):
                    summary.rules[rule.name] += _fire_alerts(conn, model, rule, now, summary.sweep_id, scope)
    for rule in model.time_rules:
        if rule.action.kind == "move":
            _fire_moves(app, model, rule, now, summary)
    _advance(app, model, now)
    return summary


def _scopes(due_ids: list[str], now: datetime) -> list[ColumnElement[bool]]:
    """The due leads as WHERE clauses: a few, by primary key (SQLite would otherwise pick the status/time
    index and walk every lead past a rule's cutoff); many, as one range over the due-at (one statement)."""
    if len(due_ids) > BY_KEY_UP_TO:
        return [_due(now)]
    return [leads.c.id.in_(chunk) for chunk in chunks(due_ids)]


def _due_ids(conn: Connection, now: datetime) -> list[str]:
    """The due leads' ids. SQLite is told to read the due-at index: with the time a parameter, its planner
    scanned every lead instead (0.7-0.8 s at 1 M leads, five times a sweep, however few were due), and with
    ORDER BY id it walked the primary key; so the ids are sorted here."""
    if conn.dialect.name == "sqlite":
        return sorted(conn.execute(_DUE_IDS_SQLITE, {"now": now}).scalars())
    return sorted(conn.execute(select(leads.c.id).where(_due(now))).scalars())


_DUE_IDS_SQLITE = text("SELECT id FROM leads INDEXED BY ix_leads_due_at WHERE due_at <= :now").bindparams(
    bindparam("now", type_=leads.c.due_at.type)
)


def _due(now: datetime) -> ColumnElement[bool]:
    """The leads a per-lead rule may fire for at `now`: their due-at has come (an index range)."""
    return leads.c.due_at <= literal(now, leads.c.due_at.type)


def _advance(app: App, model: StatusModel, now: datetime) -> None:
    """Move the due-at of every lead judged (due by now) to when a rule could next fire for it, from what is
    stored: the stint's activities and the rules fired. A lead still due (a refused move) is judged again."""
    with app.db.read() as conn:
        lead_ids = _due_ids(conn, now)
    for chunk in chunks(lead_ids, ADVANCE_CHUNK):
        with app.db.write() as conn:
            due.refresh(conn, model, chunk, now, lock=True)


# --- SLA clocks ---------------------------------------------------------------------------------------------


def _sla_breaches(conn: Connection, now: datetime, summary: SweepSummary) -> None:
    due = and_(sla_clocks.c.status == "open", sla_clocks.c.due_at <= now)
    for name, count in conn.execute(select(sla_clocks.c.sla, func.count()).where(due).group_by(sla_clocks.c.sla)):
        summary.sla_breaches[name] = int(count)
    if not summary.sla_breaches:
        return
    message = literal("SLA breached: ") + sla_clocks.c.sla
    manager = select(teams.c.manager).where(teams.c.name == sla_clocks.c.team).scalar_subquery()
    for recipient in (sla_clocks.c.responsible, manager):
        conn.execute(
            insert(notifications).from_select(
                ["recipient", "lead_id", "kind", "message", "created_at", "rule"],
                select(
                    recipient,
                    sla_clocks.c.lead_id,
                    literal("sla"),
                    message,
                    literal(now, sla_clocks.c.due_at.type),
                    literal("sla:") + sla_clocks.c.sla,
                ).where(due, recipient.is_not(None)),
            )
        )
    conn.execute(update(sla_clocks).where(due).values(status="breached", breached_at=sla_clocks.c.due_at))


# --- time rules ---------------------------------------------------------------------------------------------


def _calendar_expr(model: StatusModel) -> ColumnElement[Any]:
    """The calendar of the lead's team (the default calendar when it has none)."""
    team_calendar = select(teams.c.calendar).where(teams.c.name == leads.c.team).scalar_subquery()
    return func.coalesce(team_calendar, literal(model.default_calendar))


def _cutoff(model: StatusModel, duration: Duration, now: datetime) -> ColumnElement[Any]:
    """The instant a lead's clock must have started by, per calendar when the duration is business time."""
    if not duration.business:
        return literal(duration.cutoff(model.calendar(None), now), leads.c.status_since.type)
    calendar = _calendar_expr(model)
    whens = [
        (calendar == name, literal(duration.cutoff(cal, now), leads.c.status_since.type))
        for name, cal in model.calendars.items()
    ]
    return case(*whens, else_=literal(duration.cutoff(model.calendar(None), now), leads.c.status_since.type))


def candidates(model: StatusModel, rule: TimeRule, now: datetime) -> ColumnElement[bool]:
    """The WHERE clause selecting the leads a (non-group) time rule fires for at `now`."""
    keys = sorted(rule.statuses)
    conditions: list[ColumnElement[bool]] = [leads.c.status.in_(keys)]
    if rule.after is not None:
        cutoff = _cutoff(model, rule.after, now)
        since = leads.c.created_at if rule.since == "created" else leads.c.status_since
        conditions.append(since <= cutoff)
        if rule.since == "activity":
            conditions.append(
                ~exists().where(activities.c.lead_id == leads.c.id, activities.c.at > cutoff, activities.c.at <= now)
            )
    if rule.min_attempts is not None:
        attempts = select(func.count()).where(
            activities.c.lead_id == leads.c.id, activities.c.at >= leads.c.status_since, activities.c.at <= now
        )
        if rule.attempt_types:
            attempts = attempts.where(activities.c.type.in_(sorted(rule.attempt_types)))
        conditions.append(attempts.scalar_subquery() >= rule.min_attempts)
    if rule.date_field is not None:
        today = now.astimezone(model.calendar(None).tz).date().isoformat()
        value = leads.c.fields[rule.date_field].as_string()
        conditions.append(and_(value.is_not(None), value <= today))
    return and_(*conditions)


def _stint(rule: TimeRule) -> ColumnElement[Any]:
    # a "since creation" rule fires once per lead; the others once per stay in the status
    return literal(0) if rule.since == "created" else func.coalesce(leads.c.status_entry_seq, 0)


def _not_fired(rule: TimeRule) -> ColumnElement[bool]:
    return ~exists().where(
        rule_firings.c.rule == rule.name, rule_firings.c.subject == leads.c.id, rule_firings.c.stint_seq == _stint(rule)
    )


def _fire_alerts(conn: Connection, model: StatusModel, rule: TimeRule, now: datetime, sweep_id: str,
                 scope: ColumnElement[bool]) -> int:  # fmt: skip
    """Record the firings of a notify/escalate/task rule among the leads in `scope` and write its alerts or
    tasks, set-based."""
    when = literal(now, leads.c.status_since.type)
    result = conn.execute(
        insert(rule_firings)
        .from_select(
            ["rule", "subject", "stint_seq", "sweep_id", "fired_at"],
            select(literal(rule.name), leads.c.id, _stint(rule), literal(sweep_id), when).where(
                scope, candidates(model, rule, now), _due(now), _not_fired(rule)
            ),
        )
        .execution_options(preserve_rowcount=True)  # SQLAlchemy reports INSERT row counts only when asked
    )
    fired = max(result.rowcount or 0, 0)
    if not fired:
        return 0
    mine = select(rule_firings.c.subject).where(rule_firings.c.sweep_id == sweep_id, rule_firings.c.rule == rule.name)
    subject = and_(scope, leads.c.id.in_(mine))
    action = rule.action
    if action.kind == "task":
        due = literal(now + (action.due or timedelta(days=1)), leads.c.status_since.type)
        conn.execute(
            insert(tasks).from_select(
                ["lead_id", "title", "assignee", "due_at", "created_at", "status", "rule", "open_while"],
                select(
                    leads.c.id,
                    literal(action.message),
                    leads.c.owner,
                    due,
                    when,
                    literal("open"),
                    literal(rule.name),
                    literal(open_while(rule.statuses)),
                ).where(subject),
            )
        )
        return fired
    kind = "escalation" if action.kind == "escalate" else "alert"
    text = literal(action.message + ": ") + func.coalesce(leads.c.name, leads.c.id)
    for recipient_column, extra in _recipients(action.to):
        query = select(recipient_column, leads.c.id, literal(kind), text, when, literal(rule.name)).where(
            subject, recipient_column.is_not(None), *extra
        )
        if extra:  # everyone with a role: each matching lead for each such user
            query = query.select_from(leads.join(users, true()))
        conn.execute(
            insert(notifications).from_select(["recipient", "lead_id", "kind", "message", "created_at", "rule"], query)
        )
    return fired


def _recipients(targets: tuple[str, ...]) -> list[tuple[ColumnElement[Any], list[ColumnElement[bool]]]]:
    """SQL expressions naming who is told: the owner, the owner's team manager, everyone with a role, or a user."""
    out: list[tuple[ColumnElement[Any], list[ColumnElement[bool]]]] = []
    for target in targets:
        if target == "owner":
            out.append((leads.c.owner, []))
        elif target == "manager":
            # both tied to the outer lead row (`correlate`): nested two deep, `leads` was otherwise a FROM of its own
            owner_team = select(users.c.team).where(users.c.name == leads.c.owner).correlate(leads).scalar_subquery()
            manager = (
                select(teams.c.manager).where(teams.c.name == func.coalesce(leads.c.team, owner_team)).correlate(leads)
            )
            out.append((manager.scalar_subquery(), []))
        elif target.startswith("role:"):
            out.append((users.c.name, [users.c.role == target[5:], users.c.active.is_(True), users.c.name != "system"]))
        else:
            out.append((literal(target), []))
    return out


def _fire_group(conn: Connection, rule: TimeRule, now: datetime, sweep_id: str) -> int:
    """A rule over groups of leads (e.g. every lead of a company in Nurture): one firing per group and size."""
    column = getattr(leads.c, rule.group_by or "company")
    keys = sorted(rule.statuses)
    outside = func.sum(case((leads.c.status.in_(keys), 0), else_=1))
    groups = (
        select(column.label("name"), func.count().label("size"))
        .where(column.is_not(None), column != "")
        .group_by(column)
        .having(and_(func.count() >= rule.min_group, outside == 0))
        .subquery()
    )
    subject = literal(f"{rule.group_by}:") + groups.c.name
    already = exists().where(
        rule_firings.c.rule == rule.name, rule_firings.c.subject == subject, rule_firings.c.stint_seq == groups.c.size
    )
    when = literal(now, leads.c.status_since.type)
    result = conn.execute(
        insert(rule_firings)
        .from_select(
            ["rule", "subject", "stint_seq", "sweep_id", "fired_at"],
            select(literal(rule.name), subject, groups.c.size, literal(sweep_id), when).where(~already),
        )
        .execution_options(preserve_rowcount=True)
    )
    fired = max(result.rowcount or 0, 0)
    if not fired:
        return 0
    prefix = len(rule.group_by or "") + 2
    group_names = select(func.substr(rule_firings.c.subject, prefix)).where(
        rule_firings.c.sweep_id == sweep_id, rule_firings.c.rule == rule.name
    )
    text = literal(rule.action.message + ": ") + column
    for target in rule.action.to:
        if target.startswith("role:"):
            recipient: ColumnElement[Any] = users.c.name
            extra = [users.c.role == target[5:], users.c.active.is_(True)]
        else:
            recipient, extra = literal(target), []
        first_lead = select(func.min(leads.c.id)).where(column.in_(group_names)).group_by(column).subquery()
        conn.execute(
            insert(notifications).from_select(
                ["recipient", "lead_id", "kind", "message", "created_at", "rule"],
                select(recipient, leads.c.id, literal("alert"), text, when, literal(rule.name))
                .select_from(leads.join(users, true()) if extra else leads)
                .where(leads.c.id.in_(select(first_lead)), *extra),
            )
        )
    return fired


def _fire_moves(app: App, model: StatusModel, rule: TimeRule, now: datetime, summary: SweepSummary) -> None:
    """Select the leads set-based, then move them through change handling (the model still judges each move)."""
    lead_ids: list[str] = []
    with app.db.read() as conn:
        for scope in _scopes(_due_ids(conn, now), now):  # the leads due now (moves by earlier rules count)
            selected = select(leads.c.id).where(scope, candidates(model, rule, now), _not_fired(rule))
            lead_ids.extend(conn.execute(selected.order_by(leads.c.id)).scalars())
    lead_ids.sort()
    action = rule.action
    for chunk in chunks(lead_ids, MOVE_CHUNK):

        def work(uow: UnitOfWork, chunk: list[str] = chunk) -> tuple[int, int, list[dict[str, Any]], int, int]:
            uow.load(chunk)
            moved = fired = pending = 0
            refused: list[dict[str, Any]] = []
            firings = []
            for lead_id in chunk:
                state = uow.states.get(lead_id)
                if state is None or state.status not in rule.statuses:
                    continue  # moved on since the selection
                firings.append(
                    {
                        "rule": rule.name,
                        "subject": lead_id,
                        "stint_seq": _stint_of(uow, lead_id, rule),
                        "sweep_id": summary.sweep_id,
                        "fired_at": now,
                    }
                )
                fired += 1
                spec = ChangeSpec(
                    lead_id=lead_id,
                    status=action.status,
                    reason=action.reason,
                    at=max(now, state.last_at),
                    source="time_rule",
                    rule=rule.name,
                    idempotency_key=f"{rule.name}:{lead_id}:{firings[-1]['stint_seq']}",
                )
                outcome = changes.apply(uow, spec, actor=SYSTEM)
                if isinstance(outcome, ChangeRefused):
                    firings.pop()  # not fired: the next sweep tries again while the rule's condition holds
                    fired -= 1
                    refused.append(
                        {"lead": lead_id, "rule": rule.name, "violations": [v.as_dict() for v in outcome.violations]}
                    )
                elif isinstance(outcome, PendingApproval):
                    pending += 1
                else:
                    moved += 1
            uow.writes.firings.extend(firings)
            return fired, moved, refused, pending, uow.counts["webhooks_skipped"]

        fired, moved, refused, pending, skipped = in_unit_of_work(app, SYSTEM.name, work)
        summary.webhooks_skipped += skipped
        if refused:
            _tell_ops_of_refusals(app, rule, refused)
        summary.rules[rule.name] += fired
        summary.moved += moved
        summary.refused.extend(refused)
        summary.pending_approvals += pending
    if rule.name not in summary.rules:
        summary.rules[rule.name] += 0


def _tell_ops_of_refusals(app: App, rule: TimeRule, refused: list[dict[str, Any]]) -> None:
    """One inbox item per ops user for each lead a rule could not move, once per stay in the status.

    The move is retried on every sweep while the rule's condition holds; telling ops on every retry would
    bury the inbox, so a lead already reported during its current stint is not reported again.
    """
    lead_ids = [item["lead"] for item in refused]
    now = app.clock.now()
    with app.db.write() as conn:
        told = dict(
            conn.execute(
                select(notifications.c.lead_id, func.max(notifications.c.created_at))
                .where(
                    notifications.c.kind == "refused",
                    notifications.c.rule == rule.name,
                    notifications.c.lead_id.in_(lead_ids),
                )
                .group_by(notifications.c.lead_id)
            ).all()
        )
        since = leads.c.created_at if rule.since == "created" else leads.c.status_since
        stint_start = dict(conn.execute(select(leads.c.id, since).where(leads.c.id.in_(lead_ids))).all())
        ops = [
            name
            for (name,) in conn.execute(
                select(users.c.name)
                .where(users.c.role == "ops", users.c.active.is_(True), users.c.name != SYSTEM.name)
                .order_by(users.c.name)
            )
        ]
        rows: list[dict[str, Any]] = []
        for item in refused:
            last, start = told.get(item["lead"]), stint_start.get(item["lead"])
            if last is not None and (start is None or last >= start):
                continue
            why = "; ".join(f"{v['field']}: {v['message']}" for v in item["violations"])
            message = f"time rule {rule.name} could not move {item['lead']} to {rule.action.status} (retried on every sweep): {why}"
            rows.extend(
                {"recipient": person, "lead_id": item["lead"], "kind": "refused", "message": message[:4000],
                 "created_at": now, "rule": rule.name}
                for person in ops
            )  # fmt: skip
        if rows:
            conn.execute(insert(notifications), rows)


def _stint_of(uow: UnitOfWork, lead_id: str, rule: TimeRule) -> int:
    if rule.since == "created":
        return 0
    return int(uow.leads[lead_id].projection.status_entry_seq or 0)


def due_soon(app: App, *, within_hours: float = 24, now: datetime | None = None) -> list[dict[str, Any]]:
    """Open SLA clocks due within the next hours, and breached ones still open, soonest first."""
    now = now or app.clock.now()
    with app.db.read() as conn:
        rows = conn.execute(
            select(sla_clocks, leads.c.name, leads.c.status)
            .join(leads, leads.c.id == sla_clocks.c.lead_id)
            .where(
                or_(
                    and_(sla_clocks.c.status == "open", sla_clocks.c.due_at <= now + timedelta(hours=within_hours)),
                    and_(sla_clocks.c.status == "breached", sla_clocks.c.closed_at.is_(None)),
                )
            )
            .order_by(sla_clocks.c.due_at)
        )
        return [row._asdict() for row in rows]
