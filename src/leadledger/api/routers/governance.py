"""Governance over HTTP: model versions compared (`/model/diff`), manager review of status changes and the
monthly spot-check samples (`/reviews/...`).

Thin routes over `leadledger.services.model_changes` and `leadledger.services.review`; who may see and judge
what is decided there (managers: their own teams; ops: everything; reps: their own changes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.routers.model import MODEL_BODY, _model_text
from leadledger.api.schemas import KEY_PATTERN, NAME_PATTERN, Day
from leadledger.api.schemas_governance import (
    MONTH_PATTERN,
    MigratedRead,
    MigrationPlanRead,
    MigrationsRead,
    ModelDiffRead,
    ReviewChangesRead,
    SampleCreate,
    SampleRead,
    SampleSummaryRead,
    VerdictCreate,
    VerdictRecordedRead,
)
from leadledger.services import auth, council, model_changes, review, status_migrations

router = APIRouter(tags=["governance"])
VersionId = Annotated[int | None, Query(ge=1, le=2**62, description="a stored model version id")]


@router.get(
    "/model/diff",
    response_model=ModelDiffRead,
    responses=errors(404),
    summary="What changed between two stored model versions (default: the previous version -> the active one)",
)
def stored_diff(user: CurrentUser, app: AppDep, old: VersionId = None, new: VersionId = None) -> dict[str, Any]:
    return model_changes.diff(app, old, new).as_dict()


@router.post(
    "/model/diff",
    response_model=ModelDiffRead,
    openapi_extra=MODEL_BODY,
    summary="What a proposed model file would change against the active model (ops), before PUT /model",
)
async def proposed_diff(request: Request, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    await run_in_threadpool(auth.require_role, app, user.name, {"ops"}, "lint or change the status model")
    text = await _model_text(request)
    proposed = await run_in_threadpool(model_changes.proposed_version, text, "request")
    return (await run_in_threadpool(model_changes.diff, app, None, proposed)).as_dict()


# --- status migrations -------------------------------------------------------------------------------------


@router.get(
    "/model/migrations",
    response_model=MigrationsRead,
    response_model_by_alias=True,
    summary="The active model's migrations (older keys composed across versions) and leads still in an old key",
)
def migrations(user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return status_migrations.current(app)


@router.post(
    "/model/migrations/plan",
    response_model=MigrationPlanRead,
    response_model_by_alias=True,
    openapi_extra=MODEL_BODY,
    summary="What PUT /model would do with a file's migrations (ops): lint against every version, leads to move",
)
async def migration_plan(request: Request, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    await run_in_threadpool(auth.require_role, app, user.name, {"ops"}, "lint or change the status model")
    text = await _model_text(request)
    return await run_in_threadpool(status_migrations.plan_file, app, text, "request")


@router.post(
    "/model/migrate",
    response_model=MigratedRead,
    response_model_by_alias=True,
    summary="Move the leads still in a key the active model dropped, by migration entries (ops)",
)
def migrate(user: CurrentUser, app: AppDep) -> dict[str, Any]:
    auth.require_role(app, user.name, {"ops"}, "move leads by a model migration")
    return status_migrations.migrate(app, user.name)


# --- manager review ----------------------------------------------------------------------------------------

RowId = Annotated[int, Path(ge=1, le=2**62)]


@router.get(
    "/reviews/changes",
    response_model=ReviewChangesRead,
    responses=errors(404),
    summary="Status changes to review, oldest first: your teams' (managers), all (ops), your own (reps)",
)
def review_changes(
    user: CurrentUser,
    app: AppDep,
    team: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    rep: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    date_from: Annotated[Day | None, Query(alias="from")] = None,
    date_to: Annotated[Day | None, Query(alias="to")] = None,
    status: Annotated[str | None, Query(pattern=KEY_PATTERN)] = None,
    overrides_only: bool = False,
    unreviewed: bool = False,
    sample: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=review.PAGE_MAX)] = 200,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    return review.list_transitions(
        app,
        actor=user.name,
        team=team,
        rep=rep,
        date_from=date_from,
        date_to=date_to,
        status=status,
        overrides_only=overrides_only,
        unreviewed=unreviewed,
        sample_id=sample,
        limit=limit,
        offset=offset,
    )


@router.post(
    "/reviews",
    status_code=201,
    response_model=VerdictRecordedRead,
    responses=errors(404),
    summary="Judge a status change ok or wrong_usage (managers for their teams, ops); wrong usage notifies the rep",
)
def post_verdict(body: VerdictCreate, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return review.record_verdict(app, actor=user.name, entry_id=body.entry, verdict=body.verdict, note=body.note)


@router.post(
    "/reviews/samples",
    response_model=SampleRead,
    responses=errors(404),
    summary="Draw (once) the month's stratified spot-check sample of each rep's changes; again: the stored one",
)
def post_sample(body: SampleCreate, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return review.draw_sample(
        app, actor=user.name, month=body.month, per_rep=body.per_rep, manager=body.manager, seed=body.seed
    )


@router.get("/reviews/samples", response_model=list[SampleSummaryRead], summary="Spot-check samples drawn so far")
def get_samples(
    user: CurrentUser, app: AppDep, month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None
) -> list[dict[str, Any]]:
    return review.list_samples(app, actor=user.name, month=month)


@router.get(
    "/reviews/samples/{sample_id}",
    response_model=SampleRead,
    responses=errors(404),
    summary="One spot-check sample with the latest verdict on each change",
)
def get_sample(sample_id: RowId, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    return review.sample_view(app, actor=user.name, sample_id=sample_id)


# --- the status council ------------------------------------------------------------------------------------


@router.get(
    "/council/pack",
    response_model=None,
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
            "description": "the pack, as `leadledger council pack --format json|md|html` prints it",
        }
    },
    summary="The status council's pack for a period (managers and ops): usage, overrides, rates, spot-checks, "
    "inconsistent usage, statuses that may not need to be separate, model changes",
)
def council_pack(
    user: CurrentUser,
    app: AppDep,
    date_from: Annotated[Day, Query(alias="from")],
    date_to: Annotated[Day, Query(alias="to")],
    format: Annotated[str, Query(pattern="^(json|md|html)$")] = "json",
) -> Response | dict[str, Any]:
    from leadledger.analytics.council_render import pack_html, pack_markdown

    data = council.pack(app, actor=user.name, date_from=date_from, date_to=date_to)
    if format == "html":
        return HTMLResponse(pack_html(data))
    if format == "md":
        return PlainTextResponse(pack_markdown(data), media_type="text/markdown; charset=utf-8")
    return data
