"""Time in the model: SLA clocks per status and time rules ("in STATUS for N (business) time -> action").

Durations can be calendar time or business time on the responsible team's calendar; business days mean
"the same time of day N business days later". `replay_slas` computes SLA instances from a lead's recorded
timeline: the rebuild of SLA records and the rule backtest both use it, so they agree with each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadledger.domain.calendar import BusinessCalendar
from leadledger.domain.durations import parse_duration


@dataclass(frozen=True)
class Duration:
    """A span of calendar time, business time (hours/minutes) or business days."""

    text: str
    span: timedelta
    business: bool = False

    @classmethod
    def parse(cls, text: str | int, business: bool = False) -> Duration:
        return cls(str(text), parse_duration(text), business)

    @property
    def business_days(self) -> int | None:
        """Whole business days when the text counts days on a business calendar (`5d`), else None."""
        if self.business and self.text.strip().endswith(("d", "w")):
            return int(self.span.total_seconds() // 86400)
        return None

    def after(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        """When this much time has passed since `start`."""
        if not self.business:
            return start + self.span
        days = self.business_days
        if days is not None:
            return calendar.add_business_days(start, days)
        return calendar.add_business_time(start, self.span)

    def cutoff(self, calendar: BusinessCalendar, now: datetime) -> datetime:
        """The latest start from which this much time has passed by `now` (one comparison in SQL)."""
        if not self.business:
            return now - self.span
        days = self.business_days
        if days is not None:
            return calendar.subtract_business_days(now, days)
        return calendar.subtract_business_time(now, self.span)

    def describe(self) -> str:
        return f"{self.text} business" if self.business else self.text


@dataclass(frozen=True)
class SlaSpec:
    """A service level: entering `statuses` starts a clock that must be met within `target`.

    `kind="status"`: met on entering one of `met_on` (or on leaving `statuses` and `continues_in` when
    `met_on` is empty); leaving to anything else cancels it. `kind="activity"`: while in `statuses`, an
    activity of `activity_types` must be logged every `target`; each one meets the clock and starts the next.
    """

    name: str
    statuses: frozenset[str]
    target: Duration
    kind: str = "status"
    met_on: frozenset[str] = frozenset()
    continues_in: frozenset[str] = frozenset()
    activity_types: frozenset[str] = frozenset()
    description: str = ""

    def covers(self, status: str) -> bool:
        return status in self.statuses or status in self.continues_in

    def outcome_of_move(self, to_status: str) -> str | None:
        """What a status change does to an open clock: None (keeps running), "met" or "cancelled"."""
        if self.kind == "activity":
            return None if to_status in self.statuses else "met"  # it left the status in time
        if to_status in self.met_on:
            return "met"
        if self.covers(to_status):
            return None
        return "cancelled" if self.met_on else "met"

    def counts_activity(self, activity_type: str) -> bool:
        return self.kind == "activity" and (not self.activity_types or activity_type in self.activity_types)


@dataclass(frozen=True)
class TimeAction:
    kind: str  # notify | escalate | task | move
    to: tuple[str, ...] = ()  # recipients for notify/escalate: owner | manager | role:<role> | a user name
    message: str = ""
    status: str | None = None  # for move
    reason: str | None = None  # for move
    due: timedelta | None = None  # for task


@dataclass(frozen=True)
class TimeRule:
    """ "In STATUS for N (business) time [with no activity | after N attempts | past a date field] -> action"."""

    name: str
    statuses: frozenset[str]
    action: TimeAction
    after: Duration | None = None
    since: str = "status"  # status | created | activity (the last activity in the stint, or entering it)
    min_attempts: int | None = None
    attempt_types: frozenset[str] = frozenset()
    date_field: str | None = None  # fires when this lead field (a date) is on or before today
    group_by: str | None = None  # e.g. company: fires once per group whose leads are all in `statuses`
    min_group: int = 2
    description: str = ""


@dataclass(frozen=True)
class SlaInstance:
    """One SLA clock: who was responsible, when it started and was due, and how it ended."""

    sla: str
    lead_id: str
    started_at: datetime
    due_at: datetime
    responsible: str | None
    status: str  # open | met | breached | cancelled
    closed_at: datetime | None = None
    breached: bool = False


@dataclass(frozen=True)
class TimelineStep:
    """One moment of a lead's history, in time order: a status change or a logged activity."""

    at: datetime
    status: str | None = None  # the status after a change (None for an activity)
    owner: str | None = None
    activity: str | None = None


def replay_slas(
    specs: Sequence[SlaSpec],
    lead_id: str,
    steps: Iterable[TimelineStep],
    calendar_for: Callable[[str | None], BusinessCalendar],
    now: datetime,
) -> list[SlaInstance]:
    """Every SLA instance a lead's recorded timeline produces, judged at `now`."""
    results: list[SlaInstance] = []
    open_clocks: dict[str, tuple[datetime, datetime, str | None]] = {}
    status: str | None = None
    owner: str | None = None

    def close(spec: SlaSpec, at: datetime, outcome: str) -> None:
        started, due, responsible = open_clocks.pop(spec.name)
        late = at > due
        final = "breached" if outcome == "met" and late else outcome
        if outcome == "cancelled" and late:
            final = "breached"  # it ran out before the lead moved on
        results.append(SlaInstance(spec.name, lead_id, started, due, responsible, final, at, late))

    def start(spec: SlaSpec, at: datetime) -> None:
        open_clocks[spec.name] = (at, spec.target.after(calendar_for(owner), at), owner)

    for step in steps:
        if step.activity is not None:
            for spec in specs:
                if spec.name in open_clocks and spec.counts_activity(step.activity) and status in spec.statuses:
                    close(spec, step.at, "met")
                    start(spec, step.at)
            continue
        if step.owner != owner:  # an open clock is whoever owns the lead now (a routed lead's first contact)
            owner = step.owner
            for name, (started, due, _responsible) in list(open_clocks.items()):
                open_clocks[name] = (started, due, owner)
        if step.status == status:
            continue
        previous, status = status, step.status
        for spec in specs:
            if spec.name in open_clocks:
                outcome = spec.outcome_of_move(status or "")
                if outcome is not None:
                    close(spec, step.at, outcome)
            if spec.name not in open_clocks and status in spec.statuses and previous not in spec.statuses:
                start(spec, step.at)
    for name, (started, due, responsible) in open_clocks.items():
        breached = due <= now
        results.append(SlaInstance(name, lead_id, started, due, responsible, "breached" if breached else "open", None,
                                   breached))  # fmt: skip
    return results


def sla_specs_by_status(specs: Sequence[SlaSpec]) -> Mapping[str, list[SlaSpec]]:
    index: dict[str, list[SlaSpec]] = {}
    for spec in specs:
        for status in spec.statuses:
            index.setdefault(status, []).append(spec)
    return index
