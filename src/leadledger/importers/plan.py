"""Planning one lead: its new facts laid onto its existing ledger, as rows to append and a projection to write.

What a lead's timeline means (and what analytics reads): entries in (`at`, `seq`) order; entries of one
lead at the same `at` are one instant, and the entry with the higher seq holds the state. So history that
arrives late is appended with its own time, and a wrong initial state is corrected by appending a
`correction` entry at the creation instant - never by editing a row. The projection is then folded from
the whole timeline, so it equals the entry with the greatest (`at`, `seq`).

The initial state follows the evidence: the OldValue of the lead's first status (owner) change when the
source records one, else the lead file's current value, else the model's initial status. A later import
with better evidence appends the correction; the same evidence again appends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, NamedTuple

from leadledger.domain.changes import Actor, ChangeRequest, LeadState, StatusChange
from leadledger.domain.contacts import lead_keys
from leadledger.domain.engine import change_status, new_lead
from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timeline import fold
from leadledger.importers.facts import CHANGE, CREATED, LEAD, OWNER_BY_ID, Fact, to_datetime
from leadledger.store.tables import CONTACT_COLUMNS, KEY_COLUMNS

SOURCE = "import"
# one encoder for every row: json.dumps(..., default=str) would build a new one per call
to_json = json.JSONEncoder(ensure_ascii=False, default=str).encode
EXTERNAL_ROLE = "external"  # the role recorded for a person named in the file who is not a LeadLedger user
_JUDGE_TIME = datetime(2000, 1, 1, tzinfo=UTC)


class Item(NamedTuple):
    """A ledger entry as the timeline needs it (existing or planned)."""

    at: int
    seq: int
    kind: str
    source: str
    rule: str | None
    reason: str | None
    from_status: str | None
    to_status: str
    from_stage: str | None
    to_stage: str
    from_owner: str | None
    to_owner: str | None


@dataclass
class ExistingLead:
    """A lead already in LeadLedger, with every entry of its ledger."""

    id: str
    version: int
    created_at: int
    fields: dict[str, Any] | None  # contact columns and custom fields; None when not read (no fields to merge)
    items: list[Item]  # sorted by (at, seq)
    keys: set[str]
    incomplete: bool
    chain_head: bytes | None = None  # the hash of its last ledger entry: the import's entries chain on from it


@dataclass
class LeadPlan:
    """What to write for one lead, and what became of each of its rows."""

    lead_id: str
    base_seq: int = 0  # the lead's last seq before this import: new entries follow it
    base_head: bytes | None = None  # the hash of that entry (store/chain.py)
    insert: tuple[Any, ...] | None = None
    update: tuple[Any, ...] | None = None  # PROJECTION_COLUMNS [+ FIELD_COLUMNS], then id and expected version
    update_fields: bool = False
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    written_rows: set[int] = field(default_factory=set)
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)
    ignored: dict[int, str] = field(default_factory=dict)
    rows: set[int] = field(default_factory=set)  # every row that had a fact for this lead
    created: bool = False
    corrections: int = 0
    off_model: int = 0
    incomplete: bool = False
    field_conflicts: int = 0
    new_owners: list[str] = field(default_factory=list)  # owners set here who are not LeadLedger users


# columns written for a new lead (LEAD_COLUMNS), and for an existing lead's projection (then id and the expected
# version); its fields too when the import changed them (a narrower statement leaves the indexes on contact
# columns alone)
FIELD_COLUMNS = (*CONTACT_COLUMNS, "incomplete", "fields", *KEY_COLUMNS)


class Planner:
    """Plans leads one at a time against the model, the users and the importing person."""

    def __init__(
        self,
        model: StatusModel,
        *,
        users: dict[str, tuple[str, str | None]],  # name -> (role, team)
        importer: str,
        recorded_at: int,
        stamp: Callable[[int], Any],  # microseconds -> what the database driver takes for a time
        create_leads: bool,
    ):
        self.model = model
        self.users = users
        self.importer = importer
        self.recorded_at = stamp(recorded_at)
        self.stamp = stamp
        self.create_leads = create_leads
        self._verdicts: dict[tuple[str, str, str, str], bool] = {}
        self._creation_verdicts: dict[tuple[str, str], bool] = {}
        self._actor = Actor(importer, "ops")
        self._roles: dict[str, str] = {}  # actor name -> role recorded with their entries

    # --- the model's view --------------------------------------------------------------------------

    def off_model(self, from_status: str, from_stage: str, to_status: str, to_stage: str) -> bool:
        """The engine's verdict on a move, asked once per distinct move (imports record facts; it flags them)."""
        key = (from_status, from_stage, to_status, to_stage)
        verdict = self._verdicts.get(key)
        if verdict is None:
            state = LeadState(id="", status=from_status, stage=from_stage, owner=None, fields={}, version=1,
                              last_at=_JUDGE_TIME)  # fmt: skip
            request = ChangeRequest(lead_id="", actor=self._actor, at=_JUDGE_TIME, source=SOURCE, status=to_status,
                                    stage=to_stage if to_stage != from_stage else None)  # fmt: skip
            result = change_status(self.model, state, request, now=_JUDGE_TIME)
            verdict = result.off_model if isinstance(result, StatusChange) else True
            self._verdicts[key] = verdict
        return verdict

    def off_model_at_creation(self, status: str, stage: str) -> bool:
        key = (status, stage)
        verdict = self._creation_verdicts.get(key)
        if verdict is None:
            result = new_lead(self.model, lead_id="", fields={}, actor=self._actor, at=_JUDGE_TIME, now=_JUDGE_TIME,
                              source=SOURCE, status=status, stage=stage)  # fmt: skip
            verdict = result.off_model if isinstance(result, StatusChange) else True
            self._creation_verdicts[key] = verdict
        return verdict

    def pulled(self, stage: str, status: str) -> str:
        """A status the model ties to a later stage (Qualified -> SQL, Converted -> Opportunity) brings the stage along."""
        tied = self.model.status_sets_stage.get(status)
        if tied is not None and self.model.stage_rank(tied) > self.model.stage_rank(stage):
            return tied
        return stage

    # --- planning ----------------------------------------------------------------------------------

    def plan(
        self, lead_id: str, facts: list[Fact], existing: ExistingLead | None, taken: dict[str, str] | None = None
    ) -> LeadPlan:
        """Everything to write for `lead_id`; `taken` holds keys already recorded on other leads (a retry)."""
        # a lead's version is the seq of its last entry (the projection's invariant)
        plan = LeadPlan(lead_id, base_seq=existing.version if existing else 0,
                        base_head=existing.chain_head if existing else None)  # fmt: skip
        if len(facts) > 1:
            facts.sort(key=_fact_order)
        plan.rows.update(f.row for f in facts)
        fresh = self._new_facts(facts, existing, taken or {}, plan)
        if not fresh:
            return plan
        changes = _chain_order([f for f in fresh if f.kind == CHANGE])
        lead_facts = [f for f in fresh if f.kind == LEAD]
        if existing is None:
            self._create(plan, lead_id, fresh, lead_facts, changes)
        else:
            self._merge(plan, existing, lead_facts, changes)
        return plan

    def _new_facts(
        self, facts: list[Fact], existing: ExistingLead | None, taken: dict[str, str], plan: LeadPlan
    ) -> list[Fact]:
        """Facts not yet in the ledger; an owner-by-id row gives way to the name row of the same change."""
        seen = existing.keys if existing else set()  # read for this batch only: extended in place
        fresh = []
        for fact in facts:
            if fact.key is not None:
                if fact.key in seen:
                    continue  # imported before, or a duplicate row: skipped
                holder = taken.get(fact.key)
                if holder is not None and holder != plan.lead_id:
                    plan.rejected[fact.row] = ("key", f"already recorded on lead {holder} ({fact.key})")
                    continue
                seen.add(fact.key)
            fresh.append(fact)
        if any(f.flags & OWNER_BY_ID for f in fresh):
            named = {f.at for f in fresh if f.owner is not None and not f.flags & OWNER_BY_ID}
            kept = []
            for fact in fresh:
                if fact.flags & OWNER_BY_ID and fact.at in named:
                    plan.ignored[fact.row] = "owner given by id: the row with the owner's name is recorded"
                else:
                    kept.append(fact)
            fresh = kept
        return fresh

    def _create(
        self, plan: LeadPlan, lead_id: str, fresh: list[Fact], lead_facts: list[Fact], changes: list[Fact]
    ) -> None:
        created_fact = next((f for f in fresh if f.kind == CREATED), None)
        lead_fact = lead_facts[0] if lead_facts else None
        if lead_fact is None and created_fact is None and not self.create_leads:
            for fact in fresh:
                plan.rejected[fact.row] = ("lead", f"no lead {lead_id!r} in LeadLedger (create_leads is off)")
            return
        # the creation: the lead record, Salesforce's `created` row, or else the lead's first history row's
        # time - then in the model's initial state, the row itself following as a change at that instant
        origin = lead_fact or created_fact
        created = origin.at if origin is not None else changes[0].at
        first_status = next((f for f in changes if f.status is not None), None)
        first_owner = next((f for f in changes if f.owner is not None), None)
        model = self.model
        if first_status is not None and first_status.old_status is not None:
            status = first_status.old_status
        elif lead_fact is not None and lead_fact.status is not None:
            status = lead_fact.status
        else:
            status = model.initial_status
        owner: str | None = None
        if first_owner is not None and first_owner.old_owner is not None:
            owner = first_owner.old_owner
        elif lead_fact is not None:
            owner = lead_fact.owner
        stage = self.pulled((lead_fact.stage if lead_fact is not None else None) or model.initial_stage, status)
        fields: dict[str, Any] = {}
        for fact in lead_facts:
            added = False
            for name, value in (fact.data or {}).items():
                if name not in fields:
                    fields[name] = value
                    added = True
            if added or fact is lead_fact:
                plan.written_rows.add(fact.row)
        items: list[Item] = []
        first = origin or changes[0]
        reason = lead_fact.reason if lead_fact is not None and lead_fact.status is not None else None
        self._append(plan, lead_id, items,
                     Item(created, 1, "created", SOURCE, None, reason, None, status, None, stage, None, owner),
                     first.actor, lead_fact.note if lead_fact is not None else None, dict(fields),
                     created_fact.key if created_fact is not None else None,
                     self.off_model_at_creation(status, stage))  # fmt: skip
        if origin is not None:
            plan.written_rows.add(origin.row)
        for fact in changes:
            self._apply(plan, lead_id, items, fact, created, fields)
        plan.created = True
        plan.insert = self._lead_row(lead_id, items, fields, created)
        plan.incomplete = not (fields.get("email") or fields.get("phone"))

    def _merge(self, plan: LeadPlan, existing: ExistingLead, lead_facts: list[Fact], changes: list[Fact]) -> None:
        items = list(existing.items)
        created = existing.created_at
        fields = dict(existing.fields or {})
        filled: dict[str, Any] = {}
        for fact in lead_facts:
            for name, value in (fact.data or {}).items():
                current = fields.get(name)
                if current in (None, ""):
                    fields[name] = filled[name] = value
                    plan.written_rows.add(fact.row)
                elif current != value and name not in filled:
                    plan.field_conflicts += 1  # LeadLedger's value is kept: it may have been edited since
        status_fix, owner_fix, stage_base = self._initial_corrections(existing, lead_facts, changes)
        at_creation = _state_at(items, created)
        status_fix = status_fix if status_fix != at_creation.to_status else None
        owner_fix = owner_fix if owner_fix != at_creation.to_owner else None
        if status_fix is not None or owner_fix is not None or filled:
            status = status_fix or at_creation.to_status
            stage = at_creation.to_stage
            if status_fix is not None:
                stage = self.pulled(stage_base or self._unpulled(at_creation), status)
            owner = owner_fix if owner_fix is not None else at_creation.to_owner
            what = [w for w, fixed in (("status", status_fix), ("owner", owner_fix)) if fixed is not None]
            note = f"{' and '.join(what)} at creation corrected from the imported history" if what else None
            if filled:
                note = (note + "; " if note else "") + "contact fields filled from the lead file"
            off = self.off_model_at_creation(status, stage)
            seq = plan.base_seq + len(plan.entries) + 1
            self._append(plan, existing.id, items,
                         Item(created, seq, "correction", SOURCE, None, None, at_creation.to_status, status,
                              at_creation.to_stage, stage, at_creation.to_owner, owner),
                         None, note, filled, None, off)  # fmt: skip
            plan.corrections += 1
            if status_fix is not None or owner_fix is not None:
                plan.written_rows.update(f.row for f in lead_facts)
        recorded_until = existing.items[-1].at
        if plan.entries and recorded_until > created:
            self._restate(plan, existing.id, items)  # the corrected start holds until a recorded change
        for fact in changes:
            placed = len(plan.entries)
            self._apply(plan, existing.id, items, fact, created, fields)
            if len(plan.entries) > placed and max(fact.at, created) < recorded_until:
                self._restate(plan, existing.id, items)  # placed under entries already recorded
        if plan.entries:
            plan.update_fields = existing.fields is not None and fields != existing.fields
            plan.update = self._projection(existing, items, fields if plan.update_fields else None)
            plan.incomplete = (
                not (fields.get("email") or fields.get("phone")) if plan.update_fields else existing.incomplete
            )

    def _restate(self, plan: LeadPlan, lead_id: str, items: list[Item]) -> None:
        """Make later entries tell the truth after an earlier fact was placed under them.

        Each entry holds the full state after it, so history imported late (a corrected start, an owner
        change older than entries already recorded) leaves the later entries stating an old value. The
        timeline is walked applying only what each entry changed; where an instant ends in another state
        than that, a correction is appended at that instant, restating it. The ledger is never edited.
        """
        status = stage = owner = None
        restated: list[tuple[Item, str, str, str | None]] = []
        index, count = 0, len(items)
        while index < count:
            at = items[index].at
            while index < count and items[index].at == at:
                item = items[index]
                if item.from_status != item.to_status:
                    status = item.to_status
                if item.from_stage != item.to_stage:
                    stage = item.to_stage
                if item.from_owner != item.to_owner:
                    owner = item.to_owner
                index += 1
            last = items[index - 1]
            if (
                status is not None
                and stage is not None
                and (last.to_status, last.to_stage, last.to_owner) != (status, stage, owner)
            ):
                restated.append((last, status, stage, owner))
        for last, status, stage, owner in restated:
            seq = plan.base_seq + len(plan.entries) + 1
            self._append(plan, lead_id, items,
                         Item(last.at, seq, "correction", SOURCE, None, None, last.to_status, status, last.to_stage, stage,
                              last.to_owner, owner),
                         None, "restated: history imported later changed the state before this entry",
                         data=None, key=None, off=self.off_model_at_creation(status, stage))  # fmt: skip
            plan.corrections += 1

    def _initial_corrections(
        self, existing: ExistingLead, lead_facts: list[Fact], changes: list[Fact]
    ) -> tuple[str | None, str | None, str | None]:
        """(status, owner, stage to start from) the lead should have had at creation, when new evidence says so.

        Only a lead created by an import is corrected: a lead created in LeadLedger has its own first entry.
        """
        if not existing.items or existing.items[0].source != SOURCE:
            return None, None, None
        created = existing.created_at
        recorded_status = _first_change(existing.items, "status")
        recorded_owner = _first_change(existing.items, "owner")
        new_status = next((f for f in changes if f.status is not None), None)
        new_owner = next((f for f in changes if f.owner is not None), None)
        lead_fact = lead_facts[0] if lead_facts else None
        status = owner = stage_base = None
        if new_status is not None and new_status.old_status is not None:
            if recorded_status is None or max(new_status.at, created) < recorded_status:
                status = new_status.old_status
        elif lead_fact is not None and new_status is None and recorded_status is None:
            status = lead_fact.status or self.model.initial_status
            stage_base = lead_fact.stage
        if new_owner is not None and new_owner.old_owner is not None:
            if recorded_owner is None or max(new_owner.at, created) < recorded_owner:
                owner = new_owner.old_owner
        elif lead_fact is not None and new_owner is None and recorded_owner is None and lead_fact.owner is not None:
            owner = lead_fact.owner
        return status, owner, stage_base

    def _unpulled(self, item: Item) -> str:
        """The stage at creation before the status at creation pulled it forward."""
        tied = self.model.status_sets_stage.get(item.to_status)
        return self.model.initial_stage if tied == item.to_stage else item.to_stage

    def _apply(
        self,
        plan: LeadPlan,
        lead_id: str,
        items: list[Item],
        fact: Fact,
        created: int,
        fields: dict[str, Any],
    ) -> None:
        """One change onto the timeline at its time; a time before the lead's creation is recorded at it."""
        at, early = fact.at, fact.at < created
        if early:
            at = created
        before = _state_at(items, at)
        status = fact.status or before.to_status
        if fact.stage is not None:
            stage = fact.stage
        elif status != before.to_status:
            stage = self.pulled(before.to_stage, status)
        else:
            stage = before.to_stage
        owner = fact.owner if fact.owner is not None else before.to_owner
        if (status, stage, owner) == (before.to_status, before.to_stage, before.to_owner) and not fact.data:
            return  # it repeats the state the ledger holds at that moment: nothing to record
        off = early or self.off_model(before.to_status, before.to_stage, status, stage)
        note = fact.note
        if early:
            moved = f"dated {to_datetime(fact.at).isoformat()} in the file, before the lead was created: recorded at its creation"
            note = f"{moved}; {note}" if note else moved
        seq = plan.base_seq + len(plan.entries) + 1
        self._append(plan, lead_id, items,
                     Item(at, seq, "change", SOURCE, None, fact.reason, before.to_status, status, before.to_stage, stage,
                          before.to_owner, owner),
                     fact.actor, note, fact.data, fact.key, off)  # fmt: skip
        if fact.data:
            fields.update(fact.data)
        plan.written_rows.add(fact.row)

    def _append(
        self,
        plan: LeadPlan,
        lead_id: str,
        items: list[Item],
        item: Item,
        actor: str | None,
        note: str | None,
        data: dict[str, Any] | None,
        key: str | None,
        off: bool,
    ) -> None:
        """Put the entry in the timeline and its row in the plan (runs once per entry: kept lean)."""
        name = actor or self.importer
        role = self._roles.get(name)
        if role is None:
            known = self.users.get(name)
            role = self._roles[name] = known[0] if known is not None else EXTERNAL_ROLE
        to_owner = item.to_owner
        if to_owner is not None and to_owner != item.from_owner and to_owner not in self.users:
            plan.new_owners.append(to_owner)
        # same-instant entries keep their order: a later seq at an equal time goes after the earlier ones;
        # history mostly arrives in time order, so the place is found from the end
        at = item.at
        position = len(items)
        while position and items[position - 1].at > at:
            position -= 1
        items.insert(position, item)
        plan.entries.append((
            lead_id, item.seq, self.stamp(at), self.recorded_at, item.kind, name, role, SOURCE, item.from_status,
            item.to_status, item.from_stage, item.to_stage, item.from_owner, to_owner, item.reason, note,
            to_json(data) if data else None, None, None, None, key, off,
        ))  # fmt: skip
        if off:
            plan.off_model += 1

    # --- the projection ----------------------------------------------------------------------------

    def _fold(self, items: list[Item]) -> tuple[Any, ...]:
        """The projection of a timeline (domain.timeline.fold), as the columns the rows below take.

        (owner, status, stage, status_since, stage_since, updated_at, version, status_entry_seq,
        status_source, status_rule, prev_status, reason)
        """
        p = fold(items)
        return (p.owner, p.status, p.stage, p.status_since, p.stage_since, p.updated_at, p.version,
                p.status_entry_seq, p.status_source, p.status_rule, p.prev_status, p.reason)  # fmt: skip

    def _split_fields(self, fields: dict[str, Any]) -> tuple[list[Any], str | None]:
        columns = [fields.get(name) or None for name in CONTACT_COLUMNS]
        extra = {k: v for k, v in fields.items() if k not in CONTACT_COLUMNS and v not in (None, "")}
        return columns, to_json(extra) if extra else None

    def _team(self, owner: str | None) -> str | None:
        known = self.users.get(owner) if owner else None
        return known[1] if known is not None else None

    def _lead_row(self, lead_id: str, items: list[Item], fields: dict[str, Any], created: int) -> tuple[Any, ...]:
        owner, status, stage, status_since, stage_since, updated, version, *entry = self._fold(items)
        columns, extra = self._split_fields(fields)
        stamp = self.stamp
        return (
            lead_id, *columns, owner, self._team(owner), status, stage, stamp(status_since), stamp(stage_since),
            stamp(created), stamp(updated), version, *entry, not (fields.get("email") or fields.get("phone")), extra,
            *_keys(fields), None,  # due_at: `store.due.refresh` sets it once the rows are in
        )  # fmt: skip

    def _projection(self, existing: ExistingLead, items: list[Item], fields: dict[str, Any] | None) -> tuple[Any, ...]:
        owner, status, stage, status_since, stage_since, updated, version, *entry = self._fold(items)
        stamp = self.stamp
        values: tuple[Any, ...] = (
            owner, self._team(owner), status, stage, stamp(status_since), stamp(stage_since), stamp(updated),
            version, *entry,
        )  # fmt: skip
        if fields is not None:
            columns, extra = self._split_fields(fields)
            values += (*columns, not (fields.get("email") or fields.get("phone")), extra, *_keys(fields))
        return (*values, existing.id, existing.version)


