"""The shape of the status model file, as Pydantic classes (structure only; cross-references are checked by the loader)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadledger.domain.durations import parse_duration

CATEGORIES = ("open", "active", "qualified", "won", "lost", "parked", "data_problem")
KEY_PATTERN = r"^[a-z][a-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_duration(value: Any) -> Any:
    if value is not None:
        parse_duration(value)
    return value


class StageIn(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    label: str
    definition: str = ""
    sets_status: str | None = None
    roles: list[str] | None = None


class BackwardMoveIn(Strict):
    from_: list[str] = Field(alias="from", min_length=1)
    to: str
    sets_status: str


class HolidaysIn(Strict):
    country: str
    subdivision: str | None = None


class CalendarIn(Strict):
    timezone: str
    hours: dict[str, list[str]]
    holidays: HolidaysIn | None = None
    days_off: list[date] = []


class FieldIn(Strict):
    type: Literal["text", "email", "phone", "date", "datetime", "number", "integer", "choice", "bool", "url"]
    label: str
    help: str = ""
    choices: list[str] = []
    min: float | None = None
    max: float | None = None
    after_change: bool = False


class ReasonIn(Strict):
    label: str
    description: str = ""


class ActivityRuleIn(Strict):
    # each item: "email_sent", or {"call_logged": {"outcome": ["connected"]}}
    any_of: list[str | dict[str, dict[str, list[str]] | None]] = Field(min_length=1)
    within: str | int | None = None
    description: str = ""

    @field_validator("within")
    @classmethod
    def _within_is_a_duration(cls, value: Any) -> Any:
        return _check_duration(value)


class ReasonRuleIn(Strict):
    required: bool = True
    codes: list[str] = []


class EntryIn(Strict):
    description: str = ""
    required: list[str] = []
    recommended: list[str] = []
    any_of: list[list[str]] = []
    reason: ReasonRuleIn | None = None
    activity: ActivityRuleIn | None = None


class ExitIn(Strict):
    description: str = ""
    max_age: str | int | None = None
    business_time: bool = False
    then: Literal["alert", "escalate", "move", "review"] | None = None
    to: str | None = None
    reason: str | None = None
    terminal: bool = False

    @field_validator("max_age")
    @classmethod
    def _max_age_is_a_duration(cls, value: Any) -> Any:
        return _check_duration(value)


class StatusIn(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    label: str
    definition: str = ""
    when_to_use: str = ""
    owner_role: str | None = None
    category: Literal["open", "active", "qualified", "won", "lost", "parked", "data_problem"] | None = None
    stages: list[str] | None = None
    entry: EntryIn = EntryIn()
    exit: ExitIn = ExitIn()
    reporting_use: str = ""
    automation: str = ""
    next_steps: str = ""
    locked: bool = False
    terminal: bool = False
    sub_statuses: list[StatusIn] = []


class TransitionIn(Strict):
    from_: list[str] | Literal["*"] = Field(alias="from")
    to: list[str] = Field(min_length=1)
    roles: list[str] = []
    automatic: bool = False
    description: str = ""


Condition = dict[str, Any] | None


class EventRuleIn(Strict):
    name: str = Field(pattern=KEY_PATTERN)
    on: str | list[str]
    when: Condition = None
    set_status: str | None = None
    set_stage: str | None = None
    reason: str | None = None
    set: dict[str, Any] = {}
    description: str = ""


class TaskIn(Strict):
    title: str
    due: str | int
    business_time: bool = True
    assignee: str = "owner"
    # the statuses the task stays open in (default: the status that opened it, with its sub-statuses)
    while_in: list[str] = []

    @field_validator("due")
    @classmethod
    def _due_is_a_duration(cls, value: Any) -> Any:
        return _check_duration(value)


class NotifyIn(Strict):
    to: str | list[str]
    message: str
    email: bool = True


class RouteIn(Strict):
    pool: str | None = None
    user: str | None = None
    exclude_previous_owners: bool = False


class WebhookIn(Strict):
    endpoint: str
    event: str


class EmailIn(Strict):
    template: str
    to: Literal["lead"] = "lead"


class ActionIn(Strict):
    name: str | None = None
    when: Condition = None
    task: TaskIn | None = None
    notify: NotifyIn | None = None
    route: RouteIn | None = None
    webhook: WebhookIn | None = None
    email: EmailIn | None = None


class ApprovalIn(Strict):
    name: str = Field(pattern=KEY_PATTERN)
    to: list[str] = Field(min_length=1)
    when: Condition = None
    approvers: list[str] = Field(min_length=1)
    description: str = ""


class PoolIn(Strict):
    team: str | None = None
    members: list[str] = []
    weights: dict[str, int] = {}
    strategy: Literal["round_robin", "weighted", "least_loaded"] = "round_robin"
    capacity: int | None = Field(default=None, ge=1)
    roles: list[str] = ["rep"]


class RoutingRuleIn(Strict):
    when: Condition = None
    pool: str


class RoutingIn(Strict):
    seed: int = 0
    pools: dict[str, PoolIn] = {}
    rules: list[RoutingRuleIn] = []


class EventTypeIn(Strict):
    """A custom event type, or a built-in one listed to say who may submit it (`roles` and `description` only)."""

    description: str = ""
    data: dict[str, list[str] | None] | None = None
    required: list[str] | None = None
    roles: list[str] | None = None  # who may submit it; default: integrations and ops


class TemplateIn(Strict):
    subject: str
    body: str


class SlaIn(Strict):
    name: str = Field(pattern=KEY_PATTERN)
    description: str = ""
    statuses: list[str] = Field(min_length=1)
    target: str | int
    business_time: bool = False
    kind: Literal["status", "activity"] = "status"
    met_on: list[str] = []
    continues_in: list[str] = []
    activity_types: list[str] = []

    @field_validator("target")
    @classmethod
    def _target_is_a_duration(cls, value: Any) -> Any:
        return _check_duration(value)


class TimeActionIn(Strict):
    notify: NotifyIn | None = None
    escalate: NotifyIn | None = None
    task: TaskIn | None = None
    move: dict[str, str] | None = None  # {status: ..., reason: ...}


class TimeRuleIn(Strict):
    name: str = Field(pattern=KEY_PATTERN)
    description: str = ""
    statuses: list[str] = Field(min_length=1)
    after: str | int | None = None
    business_time: bool = False
    since: Literal["status", "created", "activity"] = "status"
    min_attempts: int | None = Field(default=None, ge=1)
    attempt_types: list[str] = []
    date_field: str | None = None
    group_by: Literal["company", "source", "campaign"] | None = None
    min_group: int = Field(default=2, ge=2)
    then: TimeActionIn

    @field_validator("after")
    @classmethod
    def _after_is_a_duration(cls, value: Any) -> Any:
        return _check_duration(value)


class SegmentWebhookIn(Strict):
    endpoint: str
    on_enter: str | None = "segment.entered"
    on_leave: str | None = "segment.left"


class SegmentIn(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    label: str
    kind: Literal["suppression", "inclusion"] = "inclusion"
    description: str = ""
    when: Condition = None
    include: list[str] = []
    exclude: list[str] = []
    webhook: SegmentWebhookIn | None = None


class DuplicatesIn(Strict):
    # a new lead whose e-mail or phone an existing lead has: refuse it (naming that lead), or link it (the
    # creation answers with the existing lead and creates nothing)
    on_create: Literal["refuse", "link"] = "refuse"


class SplitIn(Strict):
    """A split: entries divided by the stage they were in or the reason the status was entered with."""

    by: Literal["stage", "reason"]
    cases: dict[str, str] = Field(min_length=1)  # a stage or reason code -> the status it goes to
    else_: str | None = Field(default=None, alias="else")


class MigrationIn(Strict):
    """`old_key: new_key`, or `old_key: {to: new_key, reason: ...}`, or `old_key: {split: {...}, reason: ...}`."""

    to: str | None = None
    split: SplitIn | None = None
    reason: str = ""


def _migration_shorthand(value: Any) -> Any:
    """`contacted: attempting_contact` is `contacted: {to: attempting_contact}`."""
    if isinstance(value, dict):
        return {key: {"to": item} if isinstance(item, str) else item for key, item in value.items()}
    return value


class ModelFile(Strict):
    """The whole status model file."""

    name: str
    version: str = "1"
    roles: list[str] = ["rep", "manager", "ops", "integration"]
    initial_status: str = "new"
    initial_stage: str
    forward_path: list[str] = []
    phone_region: str | None = "US"
    stages: list[StageIn] = Field(min_length=1)
    backward_moves: list[BackwardMoveIn] = []
    status_sets_stage: dict[str, str] = {}
    assignment_sets_status: dict[str, str] = {}
    calendars: dict[str, CalendarIn] = Field(min_length=1)
    default_calendar: str
    fields: dict[str, FieldIn] = {}
    reasons: dict[str, ReasonIn] = {}
    statuses: list[StatusIn] = Field(min_length=1)
    transitions: list[TransitionIn] = []
    # automation: events -> status rules, on-enter actions, approvals, routing
    rules: list[EventRuleIn] = []
    on_enter: dict[str, list[ActionIn]] = {}
    approvals: list[ApprovalIn] = []
    routing: RoutingIn = RoutingIn()
    event_types: dict[str, EventTypeIn] = {}
    templates: dict[str, TemplateIn] = {}
    # time: SLA clocks per status and time rules, evaluated by the sweep
    slas: list[SlaIn] = []
    time_rules: list[TimeRuleIn] = []
    # marketing: audiences and suppression lists, computed from the ledger (leadledger.marketing)
    segments: list[SegmentIn] = []
    duplicates: DuplicatesIn = DuplicatesIn()
    # status keys of earlier versions: where their history and leads go (renamed, merged, split)
    migrations: dict[str, MigrationIn] = {}

    @field_validator("migrations", mode="before")
    @classmethod
    def _short_migrations(cls, value: Any) -> Any:
        return _migration_shorthand(value)
