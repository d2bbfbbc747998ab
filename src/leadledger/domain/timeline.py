"""A lead's timeline: the one fold from ledger entries to the lead's state, and the one SLA clock step.

Entries are read in (`at`, `seq`) order. Entries of one lead at the same `at` are one *instant*: the last
of them holds the state, and a status is entered at an instant only when the instant ends in another status
than the one before it — a status entered and left within one instant (superseded) never held. The entry
that set the status is the instant's last status-changing entry. The live write path, bulk history (demo,
import) and the analytics' stint tables all read a timeline this way; `Projection` is the only Python
implementation of it.

A `migration` entry (a model version dropped the key the lead was in; `domain.migrations`) renames the
status without entering it: the lead has been in the new key since it entered the old one.

Times are whatever the caller orders them by (aware datetimes live, integer microseconds in the importer):
only equality and order are used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableSequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from leadledger.domain.changes import AutomatedChange, LeadState
from leadledger.domain.migrations import MIGRATION_SOURCE
from leadledger.domain.statusmodel import AUTOMATED_SOURCES
from leadledger.domain.timerules import SlaSpec


class EntryLike(Protocol):
    """What the fold reads of a ledger entry (a stored row, an importer's plan item...)."""

    @property
    def at(self) -> Any: ...
    @property
    def seq(self) -> int: ...
    @property
    def from_status(self) -> str | None: ...
    @property
    def to_status(self) -> str: ...
    @property
    def to_stage(self) -> str: ...
    @property
    def to_owner(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...


class Projection:
    """A lead's state after the entries folded so far: what the `leads` row stores besides contact fields.

    `add` takes entries in time order; `fold` a whole timeline. A projection read back from storage
    (`resume`) does not know the state before its last instant, so an entry at that same instant needs the
    lead's ledger folded again (`needs_refold` says when).
    """

    __slots__ = (
        "_at",
        "_base",
        "_changer",
        "created_at",
        "fields",
        "owner",
        "prev_status",
        "reason",
        "stage",
        "stage_since",
        "status",
        "status_entry_seq",
        "status_rule",
        "status_since",
        "status_source",
        "updated_at",
        "version",
    )

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        self.status: str | None = None
        self.stage: str | None = None
        self.owner: str | None = None
        self.created_at: Any = None
        self.updated_at: Any = None
        self.version = 0
        self.status_since: Any = None
        self.stage_since: Any = None
        self.status_entry_seq: int | None = None
        self.status_source: str | None = None
        self.status_rule: str | None = None
        self.prev_status: str | None = None
        self.reason: str | None = None
        self.fields: dict[str, Any] = dict(fields or {})
        self._at: Any = None  # the instant folded last
        self._base: tuple[Any, ...] | None = ()  # the state before that instant; None: not known (resumed)
        self._changer: tuple[Any, ...] | None = None  # the instant's last status-changing entry

    @classmethod
    def resume(
        cls,
        *,
        status: str,
        stage: str,
        owner: str | None,
        created_at: Any,
        updated_at: Any,
        version: int,
        status_since: Any,
        stage_since: Any,
        status_entry_seq: int | None,
        status_source: str | None,
        status_rule: str | None,
        prev_status: str | None,
        reason: str | None,
        fields: Mapping[str, Any] | None = None,
    ) -> Projection:
        """A projection as stored, ready to take the entries that follow it."""
        p = cls(fields)
        p.status, p.stage, p.owner = status, stage, owner
        p.created_at, p.updated_at, p.version = created_at, updated_at, version
        p.status_since, p.stage_since = status_since, stage_since
        p.status_entry_seq, p.status_source, p.status_rule = status_entry_seq, status_source, status_rule
        p.prev_status, p.reason = prev_status, reason
        p._at, p._base = updated_at, None
        return p

    def needs_refold(self, at: Any) -> bool:
        """True when an entry at `at` would continue an instant whose starting state this projection lacks."""
        return self._base is None and at == self._at

    def add(
        self,
        at: Any,
        seq: int,
        from_status: str | None,
        to_status: str,
        to_stage: str,
        to_owner: str | None,
        source: str,
        rule: str | None,
        reason: str | None,
    ) -> None:
        """Fold one more entry (not earlier than the last one folded)."""
        if at != self._at:
            if self._at is not None and at < self._at:
                raise ValueError(f"entry {seq} at {at!r} is earlier than the timeline's last instant {self._at!r}")
            self._base = (self.status, self.stage, self.status_since, self.stage_since, self.status_entry_seq,
                          self.status_source, self.status_rule, self.prev_status, self.reason)  # fmt: skip
            self._at, self._changer = at, None
            if self.created_at is None:
                self.created_at = at
        elif self._base is None:
            raise ValueError("an entry at the last instant of a resumed projection: fold the lead's ledger instead")
        entry = (seq, source, rule, reason)
        if from_status != to_status:
            self._changer = entry
        base = self._base
        assert base is not None
        if to_status != base[0] and source == MIGRATION_SOURCE and from_status == base[0]:
            # a model migration renames the status the lead is in: it has been in it since it entered the old key
            self.status, self.status_since = to_status, base[2]
            self.status_entry_seq, self.status_source, self.status_rule, self.prev_status, self.reason = base[4:]
        elif to_status != base[0]:
            setter = self._changer or entry
            self.status_entry_seq, self.status_source, self.status_rule, self.reason = setter
            self.prev_status, self.status, self.status_since = base[0], to_status, at
        else:  # the instant ends where it began: whatever it passed through never held
            self.status, self.status_since = base[0], base[2]
            self.status_entry_seq, self.status_source, self.status_rule, self.prev_status, self.reason = base[4:]
        if to_stage != base[1]:
            self.stage, self.stage_since = to_stage, at
        else:
            self.stage, self.stage_since = base[1], base[3]
        self.owner = to_owner
        self.updated_at = at
        if seq > self.version:
            self.version = seq

    def add_entry(self, entry: EntryLike) -> None:
        self.add(entry.at, entry.seq, entry.from_status, entry.to_status, entry.to_stage, entry.to_owner,
                 entry.source, entry.rule, entry.reason)  # fmt: skip

    def set_fields(self, values: Mapping[str, Any]) -> None:
        """Fields a change sets: a value replaces, None removes."""
        fields = self.fields
        for name, value in values.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value

    @property
    def last_automated(self) -> AutomatedChange | None:
        """The automated change that set the current status, if automation set it."""
        if self.status_source in AUTOMATED_SOURCES and self.status_entry_seq is not None and self.status:
            return AutomatedChange(self.status_entry_seq, self.status_rule, self.prev_status, self.status)
        return None

    def state(self, lead_id: str) -> LeadState:
        """What the engine judges a change against."""
        assert self.status is not None and self.stage is not None
        return LeadState(
            id=lead_id,
            status=self.status,
            stage=self.stage,
            owner=self.owner,
            fields=self.fields,
            version=self.version,
            last_at=self.updated_at,
            last_automated=self.last_automated,
        )


def fold(entries: Iterable[EntryLike], fields: Mapping[str, Any] | None = None) -> Projection:
    """The projection of a whole timeline (entries in (`at`, `seq`) order)."""
    projection = Projection(fields)
    for entry in entries:
        projection.add_entry(entry)
    return projection


# --- SLA clocks -------------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class SlaClock:
    """One SLA clock: started when a lead entered a status its SLA covers, closed met, breached or cancelled.

    `ref` is the store's handle for the clock's row (None until it is written).
    """

    sla: str
    started_at: datetime
    due_at: datetime
    responsible: str | None
    status: str = "open"
    closed_at: datetime | None = None
    breached_at: datetime | None = None
    ref: Any = None

    def close(self, outcome: str, at: datetime) -> None:
        """Met or cancelled at `at` — or breached, when `at` is past the due time."""
        late = at > self.due_at
        self.status = "breached" if late else outcome
        self.closed_at = at
        if late and self.breached_at is None:
            self.breached_at = self.due_at


DueAt = Callable[[SlaSpec, datetime], datetime]  # when a clock of this SLA started at this instant is due


def clocks_on_status(
    specs: Iterable[SlaSpec],
    open_clocks: MutableSequence[SlaClock],
    previous: str | None,
    status: str,
    at: datetime,
    responsible: str | None,
    due_at: DueAt,
) -> tuple[list[SlaClock], list[SlaClock]]:
    """A status change: close the open clocks it ends, start those it begins; returns (closed, started).

    `open_clocks` is updated in place. A clock whose SLA left the model is cancelled.
    """
    by_name = {spec.name: spec for spec in specs}
    closed: list[SlaClock] = []
    for clock in list(open_clocks):
        spec = by_name.get(clock.sla)
        outcome = spec.outcome_of_move(status) if spec is not None else "cancelled"
        if outcome is not None:
            clock.close(outcome, at)
            open_clocks.remove(clock)
            closed.append(clock)
    running = {clock.sla for clock in open_clocks}
    started: list[SlaClock] = []
    for spec in by_name.values():
        if status in spec.statuses and previous not in spec.statuses and spec.name not in running:
            clock = SlaClock(spec.name, at, due_at(spec, at), responsible)
            open_clocks.append(clock)
            started.append(clock)
    return closed, started


def clocks_on_activity(
    specs: Iterable[SlaSpec],
    open_clocks: MutableSequence[SlaClock],
    status: str | None,
    activity_type: str,
    at: datetime,
    responsible: str | None,
    due_at: DueAt,
) -> tuple[list[SlaClock], list[SlaClock]]:
    """A logged activity meets each open activity clock it counts for, and starts its next one."""
    by_name = {spec.name: spec for spec in specs}
    closed: list[SlaClock] = []
    started: list[SlaClock] = []
    for clock in list(open_clocks):
        spec = by_name.get(clock.sla)
        if spec is None or not spec.counts_activity(activity_type) or status not in spec.statuses:
            continue
        if at < clock.started_at:
            continue
        clock.close("met", at)
        open_clocks.remove(clock)
        closed.append(clock)
        fresh = SlaClock(spec.name, at, due_at(spec, at), responsible)
        open_clocks.append(fresh)
        started.append(fresh)
    return closed, started


def clocks_on_owner(
    open_clocks: Iterable[SlaClock], owner: str | None, specs: Iterable[SlaSpec] = (), due_at: DueAt | None = None
) -> list[SlaClock]:
    """An open clock is its lead's current owner's responsibility (a routed lead's first-contact clock too).

    A clock started while nobody owned the lead is timed, from its start, by `due_at` (the new owner's team
    calendar): a Berlin rep's first contact runs on Berlin hours, not on the default calendar's.
    """
    by_name = {spec.name: spec for spec in specs}
    changed = []
    for clock in open_clocks:
        if clock.responsible != owner:
            spec = by_name.get(clock.sla)
            if clock.responsible is None and owner is not None and clock.status == "open" and due_at and spec:
                clock.due_at = due_at(spec, clock.started_at)
            clock.responsible = owner
            changed.append(clock)
    return changed


@dataclass(frozen=True)
class TimelineStep:
    """One moment of a lead's recorded history, in time order: a status change or a logged activity."""

    at: datetime
    status: str | None = None  # the status after a change (None for an activity)
    owner: str | None = None
    activity: str | None = None


def instants(steps: Iterable[TimelineStep]) -> list[TimelineStep]:
    """The timeline with the status changes of one instant collapsed into the last of them.

    As `Projection` reads a timeline: a status superseded within its instant never held, so it neither starts
    nor ends an SLA clock (an import's "created New, then Working" at one instant is a lead created Working).
    Activities stay where they are; steps come in time order, activities before the changes of their instant.
    """
    out: list[TimelineStep] = []
    for step in steps:
        if step.activity is None and out and out[-1].activity is None and out[-1].at == step.at:
            out[-1] = step
        else:
            out.append(step)
    return out


def replay_slas(
    specs: Iterable[SlaSpec],
    steps: Iterable[TimelineStep],
    calendar_due: Callable[[str | None], DueAt],
    now: datetime,
) -> list[SlaClock]:
    """Every SLA clock a lead's recorded timeline produces, judged at `now` (the live path's steps, replayed).

    `calendar_due(owner)` says when a clock started while `owner` held the lead is due. The status changes
    of one instant count as one (`instants`).
    """
    specs = tuple(specs)
    results: list[SlaClock] = []
    open_clocks: list[SlaClock] = []
    status: str | None = None
    owner: str | None = None
    for step in instants(steps):
        if step.activity is not None:
            closed, _ = clocks_on_activity(specs, open_clocks, status, step.activity, step.at, owner,
                                           calendar_due(owner))  # fmt: skip
            results.extend(closed)
            continue
        if step.owner != owner:
            owner = step.owner
            clocks_on_owner(open_clocks, owner, specs, calendar_due(owner))
        if step.status == status or step.status is None:
            continue
        previous, status = status, step.status
        closed, _ = clocks_on_status(specs, open_clocks, previous, status, step.at, owner, calendar_due(owner))
        results.extend(closed)
    for clock in open_clocks:
        if clock.due_at <= now:
            clock.status, clock.breached_at = "breached", clock.due_at
        results.append(clock)
    return results
