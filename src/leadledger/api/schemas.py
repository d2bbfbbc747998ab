"""The API's request and response bodies (Pydantic): `XCreate` / `XUpdate` in, `XRead` out.

Every string the API accepts is bounded and free of NUL characters (PostgreSQL cannot store them), every
number is finite, every moment carries its zone and lies between 1970 and 2200, and free-form JSON is at most
MAX_DEPTH deep: hostile input is refused here with a 422 naming the field, before a service sees it.
Requests forbid unknown keys, so a misspelt field is an error instead of a silently ignored value.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from leadledger.domain.moments import check_day, check_moment, parse_day, parse_moment
from leadledger.services.events import actor_like_keys

MAX_DEPTH = 8
MAX_TEXT = 10_000
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,100}$"
KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters are not accepted")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("numbers must be finite")
    return value


def _moment(value: Any) -> Any:
    """Text is read by the product's one time parser (a zone is required over HTTP); the range is checked after."""
    return parse_moment(value, naive_is_utc=False) if isinstance(value, str) else value


def _moment_text(value: str) -> str:
    """An event's time, checked here by the one parser (the service reads the same text the same way)."""
    parse_moment(_no_nul(value))
    return value


def _in_range(value: datetime) -> datetime:
    return check_moment(value)  # 1970-2200; an offset that overflows on conversion to UTC is refused too


def _day(value: Any) -> Any:
    return parse_day(value) if isinstance(value, str) else value


def _plain_json(value: Any, depth: int = 0) -> Any:
    """Free-form JSON (event data): at most MAX_DEPTH levels, finite numbers, bounded strings without NUL."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"strings are at most {MAX_TEXT} characters")
        return _no_nul(value)
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _plain_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _plain_json(item, depth + 1)
    return value


def _no_identity(value: dict[str, Any]) -> dict[str, Any]:
    """Event and activity data cannot say who did it: the ledger records the authenticated caller."""
    claimed = actor_like_keys(value)
    if claimed:
        raise ValueError(f"{claimed[0]!r}: an event cannot name who did it; it is recorded as the caller's")
    return value


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_no_nul)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
UserName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Finite = Annotated[float, AfterValidator(_finite)]
Moment = Annotated[AwareDatetime, BeforeValidator(_moment), AfterValidator(_in_range)]  # JSON carries times as text
Day = Annotated[date, BeforeValidator(_day), AfterValidator(check_day)]
FieldValue = (
    Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_no_nul)] | bool | int | Finite | None
)
Fields = Annotated[dict[Key, FieldValue], Field(max_length=100)]
JsonObject = Annotated[dict[str, Any], Field(max_length=200), AfterValidator(_plain_json), AfterValidator(_no_identity)]
Role = Literal["rep", "manager", "ops", "integration"]


class Request(BaseModel):
    """A request body: unknown keys refused, and no coercion between JSON types (`true` is not the number 1,
    `1` is not `true`, `"5"` is not 5): a client's type error is answered 422, never silently reinterpreted."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- errors -------------------------------------------------------------------------------------------


