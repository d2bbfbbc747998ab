"""The unit of work: one write transaction's working set — the leads it touches, what their rules read, and
every row it will write.

It loads leads, and what their rules read, in a few set queries; holds their state in memory (each lead's
`domain.timeline.Projection`) while change handling (`changes`), automation (`automation`) and actions
(`actions`) work on it; and writes everything they produced in one grouped write at the end
(`WriteSession.write`): ledger, projections, activities, tasks, notifications, outbox, SLA clocks. It judges
nothing itself. `in_unit_of_work` runs a piece of work in one, retried when another writer got there first.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from leadledger.domain.automation import STATUS_ENTERED
from leadledger.domain.changes import Activity, Actor, LeadState, StatusChange, Violation, json_ready
from leadledger.domain.contacts import contact_keys
from leadledger.domain.due import DueFacts, activity_due, due_at
from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timeline import (
    DueAt,
    Projection,
    SlaClock,
    clocks_on_activity,
    clocks_on_owner,
    clocks_on_status,
    fold,
)
from leadledger.services.app import App
from leadledger.services.errors import Conflict
from leadledger.services.lead_tasks import LeadTasks
from leadledger.services.people import SYSTEM, check_actor
from leadledger.store.ports import EntryData, KeyUse, StoredLead, Team, User, VersionConflict, Writes, WriteSession
from leadledger.store.session import SqlWriteSession, projection_values, unique_violation

OPEN_CATEGORIES = ("open", "active", "qualified")  # a lead in one of these counts towards its owner's load
# What a ledger entry's `data` holds besides the fields a change set: who approved it, the rules that caused it,
# what its idempotency key was used for, and who (with which event or change) set automation off.
TRIGGER_KEYS = ("triggered_by", "triggered_by_role", "trigger_event", "trigger_seq")
ENTRY_META_KEYS = ("approved_by", "caused_by", "request_digest", *TRIGGER_KEYS)
HISTORY_WINDOW = timedelta(days=400)  # activities an entry rule can look back on (the longest `within`)
MAX_ATTEMPTS = 8
T = TypeVar("T")


@dataclass(slots=True)
class LeadRecord:
    """A lead in the unit of work: its projection, and what the `leads` row holds beside it."""

    id: str
    projection: Projection
    team: str | None
    created_at: datetime
    incomplete: bool
    base_version: int | None  # the version read; None: created in this unit of work
    stored: dict[str, Any] | None = None  # the columns as read, so the write sets only those that changed
    stored_version: int | None = None  # created here, and its row already written at this version (`store_now`)

    @classmethod
    def read(cls, lead: StoredLead) -> LeadRecord:
        p = lead.projection
        return cls(lead.id, p, lead.team, lead.created_at, lead.incomplete, p.version, projection_values(p, lead.team))


class UnitOfWork:
    """The leads one transaction touches and everything it will write, in order."""

    def __init__(
        self,
        session: WriteSession,
        model: StatusModel,
        *,
        now: datetime,
        actor: str,
        smtp_configured: bool = False,
        automation: bool = True,
    ):
        self.session = session
        self.model = model
        self.auto = model.automation
        self.now = now
        self.automation = automation
        self.smtp_configured = smtp_configured
        self.users: dict[str, User | None] = {}
        self.who = self.actor(actor)
        self.leads: dict[str, LeadRecord] = {}
        self.states: dict[str, LeadState] = {}  # what the engine judges each lead's next change against
        self.history: dict[str, list[Activity]] = {}
        self.keys: dict[tuple[str, str], KeyUse] = {}  # (caller, idempotency key) -> what it was used for
        self.activity_keys: set[tuple[str | None, str]] = set()  # (sender, event id)
        self.trigger: dict[str, Any] | None = None  # who (and which event or change) set off the automation now
        self.clocks: dict[str, list[SlaClock]] = {}  # open SLA clocks per lead
        self.writes = Writes()
        self.new_clocks: list[tuple[str, SlaClock]] = []
        self.changed_clocks: dict[Any, SlaClock] = {}  # stored clocks to rewrite, by row id
        self.routing: dict[str, dict[str, float]] = {}
        self.routing_counts: Counter[tuple[str, str]] = Counter()
        self.counts: Counter[str] = Counter()
        self.refusals: list[tuple[str, str, tuple[Violation, ...]]] = []  # rule-made changes the model refused
        self._teams: dict[str, Team] | None = None
        self._endpoints: set[str] | None = None
        self._loads: dict[str, int] | None = None
        self._entry_activity_types = _entry_activity_types(model)
        self.approval_statuses = frozenset(s for rule in self.auto.approvals for s in rule.to)
        self.status_entered_rules = any(STATUS_ENTERED in rule.on for rule in self.auto.rules)
        self._context_cache: dict[str, tuple[LeadState, dict[str, Any], dict[str, Any]]] = {}
        leads = self.leads
        self.lead_tasks = LeadTasks(session, model, lambda: [i for i, r in leads.items() if r.base_version is not None])
        # contact keys (email_key, phone_key) the leads written here hold now: the stored rows do not say yet
        self._contacts: dict[tuple[str, str], str] = {}
        self._entries_of: dict[str, list[dict[str, Any]]] = {}  # this unit of work's entry rows, per lead
        self._stored_entries: dict[str, list[EntryData]] = {}  # stored entries' data, read for every lead at once

    # --- loading ---------------------------------------------------------------------------------------

    def load(self, lead_ids: Iterable[str]) -> None:
        """Fetch (and lock) the leads not loaded yet, with the users who own them."""
        wanted = [i for i in dict.fromkeys(lead_ids) if i not in self.leads]
        if not wanted:
            return
        for lead_id, stored in self.session.leads(wanted).items():
            self.leads[lead_id] = LeadRecord.read(stored)
            self.states[lead_id] = stored.projection.state(lead_id)
        self.load_users(self.leads[i].projection.owner for i in wanted if i in self.leads)

    def load_keys(self, change_keys: Sequence[str], activity_keys: Sequence[str] = ()) -> None:
        """Idempotency keys already recorded (every caller's: each is kept with its caller), so a replay changes
        nothing."""
        if change_keys:
            self.keys.update(self.session.change_keys(list(dict.fromkeys(change_keys))))
        if activity_keys:
            self.activity_keys.update(self.session.activity_keys(list(activity_keys)))

    def load_users(self, names: Iterable[str | None]) -> None:
        missing = {n for n in names if n and n not in self.users}
        if not missing:
            return
        found = self.session.users(missing)
        for name in missing:
            self.users[name] = found.get(name)

    def user(self, name: str | None) -> User | None:
        if not name:
            return None
        if name not in self.users:
            self.load_users([name])
        return self.users.get(name)

    def actor(self, name: str) -> Actor:
        """A user who may act in this transaction (exists and is active)."""
        return check_actor(name, self.user(name))

    def exists(self, lead_id: str) -> bool:
        return lead_id in self.leads or self.session.lead_exists(lead_id)

    def activities_for(self, lead_id: str) -> list[Activity]:
        """The lead's activities an entry rule may read (loaded once per transaction for every loaded lead)."""
        if lead_id not in self.history:
            pending = [i for i, r in self.leads.items() if i not in self.history and r.base_version is not None]
            types = self._entry_activity_types
            loaded = self.session.activities_since(pending, self.now - HISTORY_WINDOW, types) if pending else {}
            for i in pending:
                self.history[i] = loaded.get(i, [])
            self.history.setdefault(lead_id, [])
        return self.history[lead_id]

    # --- what rules read: people, teams, endpoints, routing -------------------------------------------------

    def teams(self) -> dict[str, Team]:
        if self._teams is None:
            self._teams = self.session.teams()
        return self._teams

    def team_of(self, person: str | None) -> str | None:
        user = self.user(person)
        return user.team if user is not None else None

    def manager_of(self, person: str | None) -> str | None:
        team = self.teams().get(self.team_of(person) or "")
        return team.manager if team is not None else None

    def calendar_of(self, person: str | None) -> str | None:
        team = self.teams().get(self.team_of(person) or "")
        return team.calendar if team is not None else None

    def people_with_roles(self, roles: Iterable[str], near: str | None = None) -> list[str]:
        """Active people with one of `roles`; for "manager" near someone, their own team's manager first."""
        wanted = set(roles)
        if near is not None and "manager" in wanted:
            manager = self.manager_of(near)
            if manager:
                return [manager]
        return self.session.people_with_roles(wanted)

    def endpoints(self) -> set[str]:
        if self._endpoints is None:
            self._endpoints = self.session.active_endpoints()
        return self._endpoints

    def routing_state(self, pool: str) -> dict[str, float]:
        if pool not in self.routing:
            self.routing[pool] = self.session.routing_state(pool)
        return self.routing[pool]

    def loads(self) -> dict[str, int]:
        """Open leads per owner, for capacity caps and least-loaded routing (kept current in the transaction)."""
        if self._loads is None:
            open_keys = [k for k, s in self.model.statuses.items() if s.category in OPEN_CATEGORIES]
            self._loads = self.session.open_leads_per_owner(open_keys)
        return self._loads

    def _track_load(self, change: StatusChange) -> None:
        loads = self._loads
        if loads is None:
            return
        statuses = self.model.statuses
        was = statuses.get(change.from_status) if change.from_status is not None else None  # None: a migrated key
        was_open = was is not None and was.category in OPEN_CATEGORIES
        is_open = statuses[change.to_status].category in OPEN_CATEGORIES
        if was_open and change.from_owner:
            loads[change.from_owner] = loads.get(change.from_owner, 0) - 1
        if is_open and change.to_owner:
            loads[change.to_owner] = loads.get(change.to_owner, 0) + 1

    def previous_owners(self, lead_id: str) -> set[str]:
        """Reps who have worked the lead (marketing owns nurtured leads without working them)."""
        owners = self.session.previous_owners(lead_id)
        owners |= {e["to_owner"] for e in self._entries_of.get(lead_id, ())}
        owner = self.states[lead_id].owner
        if owner is not None:
            owners.add(owner)
        return {o for o in owners if (user := self.user(o)) is not None and user.role == "rep"}

    def context(
        self, lead_id: str, *, change: StatusChange | None = None, event: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """What conditions and templates read: `lead`, `owner`, and `change` or `event` when given."""
        state = self.states[lead_id]
        cached = self._context_cache.get(lead_id)
        if cached is not None and cached[0] is state:  # states are replaced, never changed: same object, same view
            lead, owner = cached[1], cached[2]
        else:
            lead = {**state.fields, "id": lead_id, "status": state.status, "stage": state.stage, "owner": state.owner}
            user = self.user(state.owner)
            team = self.teams().get(user.team or "") if user is not None else None
            email = user.email if user is not None else None
            owner = {
                "name": state.owner,
                "email": email,
                "team": user.team if user is not None else None,
                # the person's calendar link, else their team's: what a "pick a time" e-mail offers
                "booking_url": (user.booking_url if user is not None else None) or (team.booking_url if team else None),
                "signature": f"{state.owner} ({email})" if email else state.owner,  # never "ana ()"
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

    # --- recording: the ledger, the projection, SLA clocks -----------------------------------------------

    def add_lead(
        self, lead_id: str, created: StatusChange, *, incomplete: bool, entry_data: Mapping[str, Any] | None = None
    ) -> int:
        """A new lead: its first entry, folded into a fresh projection."""
        projection = Projection()
        self.leads[lead_id] = LeadRecord(lead_id, projection, self.team_of(created.to_owner), created.at, incomplete,
                                         None)  # fmt: skip
        self.history[lead_id] = []
        self.clocks[lead_id] = []
        return self.append(created, entry_data=entry_data)

    def append(self, change: StatusChange, *, entry_data: Mapping[str, Any] | None = None) -> int:
        """Append the ledger entry, fold it into the lead's projection, step its SLA clocks; returns its seq."""
        lead_id = change.lead_id
        record = self.leads[lead_id]
        projection = record.projection
        if projection.needs_refold(change.at):
            projection = record.projection = fold(self.session.entries(lead_id), projection.fields)
        seq = projection.version + 1
        row = _entry_row(change, seq, self.now, entry_data)
        self.writes.entries.append(row)
        self._entries_of.setdefault(lead_id, []).append(row)
        projection.add(change.at, seq, change.from_status, change.to_status, change.to_stage, change.to_owner,
                       change.source, change.rule, change.reason)  # fmt: skip
        projection.set_fields(change.fields)
        if "email" in change.fields or "phone" in change.fields:
            self._index_contacts(lead_id, projection.fields)
        if change.owner_changed and seq > 1:
            record.team = self.team_of(change.to_owner)
        self.states[lead_id] = projection.state(lead_id)
        if change.idempotency_key:
            digest = (entry_data or {}).get("request_digest")
            self.keys[(change.actor, change.idempotency_key)] = KeyUse(lead_id, seq, digest)
        if change.status_changed or change.owner_changed:
            self._track_load(change)
        if change.source != "import" and seq > 1:
            self.lead_tasks.follow(change)  # a status's task closes when the lead leaves it, follows the owner
        if change.source != "import" and self.model.slas:
            if change.owner_changed and seq > 1:
                owner = change.to_owner  # a clock started unowned is timed on the routed owner's calendar
                self._changed(clocks_on_owner(self.open_clocks(lead_id), owner, self.model.slas, self._due_at(owner)))
            if change.status_changed:
                owner = change.to_owner
                closed, started = clocks_on_status(self.model.slas, self.open_clocks(lead_id), change.from_status,
                                                   change.to_status, change.at, owner, self._due_at(owner))  # fmt: skip
                self._changed(closed)
                self.new_clocks.extend((lead_id, clock) for clock in started)
        return seq

    def _index_contacts(self, lead_id: str, fields: Mapping[str, Any]) -> None:
        for column, key in contact_keys(fields.get("email"), fields.get("phone")).items():
            if key:
                self._contacts[(column, key)] = lead_id

    def lead_with_contact(self, column: str, key: str) -> str | None:
        """A lead this unit of work created or changed whose contact key `column` is `key` now."""
        lead_id = self._contacts.get((column, key))
        if lead_id is None or self.contact_key(lead_id, column) != key:  # changed again since
            return None
        return lead_id

    def contact_key(self, lead_id: str, column: str) -> str | None:
        """A loaded lead's contact key as this unit of work leaves it."""
        fields = self.leads[lead_id].projection.fields
        return contact_keys(fields.get("email"), fields.get("phone"))[column]

    def log(self, lead_id: str, type_: str, at: datetime, data: Mapping[str, Any], *, key: str | None,
            actor: str | None, source: str) -> None:  # fmt: skip
        """Store an activity; it counts for entry rules and activity SLA clocks from now on."""
        self.writes.activities.append({"key": key, "lead_id": lead_id, "type": type_, "at": at, "recorded_at": self.now,
                                       "actor": actor, "source": source, "data": dict(data) or None})  # fmt: skip
        if key:
            self.activity_keys.add((actor, key))
        self.activities_for(lead_id).append(Activity(type_, at, data))
        if self.model.time_rules:  # an attempt counts from its own instant: the lead's due-at comes no later
            state = self.states[lead_id]
            lowered = activity_due(self.model, state.status, self.leads[lead_id].projection.status_since, type_, at)
            if lowered is not None:
                self.writes.due_lowered.append({"id": lead_id, "due_at": lowered})
        if source != "import" and any(spec.kind == "activity" for spec in self.model.slas):
            state = self.states[lead_id]
            closed, started = clocks_on_activity(self.model.slas, self.open_clocks(lead_id), state.status, type_,
                                                 at, state.owner, self._due_at(state.owner))  # fmt: skip
            self._changed(closed)
            self.new_clocks.extend((lead_id, clock) for clock in started)

    def open_clocks(self, lead_id: str) -> list[SlaClock]:
        """Open SLA clocks of a lead (loaded once per transaction for every loaded lead)."""
        if lead_id not in self.clocks:
            pending = [i for i, r in self.leads.items() if i not in self.clocks and r.base_version is not None]
            found = self.session.open_clocks(pending) if pending else {}
            for i in pending:
                self.clocks[i] = found.get(i, [])
            self.clocks.setdefault(lead_id, [])
        return self.clocks[lead_id]

    def replace_clocks(self, lead_id: str, clocks: Iterable[SlaClock]) -> None:
        """A lead's SLA clocks recomputed from its history: they replace the stored ones."""
        self.writes.clocks_replaced.append(lead_id)
        self.new_clocks.extend((lead_id, clock) for clock in clocks)

    def due_at(self, owner: str | None) -> DueAt:
        return self._due_at(owner)

    def _due_at(self, owner: str | None) -> DueAt:
        """When a clock started for `owner` is due: on their team's calendar (looked up when a clock starts)."""
        return lambda spec, at: spec.target.after(self.model.calendar(self.calendar_of(owner)), at)

    def _changed(self, clocks: Iterable[SlaClock]) -> None:
        for clock in clocks:
            if clock.ref is not None:
                self.changed_clocks[clock.ref] = clock

    @contextmanager
    def triggered_by(self, who: Actor, *, event: str | None = None, change: int | None = None) -> Iterator[None]:
        """Changes automation makes inside this block record the person (or integration) who set it off, and
        their event or change: "by rule X, triggered by ana's event e23". The outermost trigger wins."""
        if self.trigger is not None or who.name == SYSTEM.name:
            yield
            return
        self.trigger = {"triggered_by": who.name, "triggered_by_role": who.role}
        if event is not None:
            self.trigger["trigger_event"] = event
        elif change is not None:
            self.trigger["trigger_seq"] = change
        try:
            yield
        finally:
            self.trigger = None

    def stint_fields(self, lead_id: str) -> list[dict[str, Any]]:
        """The lead's fields after each entry of its current stint, oldest first (the stored ledger, then this
        unit of work's entries). A stint starts at creation, and again when the lead comes back to an open
        status from a closed one (recycled, re-engaged from nurture): its old values no longer describe it."""
        if self.leads[lead_id].base_version is not None and lead_id not in self._stored_entries:
            # the first lead asked about: read every loaded lead's at once (a batch asks for most of them)
            wanted = [i for i, r in self.leads.items() if r.base_version is not None and i not in self._stored_entries]
            found = self.session.entry_data(wanted)
            for i in wanted:
                self._stored_entries[i] = found.get(i, [])
        entries = [(e.kind, e.from_status, e.to_status, e.data) for e in self._stored_entries.get(lead_id, ())]
        entries += [(e["kind"], e["from_status"], e["to_status"], e["data"]) for e in self._entries_of.get(lead_id, ())]
        statuses = self.model.statuses
        fields: dict[str, Any] = {}
        stint: list[dict[str, Any]] = []
        for kind, from_status, to_status, data in entries:
            before, after = statuses.get(from_status or ""), statuses.get(to_status)
            reopened = (before is not None and after is not None and before.category not in OPEN_CATEGORIES
                        and after.category in OPEN_CATEGORIES)  # fmt: skip
            if kind == "created" or reopened:
                stint = []
            if kind in ("created", "change", "correction"):
                fields.update({k: v for k, v in (data or {}).items() if k not in ENTRY_META_KEYS})
            stint.append(dict(fields))
        return stint

    # --- what actions produce ------------------------------------------------------------------------------

    def add_task(self, values: dict[str, Any]) -> None:
        row = {"open_while": None, **values, "created_at": self.now, "status": "open", "done_at": None,
               "done_by": None, "note": None}  # fmt: skip
        self.writes.tasks.append(row)
        self.lead_tasks.opened(row)
        self.counts["tasks"] += 1

    def notify(self, person: str | None, lead_id: str | None, kind: str, message: str, rule: str | None,
               email: bool = False) -> None:  # fmt: skip
        """An in-app notification (and an e-mail when asked, SMTP is set up and the person has an address)."""
        if not person:
            return
        self.writes.notifications.append({"recipient": person, "lead_id": lead_id, "kind": kind,
                                          "message": message[:4000], "created_at": self.now, "rule": rule})  # fmt: skip
        self.counts["notifications"] += 1
        user = self.user(person)
        if email and self.smtp_configured and user is not None and user.email:
            self.queue("email", "notification", user.email,
                       {"to": user.email, "subject": f"LeadLedger: {message[:80]}", "body": message},
                       lead_id, rule)  # fmt: skip

    def queue(self, kind: str, topic: str, target: str, payload: dict[str, Any], lead_id: str | None,
              rule: str | None) -> None:  # fmt: skip
        """A message for the outbox, delivered after commit (at least once, with a delivery id)."""
        self.writes.outbox.append({"delivery_id": uuid.uuid4().hex, "kind": kind, "topic": topic, "target": target,
                                   "payload": payload, "lead_id": lead_id, "rule": rule, "created_at": self.now,
                                   "next_attempt_at": self.now, "attempts": 0, "status": "pending"})  # fmt: skip

    def lead_row(self, lead_id: str) -> dict[str, Any]:
        """The lead's `leads` row as it stands in this unit of work."""
        record = self.leads[lead_id]
        row = projection_values(record.projection, record.team)
        row.update(id=lead_id, created_at=record.created_at, incomplete=record.incomplete,
                   due_at=self.rules_due(record))  # fmt: skip
        return row

    def rules_due(self, record: LeadRecord) -> datetime | None:
        """When a time rule could next fire for the lead (`domain.due`), from its projection alone: its stint's
        activities and the rules already fired are not read, so it is a lower bound the sweep moves forward."""
        p = record.projection
        if not self.model.time_rules or p.status is None:  # (a lead written has a status: its creation entry's)
            return None
        team = self.teams().get(record.team or "") if record.team else None
        calendar = self.model.calendar(team.calendar if team is not None else None)
        return due_at(self.model, DueFacts(p.status, p.status_since, record.created_at, p.fields, calendar))

    # --- writing ---------------------------------------------------------------------------------------

    def store_now(self, lead_id: str) -> None:
        """Write the `leads` row of a lead created in this unit of work now, not at the flush: a row of another
        table written at once (an approval request) must find it. The flush then updates the row instead."""
        record = self.leads[lead_id]
        if record.base_version is None and record.stored_version is None:
            self.session.add_leads([self.lead_row(lead_id)])
            record.stored_version = record.projection.version
            record.stored = projection_values(record.projection, record.team)

    def flush(self) -> None:
        """Hand everything gathered to the session's grouped write; the caller commits."""
        writes = self.writes
        for lead_id, record in self.leads.items():
            version = record.projection.version
            base = record.base_version if record.base_version is not None else record.stored_version
            if base is None:
                writes.leads.append(self.lead_row(lead_id))
            elif version != base:
                before = record.stored or {}
                values = projection_values(record.projection, record.team, record.stored)
                row = {k: v for k, v in values.items() if before.get(k) != v}
                row["due_at"] = self.rules_due(record)
                row.update(b_id=lead_id, b_version=base)
                writes.lead_updates.append(row)
        writes.task_updates = self.lead_tasks.updates()
        writes.clocks = [self._clock_row(clock, lead_id) for lead_id, clock in self.new_clocks]
        writes.clock_updates = [self._clock_row(clock) for clock in self.changed_clocks.values()]
        for pool, state in self.routing.items():
            assigned = {m: n for (p, m), n in self.routing_counts.items() if p == pool}
            if assigned:
                writes.routing[pool] = (state, assigned)
        self.session.write(writes)

    def _clock_row(self, clock: SlaClock, lead_id: str | None = None) -> dict[str, Any]:
        row = {"sla": clock.sla, "started_at": clock.started_at, "due_at": clock.due_at,
               "responsible": clock.responsible, "team": self.team_of(clock.responsible), "status": clock.status,
               "closed_at": clock.closed_at, "breached_at": clock.breached_at}  # fmt: skip
        if lead_id is not None:
            row["lead_id"] = lead_id
        else:
            row["ref"] = clock.ref
        return row


def _entry_row(
    change: StatusChange, seq: int, recorded_at: datetime, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    data = json_ready(change.fields)
    if extra:
        data.update(extra)
    return {
        "lead_id": change.lead_id, "seq": seq, "at": change.at, "recorded_at": recorded_at, "kind": change.kind,
        "actor": change.actor, "actor_role": change.actor_role, "source": change.source,
        "from_status": change.from_status, "to_status": change.to_status, "from_stage": change.from_stage,
        "to_stage": change.to_stage, "from_owner": change.from_owner, "to_owner": change.to_owner,
        "reason": change.reason, "note": change.note, "data": data or None, "rule": change.rule,
        "override_of_seq": change.override_of_seq, "override_rule": change.override_rule,
        "idempotency_key": change.idempotency_key, "off_model": change.off_model,
    }  # fmt: skip


def _entry_activity_types(model: StatusModel) -> frozenset[str]:
    """Every activity type some status's entry rule can ask for: the only ones worth reading back."""
    return frozenset(m.type for s in model.statuses.values() if s.entry.activity for m in s.entry.activity.any_of)


def in_unit_of_work(app: App, actor: str, work: Callable[[UnitOfWork], T], *, automation: bool = True) -> T:
    """Run `work` in one write transaction and flush it; retried when another writer got there first."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with app.db.write() as conn:
                uow = UnitOfWork(SqlWriteSession(conn), app.loaded_model(conn).model, now=app.clock.now(),
                                 actor=actor, smtp_configured=app.smtp_configured, automation=automation)  # fmt: skip
                result = work(uow)
                uow.flush()
                return result
        except Exception as exc:
            if not (isinstance(exc, VersionConflict) or unique_violation(exc)):
                raise
            if attempt == MAX_ATTEMPTS - 1:
                raise Conflict(
                    f"the lead kept changing under this write; try again ({exc.__class__.__name__})"
                ) from exc
    raise AssertionError("unreachable")
