"""The status model: anyone reads it and its generated guide; only ops replace it, and only with a model that
loads and lints without errors (every earlier version is kept).

A model file goes in as YAML (`Content-Type: application/yaml`, e.g. `curl --data-binary @model.yaml`) or
as JSON `{"yaml": "..."}`. Only ops may send one at all: parsing YAML is the expensive part, so the role is
checked before the file is read.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.errors import InvalidBody, validation_violations
from leadledger.api.openapi import errors
from leadledger.api.schemas import LintRead, ModelRead, ModelUpdate, ModelVersionRead
from leadledger.api.schemas_governance import ModelAppliedRead
from leadledger.model.guide import guide_html, guide_markdown
from leadledger.model.loader import load_text
from leadledger.services import auth, status_migrations
from leadledger.services import models as model_service
from leadledger.services.errors import Invalid

router = APIRouter(tags=["status model"])
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
GUIDE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
MODEL_BODY = {
    "requestBody": {
        "required": True,
        "description": "the whole model file",
        "content": {
            "application/yaml": {"schema": {"type": "string", "minLength": 1}},
            "application/json": {"schema": {"$ref": "#/components/schemas/ModelUpdate"}},
        },
    }
}


async def _model_text(request: Request) -> str:
    """The model file from a YAML body or a JSON {"yaml": ...} body."""
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media in YAML_TYPES:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("the model file is not UTF-8") from None
        if not text.strip() or "\x00" in text:
            raise Invalid("the model file is empty or holds NUL characters")
        return text
    try:
        return ModelUpdate.model_validate(json.loads(raw)).yaml
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            raise InvalidBody(validation_violations(exc.errors())) from None
        raise Invalid("the body is not valid JSON") from None


@router.get("/model", response_model=ModelRead, summary="The active status model: statuses, stages, reasons, YAML")
def read_model(user: CurrentUser, app: AppDep) -> dict[str, Any]:
    history = model_service.model_history(app)
    loaded = app.loaded_model()
    model = loaded.model
    latest = history[-1]
    statuses = [
        {
            "key": s.key,
            "label": s.label,
            "parent": s.parent,
            "category": s.category,
            "owner_role": s.owner_role,
            "stages": sorted(s.stages, key=model.stage_rank),
            "next": list(model.allowed_targets(s.key)),
            "locked": s.locked,
            "definition": s.definition,
        }
        for s in model.statuses.values()
    ]
    return {
        **latest,
        "stages": [s.key for s in model.stages],
        "statuses": statuses,
        "reasons": sorted(model.reasons),
        "yaml": loaded.text,
    }


@router.get("/model/history", response_model=list[ModelVersionRead], summary="Every stored version of the model")
def history(user: CurrentUser, app: AppDep) -> list[dict[str, Any]]:
    return model_service.model_history(app)


@router.get(
    "/model/guide",
    responses={
        200: {
            "content": {"text/markdown": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}},
            "description": "the status guide",
        }
    },
    summary="The status guide generated from the model (Markdown or HTML)",
)
def guide(user: CurrentUser, app: AppDep, format: Annotated[Literal["md", "html"], Query()] = "md") -> Response:
    model = app.loaded_model().model
    if format == "html":  # its own stylesheet is inline; nothing else may load or run
        return HTMLResponse(guide_html(model), headers={"Content-Security-Policy": GUIDE_CSP})
    return PlainTextResponse(guide_markdown(model), media_type="text/markdown; charset=utf-8")


@router.post(
    "/model/lint",
    response_model=LintRead,
    openapi_extra=MODEL_BODY,
    summary="Lint a model file without activating it (ops)",
)
async def lint_model(request: Request, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    await run_in_threadpool(auth.require_role, app, user.name, {"ops"}, "lint or change the status model")
    text = await _model_text(request)
    loaded = await run_in_threadpool(load_text, text, "request")
    findings = [f.as_dict() for f in await run_in_threadpool(status_migrations.lint_with_history, app, loaded)]
    errors_found = sum(1 for f in findings if f["level"] == "error")
    return {"errors": errors_found, "warnings": len(findings) - errors_found, "findings": findings}


@router.put(
    "/model",
    status_code=201,
    response_model=ModelAppliedRead,
    openapi_extra=MODEL_BODY,
    responses=errors(409),
    summary="Replace the active model (ops); it must load and lint without errors; old versions are kept. Leads in a "
    "status its migrations rename, merge or split are moved by migration entries (POST /model/migrations/plan first)",
)
async def replace_model(request: Request, user: CurrentUser, app: AppDep) -> dict[str, Any]:
    await run_in_threadpool(auth.require_role, app, user.name, {"ops"}, "lint or change the status model")
    text = await _model_text(request)
    result = await run_in_threadpool(lambda: status_migrations.apply_model(app, text, "request", user.name))
    return {**result["model"], "migrated": result["migrated"]}
