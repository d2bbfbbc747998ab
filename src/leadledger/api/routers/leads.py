"""Leads: create, read, list with filters and a cursor, update fields, change status/stage/owner, log, timeline.

Writes go through the process's `ChangeWriter`, which applies them through the same change handling as the CLI's
`change_leads` and answers after the commit; reads run in the thread pool. The service layer decides who may
do what: a refused change comes back with every violation (see `api.errors` for 403/404/409).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import StringConstraints
from starlette.concurrency import run_in_threadpool

from leadledger.api.deps import AppDep, CurrentUser, WriterDep
from leadledger.api.errors import violation_dicts
from leadledger.api.openapi import errors
from leadledger.api.schemas import (
    ID_PATTERN,
    KEY_PATTERN,
    NAME_PATTERN,
    ActivityCreate,
    ActivityLogged,
    BulkChangeCreate,
    BulkChangeRead,
    BulkItemRead,
    ChangeRead,
    LeadCreate,
    LeadPage,
    LeadRead,
    LeadUpdate,
    OwnerChangeCreate,
    PendingApprovalRead,
    StageChangeCreate,
    StatusChangeCreate,
    TimelineRead,
)
from leadledger.domain.durations import parse_duration
from leadledger.marketing.segments import segment_members
from leadledger.services import leads as lead_service
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, Applied, ChangeSpec, PendingApproval
from leadledger.services.errors import ChangeRefused, Invalid
from leadledger.services.leads import CONTACT_FIELDS
from leadledger.services.writer import ChangeJob, ChangeWriter, CreateJob, Done

router = APIRouter(tags=["leads"])
LeadId = Annotated[str, Path(pattern=ID_PATTERN, description="the lead's id")]
MAX_AGE = timedelta(days=36_500)
CHANGE_RESPONSES = {
    202: {"model": PendingApprovalRead, "description": "the change waits for an approver; the lead did not move"},
    **errors(404, 409),
}


def _activity(log: ActivityCreate | None) -> ActivityIn | None:
    if log is None:
        return None
    return ActivityIn(log.type, at=log.at, data=dict(log.data), key=log.key)


async def _change(app: App, writer: ChangeWriter, actor: str, spec: ChangeSpec) -> Any:
    """Apply one change; 200 with the lead, 202 when it waits for approval, or the refusal as an error."""
    done = await writer.run(ChangeJob(actor, spec))
    outcome = done.outcome
    if isinstance(outcome, ChangeRefused):
        raise outcome
    if isinstance(outcome, PendingApproval):
        body = PendingApprovalRead(
            lead_id=outcome.lead_id,
            approval_id=outcome.approval_id,
            rule=outcome.rule,
            approvers=list(outcome.approvers),
        )
        return JSONResponse(body.model_dump(), status_code=202)
    return await _applied(app, outcome, done)


async def _applied(app: App, outcome: Applied, done: Done) -> dict[str, Any]:
    lead = done.lead if done.lead is not None else await run_in_threadpool(lead_service.get_lead, app, outcome.lead_id)
    change = outcome.change
    return {
        "lead": lead,
        "seq": outcome.seq,
        "changed": outcome.changed,
        "duplicate": outcome.duplicate,
        "override_of_seq": change.override_of_seq if change else None,
        "warnings": violation_dicts(outcome.warnings),
    }


@router.post(
    "/leads",
    status_code=201,
    response_model=LeadRead,
    responses={200: {"model": LeadRead, "description": "already created with this idempotency key"}, **errors(409)},
    summary="Create a lead (New, or Assigned with an owner)",
)
async def create_lead(body: LeadCreate, user: CurrentUser, app: AppDep, writer: WriterDep, response: Response) -> Any:
    fields: dict[str, Any] = dict(body.fields)
    fields.update({c: getattr(body, c) for c in CONTACT_FIELDS if getattr(body, c) is not None})
    job = CreateJob(
        user.name, fields, owner=body.owner, stage=body.stage, at=body.at, idempotency_key=body.idempotency_key
    )
    done = await writer.run(job)
    outcome = done.outcome
    if isinstance(outcome, ChangeRefused):
        raise outcome
    assert isinstance(outcome, Applied)
    response.headers["Location"] = f"/api/v1/leads/{outcome.lead_id}"
    if outcome.duplicate or done.lead is None:
        response.status_code = 200
        return await run_in_threadpool(lead_service.get_lead, app, outcome.lead_id)
    return done.lead


KeyList = list[Annotated[str, StringConstraints(pattern=KEY_PATTERN)]] | None
TextList = list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None
NameList = list[Annotated[str, StringConstraints(pattern=NAME_PATTERN)]] | None


@router.get(
    "/leads",
    response_model=LeadPage,
    summary="List leads by status (any of several, or not), stage, owner, team, source, reason, campaign, company, "
    "segment, age in status",
)
def list_leads(
    user: CurrentUser,
    app: AppDep,
    status: Annotated[
        KeyList, Query(max_length=50, description="any of these statuses (each includes its sub-statuses)")
    ] = None,
    not_status: Annotated[
        KeyList, Query(max_length=50, description="none of these statuses (with their sub-statuses)")
    ] = None,
    stage: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    owner: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    team: Annotated[NameList, Query(max_length=50, description="any of these teams")] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    reason: Annotated[
        KeyList, Query(max_length=50, description="any of these reasons (why the lead entered its status)")
    ] = None,
    campaign: Annotated[TextList, Query(max_length=50, description="any of these campaigns")] = None,
    company: Annotated[str | None, Query(min_length=1, max_length=300, description="the company, any case")] = None,
    segment: Annotated[KeyList, Query(max_length=50, description="a member of every one of these segments now")] = None,
    in_status_longer_than: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,6}(\.[0-9]{1,3})?[smhdw]$", description="e.g. 24h, 7d, 2w")
    ] = None,
    cursor: Annotated[str | None, Query(pattern=ID_PATTERN, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    age = parse_duration(in_status_longer_than) if in_status_longer_than else None
    if age is not None and age > MAX_AGE:
        raise Invalid("in_status_longer_than: at most 100 years")
    members = segment_members(app, segment) if segment else None
    rows = lead_service.list_leads(
        app,
        status=status,
        not_status=not_status or (),
        stage=stage,
        owner=owner,
        team=team or (),
        source=source,
        reason=reason or (),
        campaign=campaign or (),
        company=company,
        lead_ids=members,
        in_status_longer_than=age,
        after=cursor,
        limit=limit + 1,  # one more than asked tells whether there is a next page
    )
    return {"items": rows[:limit], "next_cursor": rows[limit - 1]["id"] if len(rows) > limit else None}


@router.get("/leads/{lead_id}", response_model=LeadRead, responses=errors(404), summary="Read a lead")
def get_lead(lead_id: LeadId, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return lead_service.get_lead(app, lead_id)


@router.patch(
    "/leads/{lead_id}",
    response_model=ChangeRead,
    responses=errors(404, 409),
    summary="Update contact or custom fields (recorded in the ledger)",
)
async def update_lead(lead_id: LeadId, body: LeadUpdate, user: CurrentUser, app: AppDep, writer: WriterDep) -> Any:
    given = body.model_dump(exclude_unset=True)
    fields: dict[str, Any] = dict(body.fields)
    fields.update({c: given[c] for c in CONTACT_FIELDS if c in given})
    if not fields:
        raise Invalid("fields: give at least one field to update")
    spec = ChangeSpec(lead_id, fields=fields, note=body.note, expected_version=body.expected_version)
    return await _change(app, writer, user.name, spec)


@router.post(
    "/leads/{lead_id}/status",
    response_model=ChangeRead,
    responses=CHANGE_RESPONSES,
    summary="Change a lead's status (the model's rules apply; a refusal lists every violation)",
)
async def change_status(
    lead_id: LeadId, body: StatusChangeCreate, user: CurrentUser, app: AppDep, writer: WriterDep
) -> Any:
    spec = ChangeSpec(
        lead_id,
        status=body.status,
        reason=body.reason,
        fields=dict(body.fields),
        note=body.note,
        at=body.at,
        log=_activity(body.log),
        override=body.override,
        idempotency_key=body.idempotency_key,
        expected_version=body.expected_version,
    )
    return await _change(app, writer, user.name, spec)


@router.post(
    "/leads/{lead_id}/stage",
    response_model=ChangeRead,
    responses=CHANGE_RESPONSES,
    summary="Move a lead to another lifecycle stage (forward only, except the model's steps back)",
)
async def change_stage(
    lead_id: LeadId, body: StageChangeCreate, user: CurrentUser, app: AppDep, writer: WriterDep
) -> Any:
    spec = ChangeSpec(
        lead_id,
        stage=body.stage,
        reason=body.reason,
        fields=dict(body.fields),
        note=body.note,
        at=body.at,
        log=_activity(body.log),
        idempotency_key=body.idempotency_key,
        expected_version=body.expected_version,
    )
    return await _change(app, writer, user.name, spec)


@router.post(
    "/leads/{lead_id}/owner",
    response_model=ChangeRead,
    responses=CHANGE_RESPONSES,
    summary="Give a lead an owner, or take it away (owner history is kept)",
)
async def change_owner(
    lead_id: LeadId, body: OwnerChangeCreate, user: CurrentUser, app: AppDep, writer: WriterDep
) -> Any:
    spec = ChangeSpec(
        lead_id,
        owner=body.owner,
        clear_owner=body.owner is None,
        note=body.note,
        at=body.at,
        expected_version=body.expected_version,
    )
    return await _change(app, writer, user.name, spec)


@router.post(
    "/leads/{lead_id}/activities",
    status_code=201,
    response_model=ActivityLogged,
    responses={200: {"model": ActivityLogged, "description": "already logged with this key"}, **errors(404, 409)},
    summary="Log an interaction (what entry rules such as Connected's read)",
)
def log_activity(
    lead_id: LeadId, body: ActivityCreate, user: CurrentUser, app: AppDep, response: Response
) -> dict[str, Any]:
    activity = ActivityIn(body.type, at=body.at, data=dict(body.data), key=body.key)
    logged = lead_service.log_activity(app, lead_id=lead_id, actor=user.name, activity=activity)
    if not logged:
        response.status_code = 200
    return {"lead_id": lead_id, "logged": logged}


@router.get(
    "/leads/{lead_id}/timeline",
    response_model=TimelineRead,
    responses=errors(404),
    summary="The lead, every ledger entry in order, and its logged activities",
)
def timeline(lead_id: LeadId, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return lead_service.timeline(app, lead_id)


@router.post(
    "/bulk-changes",
    response_model=BulkChangeRead,
    tags=["leads"],
    summary="One status/stage/owner target for many leads; each lead's change is all-or-nothing",
)
async def bulk_change(body: BulkChangeCreate, user: CurrentUser, writer: WriterDep) -> dict[str, Any]:
    if body.status is None and body.stage is None and body.owner is None and not body.fields:
        raise Invalid("give a status, a stage, an owner or fields to set")
    specs = [
        ChangeSpec(
            lead_id,
            status=body.status,
            stage=body.stage,
            owner=body.owner,
            reason=body.reason,
            fields=dict(body.fields),
            note=body.note,
        )
        for lead_id in body.leads
    ]
    answers = await asyncio.gather(*(writer.run(ChangeJob(user.name, spec)) for spec in specs), return_exceptions=True)
    results: list[BulkItemRead] = []
    for spec, answer in zip(specs, answers, strict=True):
        if isinstance(answer, BaseException):
            raise answer  # the actor cannot act at all (disabled, unknown): the same for every lead
        outcome = answer.outcome
        if isinstance(outcome, ChangeRefused):
            item = BulkItemRead(lead_id=spec.lead_id, outcome="refused", violations=violation_dicts(outcome.violations))  # type: ignore[arg-type]
        elif isinstance(outcome, PendingApproval):
            item = BulkItemRead(lead_id=spec.lead_id, outcome="pending_approval", approval_id=outcome.approval_id)
        else:
            if outcome.changed:
                item = BulkItemRead(lead_id=spec.lead_id, outcome="applied", seq=outcome.seq)
            else:
                item = BulkItemRead(lead_id=spec.lead_id, outcome="unchanged", seq=outcome.seq)
        results.append(item)
    kinds = ("applied", "unchanged", "refused", "pending_approval")
    counts = {kind: sum(1 for r in results if r.outcome == kind) for kind in kinds}
    return {**counts, "results": results}
