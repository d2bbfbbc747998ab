"""Time in the model: SLA clocks per status and time rules ("in STATUS for N (business) time -> action").

Durations can be calendar time or business time on the responsible team's calendar; business days mean
"the same time of day N business days later". How a clock runs along a lead's timeline is in `timeline`.
"""

from __future__ import annotations

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
