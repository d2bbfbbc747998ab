"""Automation as data: event rules, on-enter actions, approvals, routing pools, event types and templates.

Compiled from the model file by the loader; the service layer asks these objects what to do, and the
domain answers without I/O. A rule never reacts to its own output: every change a rule makes carries the
chain of rules that caused it and its depth, and `rules_for` skips a rule already in the chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from leadledger.domain.conditions import ALWAYS, Condition
from leadledger.domain.durations import parse_duration

# Event types every model knows, with the data values that must be valid when present.
BUILTIN_EVENT_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    "email_sent": {},
    "email_replied": {"classification": ("positive", "neutral", "unsubscribe", "out_of_office", "bounce")},
    "email_opened": {},  # a tracking pixel fired: engagement, not contact (no default rule moves a lead on it)
    "call_logged": {"outcome": ("connected", "voicemail", "no_answer")},
    "meeting_scheduled": {},
    "meeting_held": {},
    "form_submitted": {},
    "opportunity_created": {},
    "linkedin_message_sent": {},
    "voicemail_left": {},
    "sms_sent": {},
}
REQUIRED_EVENT_DATA = {"email_replied": ("classification",), "call_logged": ("outcome",)}
# Who may submit each event type when the model does not say (`event_types: {NAME: {roles: [...]}}`): what a
# person does and logs (a call, an e-mail sent, a meeting) may come from the person who did it; what only a
# system can witness (a form, a reply, an open, an opportunity) comes from integrations. Ops may submit anything (ops can
# mint an integration's token anyway; this way the ledger names the person). Custom types default to the strict set.
PEOPLE_AND_SYSTEMS = frozenset({"rep", "manager", "ops", "integration"})
SYSTEMS_ONLY = frozenset({"integration", "ops"})
BUILTIN_EVENT_ROLES: dict[str, frozenset[str]] = {
    "email_sent": PEOPLE_AND_SYSTEMS,
    "email_replied": SYSTEMS_ONLY,
    "email_opened": SYSTEMS_ONLY,
    "call_logged": PEOPLE_AND_SYSTEMS,
    "meeting_scheduled": PEOPLE_AND_SYSTEMS,
    "meeting_held": PEOPLE_AND_SYSTEMS,
    "form_submitted": SYSTEMS_ONLY,
    "opportunity_created": SYSTEMS_ONLY,
    "linkedin_message_sent": PEOPLE_AND_SYSTEMS,
    "voicemail_left": PEOPLE_AND_SYSTEMS,
    "sms_sent": PEOPLE_AND_SYSTEMS,
}
DEFAULT_EVENT_ROLES = SYSTEMS_ONLY
# Emitted after every status change, so a rule can react to a status (with causation and depth carried).
STATUS_ENTERED = "status_entered"
MAX_DEPTH = 5


@dataclass(frozen=True)
class EventType:
    name: str
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # data key -> allowed values
    required: tuple[str, ...] = ()
    roles: frozenset[str] = DEFAULT_EVENT_ROLES  # who may submit it (an event sets rules off in their name)

    def check(self, data: Mapping[str, Any]) -> list[str]:
        """Problems with an event's data, each naming the key."""
        problems = [f"data.{key} is required for {self.name}" for key in self.required if not data.get(key)]
        for key, allowed in self.values.items():
            value = data.get(key)
            if value not in (None, "") and allowed and str(value) not in allowed:
                problems.append(f"data.{key} {value!r} is not one of: {', '.join(allowed)}")
        return problems