class ViolationRead(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """Every error body: a sentence, and for refusals every violation, each naming its field."""

    detail: str
    violations: list[ViolationRead] = []


# --- leads ----------------------------------------------------------------------------------------------


class LeadRead(BaseModel):
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    source: str | None = None
    campaign: str | None = None
    owner: str | None = None
    team: str | None = None
    status: str
    stage: str
    status_since: datetime
    stage_since: datetime
    created_at: datetime
    updated_at: datetime
    version: int
    reason: str | None = None
    prev_status: str | None = None
    status_source: str | None = None
    status_rule: str | None = None
    incomplete: bool = False
    fields: dict[str, Any] = {}


class LeadPage(BaseModel):
    items: list[LeadRead]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class LeadCreate(Request):
    name: Annotated[Text, StringConstraints(max_length=300)] | None = None
    email: Annotated[Text, StringConstraints(max_length=320)] | None = None
    phone: Annotated[Text, StringConstraints(max_length=40)] | None = None
    company: Annotated[Text, StringConstraints(max_length=300)] | None = None
    source: Annotated[Text, StringConstraints(max_length=100)] | None = None
    campaign: Annotated[Text, StringConstraints(max_length=200)] | None = None
    owner: UserName | None = Field(None, description="give it an owner at once (New becomes Assigned)")
    stage: Key | None = None
    fields: Fields = Field(default_factory=dict, description="other fields of the model's catalogue, or custom ones")
    at: Moment | None = Field(None, description="when the lead arrived; default now")
    idempotency_key: Short | None = Field(None, description="the same key never creates a second lead")


class LeadUpdate(Request):
    """Contact and custom fields; a field set to null is cleared. Validated by the model's field types."""

    name: Annotated[Text, StringConstraints(max_length=300)] | None = None
    email: Annotated[Text, StringConstraints(max_length=320)] | None = None
    phone: Annotated[Text, StringConstraints(max_length=40)] | None = None
    company: Annotated[Text, StringConstraints(max_length=300)] | None = None
    source: Annotated[Text, StringConstraints(max_length=100)] | None = None
    campaign: Annotated[Text, StringConstraints(max_length=200)] | None = None
    fields: Fields = Field(default_factory=dict)
    note: Text | None = None
    expected_version: Annotated[int, Field(ge=1, le=2**31)] | None = Field(
        None, description="refuse the change unless the lead is still at this version"
    )


class ActivityCreate(Request):
    """An interaction: `call_logged` with {"outcome": "connected"}, `email_sent`, `meeting_held`…"""

    type: Key
    data: Annotated[dict[Key, FieldValue], Field(max_length=50), AfterValidator(_no_identity)] = Field(
        default_factory=dict
    )
    at: Moment | None = None
    key: Short | None = Field(None, description="idempotency key: the same key is logged once")


class ActivityLogged(BaseModel):
    lead_id: str
    logged: bool = Field(description="false when an activity with this key was logged before")


class _ChangeBase(Request):
    reason: Key | None = Field(None, description="a reason code of the model")
    fields: Fields = Field(default_factory=dict)
    note: Text | None = None
    log: ActivityCreate | None = Field(None, description="log the interaction with the change, in the same transaction")
    at: Moment | None = Field(None, description="when it happened; default now; never before the last change")
    idempotency_key: Short | None = Field(None, description="the same key applies once")
    expected_version: Annotated[int, Field(ge=1, le=2**31)] | None = Field(
        None, description="refuse the change unless the lead is still at this version"
    )


class StatusChangeCreate(_ChangeBase):
    status: Key
    override: bool = Field(False, description="this replaces an automated change")


class StageChangeCreate(_ChangeBase):
    stage: Key


class OwnerChangeCreate(Request):
    owner: UserName | None = Field(description="the new owner; null takes the owner away")
    note: Text | None = None
    at: Moment | None = None
    expected_version: Annotated[int, Field(ge=1, le=2**31)] | None = None


class ChangeRead(BaseModel):
    """An applied change: the lead as it is now, and the ledger entry's position."""

    lead: LeadRead
    seq: int
    changed: bool = Field(
        True, description="false when the lead already was as asked: nothing was written (seq is its last entry)"
    )
    duplicate: bool = Field(description="true when the idempotency key had already applied")
    override_of_seq: int | None = None
    warnings: list[ViolationRead] = []


class PendingApprovalRead(BaseModel):
    """The change waits for an approver (202); the lead has not moved."""

    lead_id: str
    approval_id: int
    rule: str
    approvers: list[str]


class BulkChangeCreate(Request):
    """One target for many leads; each lead's change is all-or-nothing on its own."""

    leads: Annotated[list[Annotated[str, StringConstraints(pattern=ID_PATTERN)]], Field(min_length=1, max_length=1000)]
    status: Key | None = None
    stage: Key | None = None
    owner: UserName | None = None
    reason: Key | None = None
    fields: Fields = Field(default_factory=dict)
    note: Text | None = None


class BulkItemRead(BaseModel):
    lead_id: str
    outcome: Literal["applied", "unchanged", "refused", "pending_approval"]
    seq: int | None = None
    approval_id: int | None = None
    violations: list[ViolationRead] = []


class BulkChangeRead(BaseModel):
    applied: int
    unchanged: int
    refused: int
    pending_approval: int
    results: list[BulkItemRead]


class LedgerEntryRead(BaseModel):
    seq: int
    at: datetime
    recorded_at: datetime
    kind: str
    actor: str
    actor_role: str
    source: str
    from_status: str | None
    to_status: str
    from_stage: str | None
    to_stage: str
    from_owner: str | None
    to_owner: str | None
    reason: str | None
    note: str | None
    data: dict[str, Any] | None
    rule: str | None
    override_of_seq: int | None
    override_rule: str | None
    idempotency_key: str | None
    off_model: bool


class ActivityRead(BaseModel):
    key: str | None
    type: str
    at: datetime
    recorded_at: datetime
    actor: str | None
    source: str
    data: dict[str, Any] | None


class TimelineRead(BaseModel):
    lead: LeadRead
    entries: list[LedgerEntryRead]
    activities: list[ActivityRead]


# --- events -----------------------------------------------------------------------------------------------


class EventCreate(Request):
    """One activity event, as `leadledger event apply` reads it; `id` makes a replay a no-op."""

    id: Short
    type: Key
    lead: Annotated[str, StringConstraints(pattern=ID_PATTERN)] | None = Field(
        None, description="the lead; a form_submitted event may give data.email instead"
    )
    at: Annotated[str, StringConstraints(min_length=10, max_length=40), AfterValidator(_moment_text)] = Field(
        description="ISO 8601 time, e.g. 2026-11-23T14:05:00Z (UTC when it has no zone)"
    )
    data: JsonObject = Field(default_factory=dict)


class EventErrorRead(BaseModel):
    line: int = Field(description="the event's position in the list, from 1")
    error: str


class RuleRefusalRead(BaseModel):
    line: int
    lead: str
    rule: str
    violations: list[ViolationRead]


class RuleApprovalRead(BaseModel):
    line: int
    lead: str
    rule: str
    approval: int


class EventSummaryRead(BaseModel):
    applied: int
    duplicates: int
    rejected: int
    status_changes: int
    leads_created: int
    tasks: int
    notifications: int
    webhooks: int
    emails: int
    routed: int
    errors: list[EventErrorRead]
    refused: list[RuleRefusalRead]
    approvals: list[RuleApprovalRead]


# --- the status model ----------------------------------------------------------------------------------


class StatusRead(BaseModel):
    key: str
    label: str
    parent: str | None
    category: str
    owner_role: str
    stages: list[str]
    next: list[str]
    locked: bool
    definition: str


class ModelRead(BaseModel):
    id: int
    name: str
    version: str
    digest: str
    created_at: datetime
    created_by: str
    stages: list[str]
    statuses: list[StatusRead]
    reasons: list[str]
    yaml: str


class ModelVersionRead(BaseModel):
    id: int
    name: str
    version: str
    digest: str
    created_at: datetime
    created_by: str


class FindingRead(BaseModel):
    level: str
    check: str
    subject: str
    message: str
    line: int | None = None


class ModelUpdate(Request):
    yaml: Annotated[str, StringConstraints(min_length=1, max_length=1_000_000), AfterValidator(_no_nul)] = Field(
        description="the whole model file"
    )


class ModelActivatedRead(BaseModel):
    id: int
    name: str
    version: str
    digest: str
    warnings: list[FindingRead]


class LintRead(BaseModel):
    errors: int
    warnings: int
    findings: list[FindingRead]


# --- people and tokens -------------------------------------------------------------------------------------


class MeRead(BaseModel):
    name: str
    role: str


class UserRead(BaseModel):
    name: str
    role: str
    team: str | None
    email: str | None
    active: bool


class UserCreate(Request):
    name: UserName
    role: Role
    team: Annotated[str, StringConstraints(pattern=NAME_PATTERN)] | None = None
    email: Annotated[Text, StringConstraints(max_length=320)] | None = None
    password: Annotated[str, StringConstraints(min_length=10, max_length=1024), AfterValidator(_no_nul)] | None = None


class LoginCreate(Request):
    username: Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_no_nul)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_no_nul)]


