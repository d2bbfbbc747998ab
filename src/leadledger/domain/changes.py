"""What a change request, a lead's current state and a ledger entry look like.

Plain frozen dataclasses: the engine turns a `ChangeRequest` about a `LeadState` into a `StatusChange`
(the ledger entry to append) or a list of `Violation`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Violation:
    """One reason a change was refused, named by the field it concerns."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class AutomatedChange:
    """The automated change that set a lead's current status, so a manual change can be marked as overriding it."""

    seq: int  # its position in the lead's ledger
    rule: str | None
    from_status: str | None
    to_status: str


@dataclass(frozen=True)
class Activity:
    """A logged interaction (email, call, meeting...) that entry rules can require."""

    type: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LeadState:
    """The projection of a lead the engine judges a change against."""

    id: str
    status: str
    stage: str
    owner: str | None
    fields: Mapping[str, Any]
    version: int
    last_at: datetime
    last_automated: AutomatedChange | None = None


@dataclass(frozen=True)
class Actor:
    name: str
    role: str


@dataclass(frozen=True)
class ChangeRequest:
    """A request to change a lead's status, stage and/or owner; what is not named stays as it is."""

    lead_id: str
    actor: Actor
    at: datetime
    source: str = "manual"
    status: str | None = None
    stage: str | None = None
    owner: str | None = None
    reason: str | None = None
    note: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    rule: str | None = None  # the automation or time rule asking for it
    idempotency_key: str | None = None
    override: bool = False  # the person says this replaces an automated change
    clear_owner: bool = False


@dataclass(frozen=True)
class StatusChange:
    """One ledger entry: the full state after the change, and where it came from."""

    lead_id: str
    at: datetime
    actor: str
    actor_role: str
    source: str
    from_status: str | None
    to_status: str
    from_stage: str | None
    to_stage: str
    from_owner: str | None
    to_owner: str | None
    reason: str | None = None
    note: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    rule: str | None = None
    override_of_seq: int | None = None  # the automated entry (by seq on this lead) this change overrides
    override_rule: str | None = None
    idempotency_key: str | None = None
    off_model: bool = False
    kind: str = "change"  # created | change | correction
    warnings: tuple[Violation, ...] = ()

    @property
    def status_changed(self) -> bool:
        return self.from_status != self.to_status

    @property
    def stage_changed(self) -> bool:
        return self.from_stage != self.to_stage

    @property
    def owner_changed(self) -> bool:
        return self.from_owner != self.to_owner


@dataclass(frozen=True)
class Refused:
    """A change the model does not allow, with every violation found."""

    violations: tuple[Violation, ...]

    def __bool__(self) -> bool:  # a Refused reads as a failure in `if result:`
        return False


def json_ready(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values as JSON holds them: dates and times as ISO 8601 text, the rest as they are."""
    return {key: (value.isoformat() if hasattr(value, "isoformat") else value) for key, value in values.items()}
