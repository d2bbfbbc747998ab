"""Imports and reports: thin routes over `leadledger.importers.import_file` and `leadledger.analytics.report`.

An import's CSV streams to a temporary file (never held in memory), then runs exactly as `leadledger import`
does, with its role check (ops and integrations), its reject file and its run log; the answer is the run's
summary. Reports answer the JSON `leadledger report NAME --format json` prints.
"""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from leadledger import analytics
from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.schemas import Day, Moment
from leadledger.importers.mapping import KINDS, PRESETS
from leadledger.importers.service import ImportFailed, import_file, list_runs, require_importer

router = APIRouter()
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")
MAX_IMPORT_BYTES = 1 << 30
# built from the analytics package, so a report added there is listed in /openapi.json without an edit here
ReportName = StrEnum("ReportName", [(name, name) for name in analytics.REPORT_NAMES])  # type: ignore[misc]
Grouping = StrEnum("Grouping", [(name, name) for name in analytics.GROUPINGS])  # type: ignore[misc]
IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "description": "the CSV export itself (a Salesforce Lead.csv or LeadHistory.csv, a HubSpot export)",
        "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/imports",
    openapi_extra=IMPORT_BODY,
    responses={
        200: {"description": "the import's summary (as `leadledger import … --format json` prints it)"},
        **errors(409),
    },
    tags=["imports"],
    summary="Import a CRM export (ops, integrations): leads or their status history; rejected rows are counted",
)
async def post_import(
    request: Request,
    user: CurrentUser,
    app: AppDep,
    kind: Annotated[Literal["leads", "history"], Query(description=f"one of: {', '.join(KINDS)}")],
    preset: Annotated[Literal["salesforce", "hubspot"], Query(description="the export's shape")],
    dry_run: bool = False,
    strict: bool = False,
) -> Any:
    assert preset in PRESETS
    await run_in_threadpool(require_importer, app, user.name)  # before a byte of a gigabyte upload is read
    with tempfile.TemporaryDirectory(prefix="leadledger-import-") as folder:
        source = Path(folder) / f"{kind}.csv"
        with source.open("wb") as out:
            async for chunk in request.stream():  # the guard stops the stream past MAX_IMPORT_BYTES
                out.write(chunk)

        def run() -> dict[str, Any]:
            summary = import_file(
                app,
                kind=kind,
                path=source,
                actor=user.name,
                preset=preset,
                rejects_path=Path(folder) / "rejects.csv",
                strict=strict,
                dry_run=dry_run,
            )
            return summary.as_dict()

        try:
            result = await run_in_threadpool(run)
        except ImportFailed as exc:
            body = exc.summary.as_dict() if exc.summary is not None else {}
            return JSONResponse({"detail": str(exc), "violations": [], "summary": _public(body)}, status_code=409)
    return _public(result)


def _public(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without server paths (the upload and its reject file were temporary)."""
    return {k: v for k, v in summary.items() if k not in ("file", "rejects_file")}


@router.get("/imports", tags=["imports"], summary="The most recent import runs, newest first")
def get_imports(
    user: CurrentUser, app: AppDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[dict[str, Any]]:
    return list_runs(app, limit=limit)


@router.get("/reports", tags=["reports"], summary="The names of the reports")
def report_names(user: CurrentUser) -> list[str]:
    return list(analytics.REPORT_NAMES)


@router.get(
    "/reports/{name}",
    tags=["reports"],
    summary="One report from the ledger, as `leadledger report NAME --format json` prints it",
)
def get_report(
    name: ReportName,
    user: CurrentUser,
    app: AppDep,
    as_of: Annotated[Moment | None, Query(description="the pipeline as it was then")] = None,
    date_from: Annotated[Day | None, Query(alias="from")] = None,
    date_to: Annotated[Day | None, Query(alias="to")] = None,
    by: Annotated[Grouping | None, Query()] = None,
) -> dict[str, Any]:
    grouping = by.value if by is not None else None
    return analytics.report(app, name.value, as_of=as_of, date_from=date_from, date_to=date_to, by=grouping)
