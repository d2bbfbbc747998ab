"""The status guide (`/guide`, public when ops switches it on) and the model page (`/model`, ops): statuses, the
transitions as a matrix, lint findings of the active model, versions, and linting or activating a new file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from leadledger.model.guide import guide_context
from leadledger.model.lint import lint
from leadledger.model.loader import load_text
from leadledger.model.source import ModelError
from leadledger.services import models, sitesettings
from leadledger.services.errors import Forbidden
from leadledger.services.models import ModelRejected
from leadledger.web.context import CurrentViewer, LoginRequired, MaybeViewer, State, Viewer, form_data
from leadledger.web.render import page

router = APIRouter()
MAX_MODEL_TEXT = 512_000


def require_ops(viewer: Viewer, what: str) -> None:
    if not viewer.is_ops:
        raise Forbidden(f"only ops may {what} ({viewer.name} is a {viewer.role})")


@router.get("/guide")
async def guide(request: Request, viewer: MaybeViewer, state: State) -> Response:
    if viewer is None and not await run_in_threadpool(sitesettings.is_on, state.app, "public_guide"):
        raise LoginRequired("please log in to read the status guide")
    model = state.model
    return page(request, "guide/guide.html", title="Status guide", live=False, **guide_context(model))


def _model_page(state: Any) -> dict[str, Any]:
    loaded = state.app.loaded_model()
    return {"loaded": loaded, "findings": lint(loaded), "history": models.model_history(state.app)}


@router.get("/model")
async def model_page(request: Request, viewer: CurrentViewer, state: State) -> Response:
    require_ops(viewer, "see the model page")
    data = await run_in_threadpool(_model_page, state)
    model = data["loaded"].model
    return page(request, "guide/model.html", title="Model", model=model, live=False, checked=None, text="", **data)


@router.post("/model")
async def model_check(request: Request, viewer: CurrentViewer, state: State) -> Response:
    """Lint a model file pasted or uploaded; with `activate`, make it the active model when it has no error."""
    require_ops(viewer, "change the status model")
    form = await form_data(request)
    text = ""
    upload = (form.get("file") or [None])[-1]
    if isinstance(upload, UploadFile) and upload.filename:
        text = (await upload.read(MAX_MODEL_TEXT + 1)).decode("utf-8", errors="replace")
    if not text:
        value = (form.get("text") or [""])[-1]
        text = value if isinstance(value, str) else ""
    activate = (form.get("activate") or [""])[-1] == "1"
    checked: dict[str, Any]
    if len(text) > MAX_MODEL_TEXT:
        checked = {"error": f"the file is larger than {MAX_MODEL_TEXT // 1000} kB"}
    elif not text.strip():
        checked = {"error": "paste a model file or choose one"}
    else:
        try:
            loaded = load_text(text, "pasted model")
            findings = lint(loaded)
            checked = {"findings": findings, "name": loaded.model.name, "version": loaded.model.version}
            if activate and not any(f.level == "error" for f in findings):
                stored = await run_in_threadpool(
                    lambda: models.activate_model(state.app, text=text, file="web upload", actor=viewer.name)
                )
                checked["activated"] = stored["id"]
        except ModelError as exc:
            checked = {"error": str(exc)}
        except ModelRejected as exc:
            checked = {"findings": exc.findings}
    data = await run_in_threadpool(_model_page, state)
    return page(request, "guide/model.html", title="Model", model=data["loaded"].model, live=False, checked=checked,
                text=text, **data)  # fmt: skip
