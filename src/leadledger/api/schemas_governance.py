"""The API bodies of governance: model diffs (and, as they come, reviews, samples and the council pack)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from leadledger.api.schemas import ModelActivatedRead, Request, UserName, _no_nul


class FieldChangeRead(BaseModel):
    path: str
    old: Any = None
    new: Any = None


class ItemChangeRead(BaseModel):
    section: str
    key: str
    change: str
    fields: list[FieldChangeRead]
    note: str = ""  # an added migration: `old → new (rename)`


# --- status migrations -----------------------------------------------------------------------------------


class MigrationRowRead(BaseModel):
    from_: str = Field(alias="from")
    to: str
    kind: str  # rename | merge | split | earlier version
    reason: str
    declared: bool  # in the model file itself (false: an older key composed through earlier versions)


class MoveGroupRead(BaseModel):
    from_: str = Field(alias="from")
    to: str | None
    leads: int
    problem: str | None
    samples: list[str]


class FindingOut(BaseModel):
    level: str
    check: str
    subject: str
    message: str
    line: int | None = None


class MigrationPlanRead(BaseModel):
    file: str
    model: str
    errors: list[FindingOut]
    warnings: list[FindingOut]
    migrations: list[MigrationRowRead]
    moves: list[MoveGroupRead]
    leads_to_move: int
    leads_stuck: int


class MigrationsRead(BaseModel):
    model_version: str
    migrations: list[MigrationRowRead]
    moves: list[MoveGroupRead]


class MovedRead(BaseModel):
    from_: str = Field(alias="from")
    to: str
    leads: int


class NotMovedRead(BaseModel):
    lead: str
    from_: str = Field(alias="from")
    to: str | None
    why: str | None


class MigratedRead(BaseModel):
    model_version: int
    moved: int
    by_status: list[MovedRead]
    refused: list[NotMovedRead]


class ModelAppliedRead(ModelActivatedRead):
    migrated: MigratedRead  # the leads moved out of the keys the model dropped


class ModelDiffRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    identical: bool
    summary: dict[str, dict[str, int]]
    changes: list[ItemChangeRead]


# --- manager review --------------------------------------------------------------------------------------

NOTE_MAX = 4000
MONTH_PATTERN = r"^(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])$"


class VerdictRead(BaseModel):
    verdict: str
    note: str | None = None
    reviewer: str
    reviewed_at: datetime


class ReviewChangeRead(BaseModel):
    entry: int
    lead: str
    seq: int
    at: datetime
    actor: str
    actor_role: str
    source: str
    from_status: str | None
    to_status: str
    reason: str | None
    rule: str | None
    override_rule: str | None
    hours_in_previous: float | None
    rep: str | None
    team: str | None
    note: str | None
    verdict: VerdictRead | None


class ReviewScopeRead(BaseModel):
    actor: str
    role: str
    teams: list[str] | None
    rep: str | None


class ReviewChangesRead(BaseModel):
    scope: ReviewScopeRead
    total: int
    offset: int
    changes: list[ReviewChangeRead]


class VerdictCreate(Request):
    entry: Annotated[int, Field(ge=1, le=2**62, description="the ledger entry (a status change) judged")]
    verdict: Literal["ok", "wrong_usage"]
    note: Annotated[str, StringConstraints(max_length=NOTE_MAX), AfterValidator(_no_nul)] | None = Field(
        None, description="the feedback; required for wrong_usage"
    )


class VerdictRecordedRead(BaseModel):
    review: int
    entry: int
    lead: str
    rep: str | None
    team: str | None
    verdict: str
    note: str | None
    reviewer: str
    reviewed_at: datetime
    notified: str | None


class SampleCreate(Request):
    month: Annotated[str, StringConstraints(pattern=MONTH_PATTERN)]
    per_rep: Annotated[int, Field(ge=1, le=200)] = 10
    manager: UserName | None = Field(None, description="ops: draw for this manager (default: yourself)")
    seed: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[ -~]+$")] | None = None


class SampleItemRead(BaseModel):
    id: int
    sample_id: int
    entry_id: int
    lead_id: str
    entry_at: datetime
    rep: str
    team: str | None
    from_status: str | None
    to_status: str
    stratum_changes: int
    verdict: VerdictRead | None


class SampleRead(BaseModel):
    sample: int
    month: str
    manager: str
    teams: list[str]
    per_rep: int
    seed: str
    size: int
    created_at: datetime
    created_by: str
    reps: dict[str, dict[str, int]]
    items: list[SampleItemRead]


class SampleSummaryRead(BaseModel):
    sample: int
    month: str
    manager: str
    teams: list[str]
    per_rep: int
    size: int
    reviewed: int
    created_at: datetime
    created_by: str
