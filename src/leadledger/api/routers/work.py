"""What automation hands to people: approvals to decide, tasks to do, notifications to read; and the pipeline.

Who may decide an approval is the model's (its approver roles), checked in `services.approvals.decide`; a
task is completed by its assignee, a manager or ops (`services.inbox.complete_task`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.schemas import (
    ID_PATTERN,
    NAME_PATTERN,
    ApprovalRead,
    DecisionCreate,
    DecisionRead,
    MarkedRead,
    MarkReadCreate,
    NotificationRead,
    PipelineRead,
    TaskDoneCreate,
    TaskDoneRead,
    TaskRead,
)
from leadledger.services import approvals, inbox
from leadledger.services.pipeline import pipeline_counts

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**62)]


@router.get(
    "/approvals", response_model=list[ApprovalRead], tags=["approvals"], summary="Changes waiting for a decision"
)
def list_approvals(
    user: CurrentUser,
    app: AppDep,
    status: Annotated[Literal["pending", "approved", "denied"] | None, Query()] = "pending",
    lead_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
) -> list[dict[str, Any]]:
    return approvals.list_approvals(app, status=status, lead_id=lead_id)


def _decide(app: Any, approval_id: int, actor: str, approve: bool, body: DecisionCreate | None) -> dict[str, Any]:
    return approvals.decide(
        app, approval_id=approval_id, actor=actor, approve=approve, note=body.note if body else None
    )


@router.post(
    "/approvals/{approval_id}/approve",
    response_model=DecisionRead,
    responses=errors(404, 409),
    tags=["approvals"],
    summary="Approve: the change is applied now, re-checked against the lead as it is",
)
def approve(
    approval_id: RowId, user: CurrentUser, app: AppDep, body: Annotated[DecisionCreate | None, Body()] = None
) -> dict[str, Any]:
    return _decide(app, approval_id, user.name, True, body)


@router.post(
    "/approvals/{approval_id}/deny",
    response_model=DecisionRead,
    responses=errors(404),
    tags=["approvals"],
    summary="Deny: the lead stays where it is; the decision is in the ledger",
)
def deny(
    approval_id: RowId, user: CurrentUser, app: AppDep, body: Annotated[DecisionCreate | None, Body()] = None
) -> dict[str, Any]:
    return _decide(app, approval_id, user.name, False, body)


@router.get("/tasks", response_model=list[TaskRead], tags=["work"], summary="Tasks (yours unless you name an assignee)")
def list_tasks(
    user: CurrentUser,
    app: AppDep,
    assignee: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    status: Annotated[Literal["open", "done", "cancelled"] | None, Query()] = "open",
    lead_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    who = assignee or (None if lead_id else user.name)
    return inbox.list_tasks(app, assignee=who, status=status, lead_id=lead_id, limit=limit)


@router.post("/tasks/{task_id}/done", response_model=TaskDoneRead, responses=errors(404), tags=["work"],
             summary="Mark a task done (its assignee, a manager or ops)")  # fmt: skip
def complete_task(
    task_id: RowId, user: CurrentUser, app: AppDep, body: Annotated[TaskDoneCreate | None, Body()] = None
) -> dict[str, Any]:
    return inbox.complete_task(app, task_id=task_id, actor=user.name, no_change=body.no_change if body else None)


@router.get("/inbox", response_model=list[NotificationRead], tags=["work"], summary="Your notifications, newest first")
def list_notifications(
    user: CurrentUser,
    app: AppDep,
    unread_only: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return inbox.list_notifications(app, recipient=user.name, unread_only=unread_only, limit=limit)


@router.post("/inbox/read", response_model=MarkedRead, tags=["work"], summary="Mark your notifications read")
def mark_read(user: CurrentUser, app: AppDep, body: Annotated[MarkReadCreate | None, Body()] = None) -> dict[str, Any]:
    return {"marked": inbox.mark_read(app, recipient=user.name, ids=body.ids if body else None)}


@router.get("/pipeline", response_model=PipelineRead, tags=["leads"], summary="Leads per status and stage right now")
def pipeline(user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return pipeline_counts(app)