@dataclass(frozen=True)
class EventRule:
    """When an event of one of `on` happens and `when` holds: change the lead's status/stage, set fields."""

    name: str
    on: frozenset[str]
    when: Condition = ALWAYS
    set_status: str | None = None
    set_stage: str | None = None
    reason: str | None = None
    fields: tuple[tuple[str, Any], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class TaskAction:
    """A task for a person. It belongs to the statuses in `while_in` (default: the status that opened it):
    the lead leaving them closes it, and it can be completed otherwise only with a stated reason."""

    title: str
    due: timedelta
    business_time: bool = True
    assignee: str = "owner"  # owner | manager | a user name
    while_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotifyAction:
    to: tuple[str, ...]  # owner | manager | role:<role> | a user name
    message: str
    email: bool = True  # also by e-mail when SMTP is configured and the user has an address


@dataclass(frozen=True)
class RouteAction:
    pool: str | None = None  # None: the routing rules choose the pool from the lead's fields
    user: str | None = None  # a fixed owner (e.g. the marketing owner for Nurture)
    exclude_previous_owners: bool = False  # seed 000: recycled leads go to a different rep


@dataclass(frozen=True)
class WebhookAction:
    endpoint: str
    event: str


@dataclass(frozen=True)
class EmailAction:
    template: str
    to: str = "lead"


ActionSpec = TaskAction | NotifyAction | RouteAction | WebhookAction | EmailAction


@dataclass(frozen=True)
class Action:
    """One on-enter action with its guard and the name it is reported under."""

    name: str
    spec: ActionSpec
    when: Condition = ALWAYS


@dataclass(frozen=True)
class ApprovalRule:
    """A move that waits for a decision: e.g. a high-value lead to Disqualified needs a manager."""

    name: str
    to: frozenset[str]
    when: Condition
    approvers: frozenset[str]
    description: str = ""


@dataclass(frozen=True)
class Pool:
    """People a lead can be routed to: a team's active reps or a list, with a strategy and a capacity."""

    name: str
    team: str | None
    members: tuple[str, ...]
    weights: Mapping[str, int]
    strategy: str  # round_robin | weighted | least_loaded
    capacity: int | None = None
    roles: frozenset[str] = frozenset({"rep"})


@dataclass(frozen=True)
class RoutingRule:
    pool: str
    when: Condition = ALWAYS


@dataclass(frozen=True)
class Template:
    subject: str
    body: str

    def uses(self, namespace: str, key: str) -> bool:
        """Whether `{namespace.key}` appears in the subject or the body."""
        return any(
            (m.group(1), m.group(2)) == (namespace, key) for m in _PLACEHOLDER.finditer(self.subject + self.body)
        )


@dataclass(frozen=True)
class Automation:
    """Everything automatic in a model; empty when the model declares none."""

    rules: tuple[EventRule, ...] = ()
    on_enter: Mapping[str, tuple[Action, ...]] = field(default_factory=dict)
    approvals: tuple[ApprovalRule, ...] = ()
    pools: Mapping[str, Pool] = field(default_factory=dict)
    routing_rules: tuple[RoutingRule, ...] = ()
    routing_seed: int = 0
    templates: Mapping[str, Template] = field(default_factory=dict)
    event_types: Mapping[str, EventType] = field(default_factory=dict)
    max_depth: int = MAX_DEPTH

    def rules_for(
        self, event_type: str, context: Mapping[str, Mapping[str, Any]], caused_by: tuple[str, ...] = ()
    ) -> list[EventRule]:
        """Rules that fire for this event, in model order; a rule in the causation chain never fires again."""
        if len(caused_by) >= self.max_depth:
            return []
        return [r for r in self.rules if event_type in r.on and r.name not in caused_by and r.when(context)]

    def approval_for(self, to_status: str, context: Mapping[str, Mapping[str, Any]]) -> ApprovalRule | None:
        for rule in self.approvals:
            if to_status in rule.to and rule.when(context):
                return rule
        return None

    def pool_for(self, context: Mapping[str, Mapping[str, Any]]) -> str | None:
        for rule in self.routing_rules:
            if rule.when(context):
                return rule.pool
        return None

    def event_type(self, name: str) -> EventType | None:
        return self.event_types.get(name)


_PLACEHOLDER = re.compile(r"\{(event|lead|change|owner)\.([a-zA-Z0-9_]+)\}")


def render(template: str, context: Mapping[str, Mapping[str, Any]]) -> str:
    """Fill `{lead.name}`-style placeholders from the context; unknown ones become empty (no attribute access)."""

    def lookup(match: re.Match[str]) -> str:
        value = context.get(match.group(1), {}).get(match.group(2))
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(lookup, template)


def field_value(raw: Any, context: Mapping[str, Mapping[str, Any]], at: datetime) -> Any:
    """A value a rule sets: a template (`{event.opportunity_id}`), a time relative to the event (`+2d`), or a constant.

    A template that is exactly one placeholder keeps the value's type (a number stays a number).
    """
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text.startswith("+"):
        return (at + parse_duration(text[1:])).isoformat()
    whole = _PLACEHOLDER.fullmatch(text)
    if whole:
        value = context.get(whole.group(1), {}).get(whole.group(2))
        return value.isoformat() if isinstance(value, (date, datetime)) else value
    if "{" in text:
        return render(text, context)
    return raw
