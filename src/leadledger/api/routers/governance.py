"""Governance over HTTP: model versions compared (`/model/diff`).

Thin routes over `leadledger.services.model_changes`; every rule lives in the services.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.routers.model import MODEL_BODY, _model_text
from leadledger.api.schemas_governance import ModelDiffRead
from leadledger.services import auth, model_changes

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
