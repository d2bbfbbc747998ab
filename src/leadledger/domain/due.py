"""When a lead's time rules can next fire: the `due_at` the sweep selects leads by (an indexed column).

A lead's due-at is the earliest instant at which any (per-lead) time rule could fire for its current stint.
It is a lower bound, never later than the real instant: the sweep reads only leads whose due-at has come,
judges them with the rules' own conditions, and then moves the due-at forward with what it read (the
stint's activities and the rules already fired). What a writer does not know yet is assumed the way that
makes the bound earlier, never later:

- "N (business) time in the status / since creation": `Duration.after(calendar, start)`, the instant the
  sweep's cutoff (`Duration.cutoff`, its inverse) first lets the start through.
- "no activity for N": N after the later of entering the status and the stint's last activity up to `now`
  (an activity logged later only moves the real instant later; not read: N after entering the status).
- "N attempts": the instant the N-th counted activity of the stint happened (too few: never, until an
  activity is logged, which lowers the due-at to its own instant; not read: entering the status).
- "past a date field": local midnight (default calendar) of the first day whose ISO text is not before
  the value, as the sweep compares them (a value that is not text: at once, every sweep).
- a rule with several conditions: the latest of them; a rule already fired in this stint: none.

Group rules (every lead of a company in Nurture) are not per lead: the sweep evaluates them as before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from leadledger.domain.calendar import BusinessCalendar
from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timerules import TimeRule

FLOOR = datetime(1970, 1, 1, tzinfo=UTC)  # no due-at is earlier than this (a date field of "" or "0001")


@dataclass(frozen=True, slots=True)
class DueFacts:
    """What the due-at of a lead's current stint depends on.

    `activities` (type, at) of the stint (at or after `status_since`) and `fired` (the rules fired for this
    stint; since-creation rules: ever) are None when the writer did not read them.
    """

    status: str
    status_since: datetime
    created_at: datetime
    fields: Mapping[str, Any]
    calendar: BusinessCalendar  # the lead's team's calendar (the model's default when it has none)
    activities: Sequence[tuple[str, datetime]] | None = None
    fired: Collection[str] | None = None
    now: datetime | None = None  # activities are known up to this instant


def due_at(model: StatusModel, facts: DueFacts) -> datetime | None:
    """The earliest instant any per-lead time rule could fire for this stint; None: no rule can."""
    best: datetime | None = None
    for rule in model.time_rules:
        if rule.group_by is not None:
            continue
        at = rule_due(model, rule, facts)
        if at is not None and (best is None or at < best):
            best = at
    return best


def rule_due(model: StatusModel, rule: TimeRule, facts: DueFacts) -> datetime | None:
    """The earliest instant one rule could fire for this stint (a lower bound); None: not in this stint."""
    if facts.status not in rule.statuses or (facts.fired is not None and rule.name in facts.fired):
        return None
    parts: list[datetime] = [FLOOR]  # a rule with no condition but the status: at every sweep
    if rule.after is not None:
        start = facts.created_at if rule.since == "created" else facts.status_since
        if rule.since == "activity" and facts.activities is not None:
            last = _last_activity(facts.activities, facts.status_since, facts.now)
            if last is not None and last > start:
                start = last
        parts.append(rule.after.after(facts.calendar, start))
    if rule.min_attempts is not None:
        attempt = _nth_attempt(rule, facts)
        if attempt is None:
            return None
        parts.append(attempt)
    if rule.date_field is not None:
        value = facts.fields.get(rule.date_field)
        if value is None:
            return None
        day_due = _date_due(model, value)
        if day_due is None:
            return None
        parts.append(day_due)
    return max(parts)


def activity_due(model: StatusModel, status: str, status_since: datetime, type_: str, at: datetime) -> datetime | None:
    """How early a newly logged activity can make an attempts rule fire: its own instant, when it counts."""
    if at < status_since:
        return None
    for rule in model.time_rules:
        if (rule.min_attempts is not None and rule.group_by is None and status in rule.statuses
                and (not rule.attempt_types or type_ in rule.attempt_types)):  # fmt: skip
            return max(at, FLOOR)
    return None


def _last_activity(
    activities: Sequence[tuple[str, datetime]], since: datetime, now: datetime | None
) -> datetime | None:
    known = [at for _, at in activities if at >= since and (now is None or at <= now)]
    return max(known) if known else None


def _nth_attempt(rule: TimeRule, facts: DueFacts) -> datetime | None:
    if facts.activities is None:
        return facts.status_since  # not read: any time from entering the status
    types = rule.attempt_types
    counted = sorted(at for type_, at in facts.activities if at >= facts.status_since and (not types or type_ in types))
    needed = rule.min_attempts or 0
    if needed <= 0:
        return facts.status_since
    return counted[needed - 1] if len(counted) >= needed else None


def _date_due(model: StatusModel, value: Any) -> datetime | None:
    """Local midnight of the first day `day.isoformat() >= value` (the sweep compares the texts); None: no
    such day."""
    if not isinstance(value, str):
        return FLOOR  # the database compares a number or a flag its own way: judged at every sweep
    low, high = date.min.toordinal(), date.max.toordinal()
    if date.max.isoformat() < value:
        return None
    while low < high:  # ISO day texts sort like the days: the first one not before the value
        middle = (low + high) // 2
        if date.fromordinal(middle).isoformat() < value:
            low = middle + 1
        else:
            high = middle
    day = date.fromordinal(low)
    if day.year < FLOOR.year:
        return FLOOR
    tz = model.calendar(None).tz
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
