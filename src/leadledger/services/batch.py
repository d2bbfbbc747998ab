"""One write transaction: changes judged in order, automation run, everything written together.

Every write path goes through a `WriteBatch`: it loads the leads it touches (locked on PostgreSQL),
asks the domain engine about each change against the state the previous change left, runs what the
model says happens next (on-enter actions, event rules, routing, approvals), and flushes the ledger,
the projection, tasks, notifications and outbox messages in the same transaction. A crash loses nothing
half-way: either all of it is committed or none of it is.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from leadledger.domain.automation import (
    STATUS_ENTERED,
    Action,
    EmailAction,
    EventRule,
    NotifyAction,
    RouteAction,
    TaskAction,
    WebhookAction,
    field_value,
    render,
)
from leadledger.domain.changes import (
    Activity,
    Actor,
    ChangeRequest,
    LeadState,
    Refused,
    StatusChange,
    Violation,
)
from leadledger.domain.engine import change_status, new_lead
from leadledger.domain.routing import choose_owner
from leadledger.domain.timeline import Projection, SlaClock, clocks_on_activity, clocks_on_owner, clocks_on_status, fold
from leadledger.services.app import App
from leadledger.services.errors import ChangeRefused, Forbidden
from leadledger.store import bulk
from leadledger.store import repository as repo
from leadledger.store.tables import (
    CONTACT_COLUMNS,
    PROJECTION_COLUMNS,
    activities,
    approvals,
    leads,
    ledger,
    notifications,
    outbox,
    routing_state,
    sla_clocks,
    tasks,
    teams,
    users,
)

SYSTEM = Actor("system", "ops")
OPEN_CATEGORIES = ("open", "active", "qualified")

# What every batch reads, built once (see repository.py: building a statement costs more than running it).
_USERS = select(users).where(users.c.name.in_(bindparam("names", expanding=True)))
_OPEN_CLOCKS = select(sla_clocks).where(
    sla_clocks.c.closed_at.is_(None), sla_clocks.c.lead_id.in_(bindparam("ids", expanding=True))
)
_TEAMS = select(teams)
_ACTIVE_ENDPOINTS = "SELECT name FROM endpoints WHERE active"  # boolean on PostgreSQL, 0/1 on SQLite
_CHANGE_KEYS = select(ledger.c.idempotency_key, ledger.c.lead_id, ledger.c.seq).where(
    ledger.c.idempotency_key.in_(bindparam("keys", expanding=True))
)
_ACTIVITY_KEYS = select(activities.c.key).where(activities.c.key.in_(bindparam("keys", expanding=True)))
_PREVIOUS_OWNERS = select(ledger.c.to_owner).where(ledger.c.lead_id == bindparam("id")).distinct()


@dataclass(frozen=True)
class ActivityIn:
    """An interaction logged with a change (or on its own): `call_logged` with {"outcome": "connected"}."""

    type: str
    at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None


@dataclass(frozen=True)
class ChangeSpec:
    """One requested change, as an adapter hands it over (the actor is given to the batch)."""

    lead_id: str
    status: str | None = None
    stage: str | None = None
    owner: str | None = None
    clear_owner: bool = False
    reason: str | None = None
    note: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    source: str = "manual"
    rule: str | None = None
    idempotency_key: str | None = None
    override: bool = False
    log: ActivityIn | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class Applied:
    """A change that is in the ledger: the entry, its position, and whether it was already there."""

    lead_id: str
    seq: int
    change: StatusChange | None
    duplicate: bool = False

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return self.change.warnings if self.change else ()


@dataclass(frozen=True)
class PendingApproval:
    """A change that waits for a decision; it is listed with `leadledger approval list`."""

    lead_id: str
    approval_id: int
    rule: str
    approvers: tuple[str, ...]


Outcome = Applied | ChangeRefused | PendingApproval


class WriteBatch:
    """Holds the leads a transaction touches and everything it will write, in order."""

    def __init__(self, app: App, conn: Connection, actor: str, *, automation: bool = True):
        self.app = app
        self.conn = conn
        self.now = app.clock.now()
        self.model = app.loaded_model(conn).model
        self.auto = self.model.automation
        self.automation = automation
        self.users: dict[str, Any] = {}
        self.who = resolve_actor(conn, actor, self.users)
        self.rows: dict[str, dict[str, Any]] = {}
        self.base_version: dict[str, int | None] = {}  # None: created in this batch
        self.states: dict[str, LeadState] = {}
        self.projections: dict[str, Projection] = {}
        self.history: dict[str, list[Activity]] = {}
        self.team_rows: dict[str, Any] | None = None
        self.keys: dict[str, tuple[str, int]] = {}
        self.activity_keys: set[str] = set()
        self.entries: list[dict[str, Any]] = []
        self.activity_rows: list[dict[str, Any]] = []
        self.task_rows: list[dict[str, Any]] = []
        self.notification_rows: list[dict[str, Any]] = []
        self.outbox_rows: list[dict[str, Any]] = []
        self.routing: dict[str, dict[str, float]] = {}
        self.routing_counts: Counter[tuple[str, str]] = Counter()
        self.loads: dict[str, int] | None = None
        self.endpoint_names: set[str] | None = None
        self.counts: Counter[str] = Counter()
        self.refusals: list[tuple[str, str, tuple[Violation, ...]]] = []  # rule-made changes the model refused
        self._context_cache: dict[str, tuple[LeadState, dict[str, Any], dict[str, Any]]] = {}
        self.clocks: dict[str, list[SlaClock]] = {}  # open SLA clocks per lead
        self.new_clocks: list[tuple[str, SlaClock]] = []
        self.changed_clocks: dict[int, SlaClock] = {}  # stored clocks to rewrite, by row id

    # --- loading -------------------------------------------------------------------------------------

    def load(self, lead_ids: Iterable[str]) -> None:
        """Fetch (and on PostgreSQL lock) the leads not loaded yet, with the users who own them."""
        wanted = [i for i in dict.fromkeys(lead_ids) if i not in self.rows]
        if not wanted:
            return
        names: tuple[str, ...] | None = None
        for lead_id, row in repo.lead_rows(self.conn, wanted, lock=True).items():
            names = names or row._fields  # Row._asdict() rebuilds the key view for every row
            self.rows[lead_id] = dict(zip(names, row, strict=True))
            self.base_version[lead_id] = row.version
            projection = self.projections[lead_id] = repo.lead_projection(row)
            self.states[lead_id] = projection.state(lead_id)
        self._load_users(r["owner"] for r in self.rows.values())

    def load_keys(self, change_keys: Sequence[str], activity_keys: Sequence[str] = ()) -> None:
        """Idempotency keys already recorded, so a replay changes nothing."""
        self.keys.update(_existing_change_keys(self.conn, [k for k in change_keys if k not in self.keys]))
        self.activity_keys.update(_existing_activity_keys(self.conn, list(activity_keys)))

    def _load_users(self, names: Iterable[str | None]) -> None:
        missing = {n for n in names if n and n not in self.users}
        if not missing:
            return
        for row in self.conn.execute(_USERS, {"names": sorted(missing)}):
            self.users[row.name] = row
        for name in missing - set(self.users):
            self.users[name] = None

    def user(self, name: str | None) -> Any:
        if not name:
            return None
        if name not in self.users:
            self._load_users([name])
        return self.users.get(name)

    def _activities_for(self, lead_id: str) -> list[Activity]:
        """The lead's logged activities (loaded once per batch for every loaded lead that lacks them)."""
        if lead_id not in self.history:
            pending = [i for i in self.rows if i not in self.history and self.base_version.get(i) is not None]
            since = self.now - timedelta(days=400)
            loaded = repo.activities_since(self.conn, pending, since) if pending else {}
            for i in pending:
                self.history[i] = loaded.get(i, [])
            self.history.setdefault(lead_id, [])
        return self.history[lead_id]

    # --- changes -------------------------------------------------------------------------------------

    def apply(
        self,
        spec: ChangeSpec,
        *,
        actor: Actor | None = None,
        causation: tuple[str, ...] = (),
        approved_by: str | None = None,
    ) -> Outcome:
        """Judge and record one change; run what entering the new status triggers."""
        who = actor or self.who
        if who.role == "integration" and spec.source == "manual":
            spec = replace(spec, source="integration")  # judged as automation is: `automatic` transitions only
        if spec.idempotency_key and spec.idempotency_key in self.keys:
            lead_id, seq = self.keys[spec.idempotency_key]
            return Applied(lead_id, seq, None, duplicate=True)
        if spec.lead_id not in self.rows:
            self.load([spec.lead_id])
        state = self.states.get(spec.lead_id)
        if state is None:
            return ChangeRefused(spec.lead_id, (Violation("lead", "not_found", f"no lead {spec.lead_id!r}"),))
        at = spec.at or self.now
        history = self._activities_for(spec.lead_id) if self._needs_history(spec, state) else []
        logged = None
        if spec.log is not None:
            log_at = spec.log.at or at
            logged = Activity(spec.log.type, log_at, spec.log.data)
            history = [*history, logged]
        request = ChangeRequest(
            lead_id=spec.lead_id,
            actor=who,
            at=at,
            source=spec.source,
            status=spec.status,
            stage=spec.stage,
            owner=spec.owner,
            clear_owner=spec.clear_owner,
            reason=spec.reason,
            note=spec.note,
            fields=spec.fields,
            rule=spec.rule,
            idempotency_key=spec.idempotency_key,
            override=spec.override,
        )
        decided = change_status(self.model, state, request, now=self.now, activities=history)
        problems = list(decided.violations) if isinstance(decided, Refused) else []
        if spec.owner is not None:
            owner_problem = _owner_violation(spec.owner, self.user(spec.owner))
            if owner_problem:
                problems.append(owner_problem)
        if spec.expected_version is not None and spec.expected_version != state.version:
            problems.append(
                Violation("version", "stale", f"the lead is at version {state.version}, not {spec.expected_version}")
            )
        if problems or isinstance(decided, Refused):
            return ChangeRefused(spec.lead_id, tuple(problems))
        if decided.status_changed and spec.source != "import" and approved_by is None:
            pending = self._approval_needed(state, decided, spec, who)
            if pending is not None:
                return pending
        if spec.log is not None and logged is not None:
            self._log_activity(spec.lead_id, spec.log, logged.at, who.name, spec.source)
        seq = self._record(decided, approved_by=approved_by, causation=causation)
        if spec.idempotency_key:
            self.keys[spec.idempotency_key] = (spec.lead_id, seq)
        if self.automation and spec.source != "import":
            self._after_change(decided, causation)
        return Applied(spec.lead_id, seq, decided)

    def _needs_history(self, spec: ChangeSpec, state: LeadState) -> bool:
        targets = {spec.status}
        if spec.stage is not None:
            stage = self.model.stage_by_key.get(spec.stage)
            if stage is not None:
                targets.add(stage.sets_status)
            move = self.model.backward_moves.get((state.stage, spec.stage))
            if move is not None:
                targets.add(move.sets_status)
        return any(
            (s := self.model.statuses.get(key)) is not None and s.entry.activity is not None for key in targets if key
        )

    def _record(self, change: StatusChange, *, approved_by: str | None = None, causation: tuple[str, ...] = ()) -> int:
        """Append the ledger entry and fold it into the lead's projection."""
        lead_id = change.lead_id
        projection = self.projections[lead_id]
        seq = projection.version + 1
        entry = repo.entry_values(change, seq, self.now)
        extra = dict(entry["data"] or {})
        if approved_by:
            extra["approved_by"] = approved_by
        if causation:
            extra["caused_by"] = list(causation)
        entry["data"] = extra or None
        if projection.needs_refold(change.at):
            projection = self._refold(lead_id)
        self.entries.append(entry)
        projection.add(change.at, seq, change.from_status, change.to_status, change.to_stage, change.to_owner,
                       change.source, change.rule, change.reason)  # fmt: skip
        projection.set_fields(change.fields)
        row = self.rows[lead_id]
        team = row.get("team")
        if change.owner_changed:
            owner_row = self.user(change.to_owner)
            team = owner_row.team if owner_row is not None else None
        row.update(repo.projection_values(projection, team))
        self.states[lead_id] = projection.state(lead_id)
        if change.status_changed or change.owner_changed:
            self._track_load(change)
        if change.source != "import":
            if change.owner_changed:
                self._clock_owner_change(lead_id, change.to_owner)
            if change.status_changed:
                self._clock_status_change(lead_id, change.from_status, change.to_status, change.at)
        return seq

    def _refold(self, lead_id: str) -> Projection:
        """The projection folded from the stored ledger (and this batch's entries): an entry continues the
        instant the stored projection ended with, and only the whole timeline says what held before it."""
        projection = fold(repo.entries_for(self.conn, lead_id), self.projections[lead_id].fields)
        for e in self.entries:
            if e["lead_id"] == lead_id:
                projection.add(e["at"], e["seq"], e["from_status"], e["to_status"], e["to_stage"], e["to_owner"],
                               e["source"], e["rule"], e["reason"])  # fmt: skip
        self.projections[lead_id] = projection
        return projection

    def create(
        self,
        *,
        lead_id: str,
        fields: Mapping[str, Any],
        owner: str | None,
        stage: str | None,
        at: datetime,
        source: str,
        idempotency_key: str | None,
        actor: Actor | None = None,
    ) -> Applied | ChangeRefused:
        """A new lead, New (or Assigned with an owner), then whatever entering that status triggers."""
        who = actor or self.who
        if who.role == "integration" and source == "manual":
            source = "integration"  # the ledger says where the lead came from
        if idempotency_key and idempotency_key in self.keys:
            existing_id, seq = self.keys[idempotency_key]
            return Applied(existing_id, seq, None, duplicate=True)
        if lead_id in self.rows or repo.lead_row(self.conn, lead_id) is not None:
            return ChangeRefused(lead_id, (Violation("id", "exists", f"lead {lead_id} already exists"),))
        result = new_lead(
            self.model,
            lead_id=lead_id,
            fields={k: v for k, v in fields.items() if v is not None},
            actor=who,
            at=at,
            now=self.now,
            source=source,
            stage=stage,
            owner=owner,
            idempotency_key=idempotency_key,
        )
        problems = list(result.violations) if isinstance(result, Refused) else []
        owner_problem = _owner_violation(owner, self.user(owner)) if owner else None
        if owner_problem:
            problems.append(owner_problem)
        if who.role == "rep" and owner not in (None, who.name) and source == "manual":
            problems.append(Violation("owner", "not_allowed", "a rep may create leads for themselves only"))
        if problems or isinstance(result, Refused):
            return ChangeRefused(lead_id, tuple(problems))
        has_contact = bool(result.fields.get("email") or result.fields.get("phone"))
        owner_row = self.user(owner)
        projection = self.projections[lead_id] = Projection()
        projection.add(at, 1, None, result.to_status, result.to_stage, result.to_owner, result.source, result.rule,
                       result.reason)  # fmt: skip
        projection.set_fields(result.fields)
        row = repo.projection_values(projection, owner_row.team if owner_row is not None else None)
        row.update(id=lead_id, created_at=at, incomplete=not has_contact)
        self.rows[lead_id] = row
        self.base_version[lead_id] = None
        self.history[lead_id] = []
        self.states[lead_id] = projection.state(lead_id)
        self.entries.append(repo.entry_values(result, 1, self.now))
        if idempotency_key:
            self.keys[idempotency_key] = (lead_id, 1)
        self._track_load(result)
        if source != "import":
            self._clock_status_change(lead_id, None, result.to_status, at)
        if self.automation and source != "import":
            self._after_change(result, ())
        return Applied(lead_id, 1, result)

    # --- approvals ------------------------------------------------------------------------------------

    def _approval_needed(
        self, state: LeadState, change: StatusChange, spec: ChangeSpec, who: Actor
    ) -> PendingApproval | None:
        rule = self.auto.approval_for(change.to_status, self._context(state.id, change=change))
        if rule is None or (who.role in rule.approvers and spec.source == "manual"):
            return None  # an approver deciding for themselves; automation never approves its own moves
        request = {
            "status": spec.status,
            "stage": spec.stage,
            "owner": spec.owner,
            "reason": spec.reason,
            "note": spec.note,
            "fields": {k: _jsonable(v) for k, v in spec.fields.items()},
            "at": (spec.at or self.now).isoformat(),
            "source": spec.source,
            "rule": spec.rule,
            "log": ({"type": spec.log.type, "data": dict(spec.log.data)} if spec.log else None),
        }
        result = self.conn.execute(
            insert(approvals).values(
                lead_id=state.id,
                rule=rule.name,
                request=request,
                requested_by=who.name,
                requested_at=self.now,
                status="pending",
            )
        )
        assert result.inserted_primary_key is not None
        approval_id = int(result.inserted_primary_key[0])
        marker = replace(
            change,
            to_status=state.status,
            to_stage=state.stage,
            to_owner=state.owner,
            kind="approval_request",
            fields={"approval_id": approval_id, "requested_status": change.to_status, "approval_rule": rule.name},
            override_of_seq=None,
            override_rule=None,
            idempotency_key=spec.idempotency_key,
        )
        self._record(marker)
        for approver in self._people_with_roles(rule.approvers, near=state.owner):
            self._notify(
                approver,
                state.id,
                "approval",
                f"{who.name} asks to move {state.id} to {change.to_status} ({rule.name})",
                rule.name,
            )
        self.counts["approvals_requested"] += 1
        return PendingApproval(state.id, approval_id, rule.name, tuple(sorted(rule.approvers)))

    def record_decision(self, lead_id: str, approval_id: int, decision: str, note: str | None) -> int:
        """A ledger entry saying who decided what about a pending change (the state does not move)."""
        state = self.states[lead_id]
        marker = StatusChange(
            lead_id=lead_id,
            at=max(self.now, state.last_at),
            actor=self.who.name,
            actor_role=self.who.role,
            source="manual",
            from_status=state.status,
            to_status=state.status,
            from_stage=state.stage,
            to_stage=state.stage,
            from_owner=state.owner,
            to_owner=state.owner,
            note=note,
            fields={"approval_id": approval_id, "decision": decision},
            kind=f"approval_{decision}",
        )
        return self._record(marker)

    # --- events ---------------------------------------------------------------------------------------

    def run_event_rules(
        self, lead_id: str, event_type: str, event: Mapping[str, Any], at: datetime, key: str | None
    ) -> list[tuple[str, Outcome]]:
        """Apply every rule the event triggers, each judged against the state the previous one left.

        Returns (rule name, outcome) for each rule that asked for a change.
        """
        outcomes: list[tuple[str, Outcome]] = []
        if not self.automation:
            return outcomes
        for rule in self.auto.rules_for(event_type, self._context(lead_id, event=event)):
            outcome = self._apply_rule(rule, lead_id, event, at, key, ())
            if outcome is not None:
                outcomes.append((rule.name, outcome))
        return outcomes

    def _apply_rule(
        self,
        rule: EventRule,
        lead_id: str,
        event: Mapping[str, Any],
        at: datetime,
        key: str | None,
        causation: tuple[str, ...],
    ) -> Outcome | None:
        state = self.states[lead_id]
        context = self._context(lead_id, event=event)
        if not rule.when(context):
            return None
        fields = {name: field_value(raw, context, at) for name, raw in rule.fields}
        status = rule.set_status if rule.set_status != state.status else None
        stage = rule.set_stage if rule.set_stage != state.stage else None
        fields = {k: v for k, v in fields.items() if _changed(state.fields.get(k), v)}
        if status is None and stage is None and not fields:
            return None
        spec = ChangeSpec(
            lead_id=lead_id,
            status=status,
            stage=stage,
            reason=rule.reason if status else None,
            fields=fields,
            at=max(at, state.last_at),
            source="automation",
            rule=rule.name,
            idempotency_key=f"{key}:{rule.name}" if key else None,
        )
        outcome = self.apply(spec, actor=SYSTEM, causation=(*causation, rule.name))
        if isinstance(outcome, ChangeRefused):
            self.refusals.append((lead_id, rule.name, outcome.violations))
            self.counts["rule_refused"] += 1
        elif isinstance(outcome, Applied) and not outcome.duplicate:
            self.counts["rule_changes"] += 1
        return outcome

    def log_event(self, lead_id: str, activity: ActivityIn, at: datetime, actor: str | None, source: str) -> bool:
        """Store an event in the activity log; False when its key was seen before."""
        owner = self.states[lead_id].owner
        if self.who.role == "rep" and owner not in (None, self.who.name):  # as for log_activity: own leads only
            raise Forbidden(f"{self.who.name} is a rep and does not own lead {lead_id}")
        if activity.key and activity.key in self.activity_keys:
            return False
        self._log_activity(lead_id, activity, at, actor, source)
        return True

    def _log_activity(self, lead_id: str, activity: ActivityIn, at: datetime, actor: str | None, source: str) -> None:
        self.activity_rows.append(
            {
                "key": activity.key,
                "lead_id": lead_id,
                "type": activity.type,
                "at": at,
                "recorded_at": self.now,
                "actor": actor,
                "source": source,
                "data": dict(activity.data) or None,
            }
        )
        if activity.key:
            self.activity_keys.add(activity.key)
        self._activities_for(lead_id).append(Activity(activity.type, at, activity.data))
        if source != "import":
            self._clock_activity(lead_id, activity.type, at)

    # --- SLA clocks ----------------------------------------------------------------------------------

    def _open_clocks(self, lead_id: str) -> list[SlaClock]:
        """Open SLA clocks of a lead (loaded once per batch for every loaded lead)."""
        if lead_id not in self.clocks:
            pending = [i for i in self.rows if i not in self.clocks and self.base_version.get(i) is not None]
            for i in pending:
                self.clocks[i] = []
            for start in range(0, len(pending), 900):
                for row in self.conn.execute(_OPEN_CLOCKS, {"ids": pending[start : start + 900]}):
                    self.clocks[row.lead_id].append(SlaClock(row.sla, row.started_at, row.due_at, row.responsible,
                                                             row.status, row.closed_at, row.breached_at, row.id))  # fmt: skip
            self.clocks.setdefault(lead_id, [])
        return self.clocks[lead_id]

    def _due_at(self, owner: str | None) -> Any:
        calendar = self.model.calendar(self._calendar_of(owner))
        return lambda spec, at: spec.target.after(calendar, at)

    def _clocks_moved(self, lead_id: str, closed: list[SlaClock], started: list[SlaClock]) -> None:
        for clock in closed:
            if clock.ref is not None:
                self.changed_clocks[clock.ref] = clock
        self.new_clocks.extend((lead_id, clock) for clock in started)

    def _clock_owner_change(self, lead_id: str, owner: str | None) -> None:
        if not self.model.slas:
            return
        for clock in clocks_on_owner(self._open_clocks(lead_id), owner):
            if clock.ref is not None:
                self.changed_clocks[clock.ref] = clock

    def _clock_status_change(self, lead_id: str, from_status: str | None, to_status: str, at: datetime) -> None:
        if not self.model.slas:
            return
        owner = self.states[lead_id].owner
        closed, started = clocks_on_status(self.model.slas, self._open_clocks(lead_id), from_status, to_status, at,
                                           owner, self._due_at(owner))  # fmt: skip
        self._clocks_moved(lead_id, closed, started)

    def _clock_activity(self, lead_id: str, activity_type: str, at: datetime) -> None:
        if not any(spec.kind == "activity" for spec in self.model.slas):
            return
        state = self.states[lead_id]
        closed, started = clocks_on_activity(self.model.slas, self._open_clocks(lead_id), state.status,
                                             activity_type, at, state.owner, self._due_at(state.owner))  # fmt: skip
        self._clocks_moved(lead_id, closed, started)

    # --- what happens after a change -----------------------------------------------------------------

    def _after_change(self, change: StatusChange, causation: tuple[str, ...]) -> None:
        if not change.status_changed or len(causation) >= self.auto.max_depth:
            return
        context = self._context(change.lead_id, change=change)
        for action in self.auto.on_enter.get(change.to_status, ()):
            if self.states[change.lead_id].status != change.to_status:
                break  # an earlier action (or a rule it set off) already moved the lead on
            if action.name in causation or not action.when(context):
                continue
            self._run_action(action, change, (*causation, action.name))
            context = self._context(change.lead_id, change=change)  # an action may have moved the lead
        event = {
            "type": STATUS_ENTERED,
            "from_status": change.from_status,
            "to_status": change.to_status,
            "reason": change.reason,
            "rule": change.rule,
            "at": change.at,
        }
        for rule in self.auto.rules_for(STATUS_ENTERED, {**context, "event": event}, causation):
            self._apply_rule(rule, change.lead_id, event, change.at, None, causation)

    def _run_action(self, action: Action, change: StatusChange, causation: tuple[str, ...]) -> None:
        spec = action.spec
        lead_id = change.lead_id
        if isinstance(spec, RouteAction):
            self._route(lead_id, spec, action.name, change.at, causation)
        elif isinstance(spec, TaskAction):
            self._task(lead_id, spec, action.name, change.at)
        elif isinstance(spec, NotifyAction):
            context = self._context(lead_id, change=change)
            message = render(spec.message, context)
            for person in self._recipients(spec.to, lead_id):
                self._notify(person, lead_id, "alert", message, action.name, email=spec.email)
        elif isinstance(spec, WebhookAction):
            self._webhook(lead_id, spec, action.name, change)
        elif isinstance(spec, EmailAction):
            self._email_lead(lead_id, spec, action.name, change)

    def _route(self, lead_id: str, spec: RouteAction, name: str, at: datetime, causation: tuple[str, ...]) -> None:
        state = self.states[lead_id]
        if spec.user is not None:
            chosen, why, pool_name = spec.user, "fixed owner", None
            if self.user(chosen) is None or not self.user(chosen).active:
                self._routing_failed(lead_id, None, f"owner {chosen!r} is not an active user", name)
                return
        else:
            pool_name = spec.pool or self.auto.pool_for(self._context(lead_id))
            pool = self.auto.pools.get(pool_name or "")
            if pool is None:
                self._routing_failed(lead_id, None, "no routing rule matches the lead", name)
                return
            members = self._pool_members(pool)
            exclude = frozenset(self._previous_owners(lead_id)) if spec.exclude_previous_owners else frozenset()
            loads = self._loads()
            choice = choose_owner(
                strategy=pool.strategy,
                members=members,
                weights=pool.weights,
                state=self._routing_state(pool.name),
                loads=loads,
                capacity=pool.capacity,
                exclude=exclude,
                seed=self.auto.routing_seed,
                lead_id=lead_id,
            )
            if choice.owner is None:
                self._routing_failed(lead_id, pool.team, f"pool {pool.name}: {choice.why}", name)
                return
            self.routing[pool.name] = choice.state
            self.routing_counts[(pool.name, choice.owner)] += 1
            chosen, why = choice.owner, choice.why
        if chosen == state.owner:
            return
        self.apply(
            ChangeSpec(
                lead_id=lead_id,
                owner=chosen,
                at=max(at, state.last_at),
                source="automation",
                rule=name,
                note=f"routed: {why}" + (f" (pool {pool_name})" if pool_name else ""),
            ),
            actor=SYSTEM,
            causation=causation,
        )
        self.counts["routed"] += 1

    def _routing_failed(self, lead_id: str, team: str | None, why: str, rule: str) -> None:
        self.counts["routing_failed"] += 1
        team_row = self._teams().get(team or "")
        recipients = (
            [team_row.manager] if team_row is not None and team_row.manager else self._people_with_roles({"ops"})
        )
        for person in recipients:
            self._notify(person, lead_id, "routing", f"could not route {lead_id}: {why}", rule, email=False)

    def _task(self, lead_id: str, spec: TaskAction, name: str, at: datetime) -> None:
        state = self.states[lead_id]
        assignee = (
            state.owner
            if spec.assignee == "owner"
            else (self._manager_of(state.owner) if spec.assignee == "manager" else spec.assignee)
        )
        calendar = self.model.calendar(self._calendar_of(state.owner))
        due = calendar.add_business_time(at, spec.due) if spec.business_time else at + spec.due
        self.task_rows.append(
            {
                "lead_id": lead_id,
                "title": render(spec.title, self._context(lead_id))[:500],
                "assignee": assignee,
                "due_at": due,
                "created_at": self.now,
                "status": "open",
                "rule": name,
            }
        )
        self.counts["tasks"] += 1

    def _webhook(self, lead_id: str, spec: WebhookAction, name: str, change: StatusChange) -> None:
        if spec.endpoint not in self._endpoints():
            self.counts["webhooks_skipped"] += 1  # no such endpoint configured: nothing to deliver to
            return
        payload = {
            "event": spec.event,
            "lead": _lead_payload(self.rows[lead_id]),
            "change": _change_payload(change),
            "occurred_at": change.at.isoformat(),
        }
        self._queue("webhook", spec.event, spec.endpoint, payload, lead_id, name)
        self.counts["webhooks"] += 1

    def _email_lead(self, lead_id: str, spec: EmailAction, name: str, change: StatusChange) -> None:
        state = self.states[lead_id]
        address = state.fields.get("email")
        if not address or _truthy(state.fields.get("unsubscribed")) or _truthy(state.fields.get("email_bounced")):
            self.counts["emails_suppressed"] += 1  # seed 004: suppression protects the lead and the sender
            return
        template = self.auto.templates[spec.template]
        context = self._context(lead_id, change=change)
        payload = {
            "to": address,
            "subject": render(template.subject, context),
            "body": render(template.body, context),
            "template": spec.template,
        }
        self._queue("email", spec.template, str(address), payload, lead_id, name)
        self.counts["emails"] += 1

    def _notify(
        self, person: str | None, lead_id: str | None, kind: str, message: str, rule: str | None, email: bool = False
    ) -> None:
        if not person:
            return
        self.notification_rows.append(
            {
                "recipient": person,
                "lead_id": lead_id,
                "kind": kind,
                "message": message[:4000],
                "created_at": self.now,
                "rule": rule,
            }
        )
        self.counts["notifications"] += 1
        row = self.user(person)
        if email and self.app.smtp_configured and row is not None and row.email:
            self._queue(
                "email",
                "notification",
                row.email,
                {"to": row.email, "subject": f"LeadLedger: {message[:80]}", "body": message},
                lead_id,
                rule,
            )

    def _queue(
        self, kind: str, topic: str, target: str, payload: dict[str, Any], lead_id: str | None, rule: str | None
    ) -> None:
        self.outbox_rows.append(
            {
                "delivery_id": uuid.uuid4().hex,
                "kind": kind,
                "topic": topic,
                "target": target,
                "payload": payload,
                "lead_id": lead_id,
                "rule": rule,
                "created_at": self.now,
                "next_attempt_at": self.now,
                "attempts": 0,
                "status": "pending",
            }
        )

    # --- lookups for automation ------------------------------------------------------------------------

    def _context(
        self, lead_id: str, *, change: StatusChange | None = None, event: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        state = self.states[lead_id]
        cached = self._context_cache.get(lead_id)
        if cached is not None and cached[0] is state:  # states are immutable: same object, same view
            lead, owner = cached[1], cached[2]
        else:
            lead = {**state.fields, "id": lead_id, "status": state.status, "stage": state.stage, "owner": state.owner}
            owner_row = self.user(state.owner)
            owner = {
                "name": state.owner,
                "email": owner_row.email if owner_row is not None else None,
                "team": owner_row.team if owner_row is not None else None,
            }
            self._context_cache[lead_id] = (state, lead, owner)
        context: dict[str, Any] = {"lead": lead, "owner": owner}
        if change is not None:
            context["change"] = {
                "from_status": change.from_status,
                "to_status": change.to_status,
                "reason": change.reason,
                "rule": change.rule,
                "source": change.source,
                "actor": change.actor,
            }
        if event is not None:
            context["event"] = event
        return context

    def _teams(self) -> dict[str, Any]:
        if self.team_rows is None:
            self.team_rows = {row.name: row for row in self.conn.execute(_TEAMS)}
        return self.team_rows

    def _manager_of(self, person: str | None) -> str | None:
        row = self.user(person)
        team = self._teams().get(row.team) if row is not None and row.team else None
        return team.manager if team is not None else None

    def _calendar_of(self, person: str | None) -> str | None:
        row = self.user(person)
        team = self._teams().get(row.team) if row is not None and row.team else None
        return team.calendar if team is not None else None

    def _recipients(self, targets: Sequence[str], lead_id: str) -> list[str]:
        owner = self.states[lead_id].owner
        people: list[str] = []
        for target in targets:
            if target == "owner":
                people.append(owner or "")
            elif target == "manager":
                people.append(self._manager_of(owner) or "")
                if not self._manager_of(owner):
                    people.extend(self._people_with_roles({"manager"}))
            elif target.startswith("role:"):
                people.extend(self._people_with_roles({target[5:]}))
            else:
                people.append(target)
        return [p for p in dict.fromkeys(people) if p]

    def _people_with_roles(self, roles: Iterable[str], near: str | None = None) -> list[str]:
        wanted = set(roles)
        if near is not None and "manager" in wanted:
            manager = self._manager_of(near)
            if manager:
                return [manager]
        rows = self.conn.execute(
            select(users.c.name)
            .where(users.c.role.in_(sorted(wanted)), users.c.active.is_(True), users.c.name != SYSTEM.name)
            .order_by(users.c.name)
        )
        return [r.name for r in rows]

    def _pool_members(self, pool: Any) -> list[str]:
        query = select(users.c.name).where(users.c.active.is_(True), users.c.role.in_(sorted(pool.roles)))
        if pool.team is not None:
            query = query.where(users.c.team == pool.team)
        if pool.members:
            query = query.where(users.c.name.in_(list(pool.members)))
        names = [r.name for r in self.conn.execute(query.order_by(users.c.name))]
        return [m for m in pool.members if m in names] if pool.members else names

    def _routing_state(self, pool: str) -> dict[str, float]:
        if pool not in self.routing:
            query = select(routing_state.c.member, routing_state.c.weight_state).where(routing_state.c.pool == pool)
            if self.conn.dialect.name != "sqlite":
                query = query.with_for_update()
            self.routing[pool] = {r.member: r.weight_state for r in self.conn.execute(query)}
        return self.routing[pool]

    def _loads(self) -> dict[str, int]:
        """Open leads per owner, for capacity caps and least-loaded routing (kept current during the batch)."""
        if self.loads is None:
            open_keys = [k for k, s in self.model.statuses.items() if s.category in OPEN_CATEGORIES]
            rows = self.conn.execute(
                select(leads.c.owner, func.count())
                .where(leads.c.owner.is_not(None), leads.c.status.in_(open_keys))
                .group_by(leads.c.owner)
            )
            self.loads = {owner: n for owner, n in rows}
        return self.loads

    def _track_load(self, change: StatusChange) -> None:
        if self.loads is None:
            return
        statuses = self.model.statuses
        was_open = change.from_status is not None and statuses[change.from_status].category in OPEN_CATEGORIES
        is_open = statuses[change.to_status].category in OPEN_CATEGORIES
        if was_open and change.from_owner:
            self.loads[change.from_owner] = self.loads.get(change.from_owner, 0) - 1
        if is_open and change.to_owner:
            self.loads[change.to_owner] = self.loads.get(change.to_owner, 0) + 1

    def _previous_owners(self, lead_id: str) -> set[str]:
        owners = {r[0] for r in self.conn.execute(_PREVIOUS_OWNERS, {"id": lead_id})}
        owners |= {e["to_owner"] for e in self.entries if e["lead_id"] == lead_id}
        owners.add(self.states[lead_id].owner)
        owners.discard(None)
        # marketing owns nurtured leads without working them: only people who worked it count as history
        return {o for o in owners if (row := self.user(o)) is not None and row.role == "rep"}

    def _endpoints(self) -> set[str]:
        if self.endpoint_names is None:
            self.endpoint_names = {name for (name,) in bulk.fetch_all(self.conn, _ACTIVE_ENDPOINTS)}
        return self.endpoint_names

    # --- writing ---------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything gathered, in an order the foreign keys accept; the caller commits."""
        conn = self.conn
        created = [row for lead_id, row in self.rows.items() if self.base_version.get(lead_id) is None]
        if created:
            bulk.insert_many(conn, leads, [{c: row.get(c) for c in _CREATED} for row in created])
        bulk.insert_many(conn, activities, self.activity_rows)
        bulk.insert_many(conn, ledger, self.entries)
        updates = [
            {**{c: row[c] for c in _PROJECTED}, "b_id": lead_id, "b_version": self.base_version[lead_id]}
            for lead_id, row in self.rows.items()
            if self.base_version.get(lead_id) is not None and row["version"] != self.base_version[lead_id]
        ]
        changed = bulk.update_many(conn, leads, updates, set_columns=_PROJECTED,
                                   where=[("id", "b_id"), ("version", "b_version")])  # fmt: skip
        if changed != len(updates):
            raise repo.VersionConflict("a lead changed during the batch")
        bulk.insert_many(conn, tasks, self.task_rows)
        bulk.insert_many(conn, notifications, self.notification_rows)
        bulk.insert_many(conn, outbox, self.outbox_rows)
        bulk.insert_many(conn, sla_clocks, [self._clock_row(c, lead_id) for lead_id, c in self.new_clocks])
        bulk.update_many(conn, sla_clocks, [self._clock_row(c) for c in self.changed_clocks.values()],
                         set_columns=("status", "closed_at", "breached_at", "responsible", "team"),
                         where=[("id", "ref")])  # fmt: skip
        self._write_routing_state()

    def _clock_row(self, clock: SlaClock, lead_id: str | None = None) -> dict[str, Any]:
        owner_row = self.user(clock.responsible)
        row = {"sla": clock.sla, "started_at": clock.started_at, "due_at": clock.due_at,
               "responsible": clock.responsible, "team": owner_row.team if owner_row is not None else None,
               "status": clock.status, "closed_at": clock.closed_at, "breached_at": clock.breached_at}  # fmt: skip
        if lead_id is not None:
            row["lead_id"] = lead_id
        else:
            row["ref"] = clock.ref
        return row

    def _write_routing_state(self) -> None:
        for pool, members in self.routing.items():
            assigned = {m: n for (p, m), n in self.routing_counts.items() if p == pool}
            if not assigned:
                continue
            existing = {
                r.member for r in self.conn.execute(select(routing_state.c.member).where(routing_state.c.pool == pool))
            }
            for member, weight in members.items():
                if member in existing:
                    self.conn.execute(
                        update(routing_state)
                        .where(routing_state.c.pool == pool, routing_state.c.member == member)
                        .values(weight_state=weight, assigned=routing_state.c.assigned + assigned.get(member, 0))
                    )
                else:
                    self.conn.execute(
                        insert(routing_state).values(
                            pool=pool, member=member, weight_state=weight, assigned=assigned.get(member, 0)
                        )
                    )


_PROJECTED = (*PROJECTION_COLUMNS, *CONTACT_COLUMNS, "fields")
_CREATED = ("id", "created_at", "incomplete", *_PROJECTED)


def resolve_actor(conn: Connection, name: str, seen: dict[str, Any] | None = None) -> Actor:
    """The acting user, who must exist and be active (`seen` keeps the row for the batch's user lookups)."""
    row = repo.user_row(conn, name)
    if seen is not None:
        seen[name] = row
    if row is None:
        raise Forbidden(f"unknown user {name!r}: add it with `leadledger user add`")
    if not row.active:
        raise Forbidden(f"user {name!r} is disabled")
    return Actor(row.name, row.role)


def _owner_violation(owner: str | None, row: Any) -> Violation | None:
    if owner is None:
        return None
    if row is None:
        return Violation("owner", "unknown", f"unknown user {owner!r}")
    if not row.active:
        return Violation("owner", "inactive", f"user {owner!r} is disabled")
    return None


def _existing_change_keys(conn: Connection, keys: list[str]) -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(keys), 900):
        for row in conn.execute(_CHANGE_KEYS, {"keys": keys[start : start + 900]}):
            found[row.idempotency_key] = (row.lead_id, row.seq)
    return found


def _existing_activity_keys(conn: Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 900):
        found.update(row.key for row in conn.execute(_ACTIVITY_KEYS, {"keys": keys[start : start + 900]}))
    return found


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _changed(old: Any, new: Any) -> bool:
    return str(old) != str(new) if old is not None and new is not None else old != new


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _lead_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "email", "phone", "company", "source", "campaign", "owner", "status", "stage")
    payload = {k: row.get(k) for k in keys}
    payload["fields"] = row.get("fields") or {}
    return payload


def _change_payload(change: StatusChange) -> dict[str, Any]:
    return {
        "from_status": change.from_status,
        "to_status": change.to_status,
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "reason": change.reason,
        "actor": change.actor,
        "source": change.source,
        "rule": change.rule,
    }
