"""Imports (ops): upload a CRM export with its preset and mapping, watch the progress, read the summary and
download the rejects file. The import itself is `leadledger.importers.import_file`, as on the command line."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from leadledger.importers.mapping import KINDS, PRESETS
from leadledger.importers.service import list_runs
from leadledger.services.errors import Invalid, NotFound
from leadledger.web.context import CurrentViewer, State, form_data
from leadledger.web.imports import ImportJobs
from leadledger.web.pages.guide import require_ops
from leadledger.web.render import page

router = APIRouter()
JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,40}$")]
CHUNK = 1 << 20


def jobs_of(request: Request) -> ImportJobs:
    jobs: ImportJobs = request.app.state.imports
    return jobs


@router.get("/imports")
async def imports_page(request: Request, viewer: CurrentViewer, state: State) -> Response:
    require_ops(viewer, "import files")
    runs = await run_in_threadpool(lambda: list_runs(state.app, limit=20))
    return page(request, "imports/page.html", title="Imports", runs=runs, jobs=jobs_of(request).recent(),
                kinds=KINDS, presets=PRESETS, live=False)  # fmt: skip


@router.post("/imports")
async def start_import(request: Request, viewer: CurrentViewer, state: State) -> Response:
    require_ops(viewer, "import files")
    form = await form_data(request)
    upload = (form.get("file") or [None])[-1]
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid("file: choose the CSV file to import")
    kind = str((form.get("kind") or ["leads"])[-1])
    preset = str((form.get("preset") or ["generic"])[-1])
    if kind not in KINDS or preset not in PRESETS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}; preset: one of {', '.join(PRESETS)}")
    mapping = str((form.get("mapping") or [""])[-1]).strip() or None
    jobs = jobs_of(request)
    job = jobs.new(actor=viewer.name, kind=kind, preset=preset, filename=str(upload.filename),
                   dry_run=(form.get("dry_run") or [""])[-1] == "1")  # fmt: skip
    with job.source.open("wb") as out:
        while chunk := await upload.read(CHUNK):
            out.write(chunk)
    jobs.start(job, mapping=mapping, strict=(form.get("strict") or [""])[-1] == "1")
    return RedirectResponse(f"/imports/jobs/{job.id}", status_code=303)


@router.get("/imports/jobs/{job_id}")
async def job_page(request: Request, job_id: JobId, viewer: CurrentViewer) -> Response:
    require_ops(viewer, "see imports")
    job = jobs_of(request).get(job_id)
    if job is None:
        raise NotFound("no such import job in this server (jobs are kept for an hour)")
    template = "imports/job_status.html" if request.headers.get("hx-request") == "true" else "imports/job.html"
    return page(request, template, title="Import", job=job, live=False)


@router.get("/imports/jobs/{job_id}/rejects.csv")
async def job_rejects(request: Request, job_id: JobId, viewer: CurrentViewer) -> Response:
    require_ops(viewer, "download reject files")
    job = jobs_of(request).get(job_id)
    if job is None or job.running or not job.rejects.exists():
        raise NotFound("no reject file for this import")
    return FileResponse(job.rejects, media_type="text/csv", filename=f"{job.filename.rsplit('.', 1)[0]}.rejects.csv")