class TokenCreate(Request):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_no_nul)] = "api"
    user: UserName | None = Field(None, description="ops may create tokens for others (integrations); default: you")
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_no_nul)] | None = Field(
        None,
        description="your password: asked with a login token, it makes a token that outlives the login "
        "(without it, the new token expires and is revoked with the login it was made with)",
    )


class TokenRead(BaseModel):
    id: int
    user: str
    name: str
    kind: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None = None
    parent_id: int | None = Field(None, description="the login token it was made with: it ends with it")


class TokenIssuedRead(TokenRead):
    token: str = Field(description="shown once: only its SHA-256 is stored")
    token_type: Literal["bearer"] = "bearer"


# --- approvals, tasks, inbox ---------------------------------------------------------------------------------


class ApprovalRead(BaseModel):
    id: int
    lead_id: str
    rule: str
    request: dict[str, Any]
    requested_by: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


class DecisionCreate(Request):
    note: Text | None = None


class DecisionRead(BaseModel):
    approval: int
    lead: str
    decision: str
    seq: int | None = None


class TaskRead(BaseModel):
    id: int
    lead_id: str
    title: str
    assignee: str | None
    due_at: datetime
    created_at: datetime
    status: str
    rule: str | None
    done_at: datetime | None
    done_by: str | None
    open_while: str | None = Field(None, description="the statuses the task belongs to; leaving them closes it")
    note: str | None = Field(None, description="why it closed: the move, the lead ending, or a no-change reason")


class TaskDoneCreate(Request):
    no_change: Text | None = Field(
        None, description="why the lead stays in its status: needed to complete a status's task without the move"
    )


class TaskDoneRead(BaseModel):
    task: int
    status: str
    note: str | None = None


class NotificationRead(BaseModel):
    id: int
    recipient: str
    lead_id: str | None
    kind: str
    message: str
    created_at: datetime
    read_at: datetime | None
    rule: str | None


class MarkReadCreate(Request):
    ids: Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=1000)] | None = Field(
        None, description="the notifications to mark read; all unread when omitted"
    )


class MarkedRead(BaseModel):
    marked: int


class PipelineRead(BaseModel):
    total: int
    stages: list[str]
    rows: list[dict[str, Any]]