def _keys(fields: dict[str, Any]) -> tuple[str | None, ...]:
    keys = lead_keys(fields.get("email") or None, fields.get("phone") or None, fields.get("company") or None)
    return tuple(keys[c] for c in KEY_COLUMNS)


_fact_order = attrgetter("at", "kind", "row")  # facts of one lead: by time; at one instant, a record first


def _state_at(items: list[Item], at: int) -> Item:
    """The entry holding the state at `at`: the last one at or before it (the first one if all are later)."""
    position = len(items)
    while position and items[position - 1].at > at:
        position -= 1
    return items[position - 1] if position else items[0]


def _first_change(items: Iterable[Item], what: str) -> int | None:
    """When a recorded change (not the creation, not a correction) first moved the lead's status (or owner)."""
    previous: Item | None = None
    for item in items:
        if previous is not None and item.kind == "change":
            if what == "status" and item.to_status != previous.to_status:
                return item.at
            if what == "owner" and item.to_owner != previous.to_owner:
                return item.at
        previous = item
    return None


def _chain_order(changes: list[Fact]) -> list[Fact]:
    """Status changes recorded in the same second: order them so each OldValue follows the NewValue before it."""
    if len({f.at for f in changes}) == len(changes):
        return changes  # no two at the same instant: nothing to order
    ordered: list[Fact] = []
    start, count = 0, len(changes)
    while start < count:
        end = start + 1
        while end < count and changes[end].at == changes[start].at:
            end += 1
        group = changes[start:end]
        chained = [f for f in group if f.old_status is not None]
        if len(chained) > 1:
            others = [f for f in group if f.old_status is None]
            targets = {f.status for f in chained}
            first = next((f for f in chained if f.old_status not in targets), chained[0])
            chain = [first]
            rest = [f for f in chained if f is not first]
            while rest:
                follower = next((f for f in rest if f.old_status == chain[-1].status), rest[0])
                chain.append(follower)
                rest.remove(follower)
            group = others + chain
        ordered.extend(group)
        start = end
    return ordered
