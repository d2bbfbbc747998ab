"""My work: what a rep must do now (tasks, SLA clocks about to breach, stale leads, the inbox) and, for managers,
the team at a glance, the approvals queue (approve or deny with a note) and overrides of automation to review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger.services import inbox, leadquery, worklists
from leadledger.services.approvals import decide
from leadledger.services.errors import ChangeRefused
from leadledger.services.leadquery import LeadFilter
from leadledger.web.context import CurrentViewer, State, Viewer, WebState, form_data
from leadledger.web.pages.leads import flash_header, set_flash
from leadledger.web.render import page

router = APIRouter()
RowId = Annotated[int, Path(ge=1, le=2**62)]
SHORT = 20


def _mine(state: WebState, viewer: Viewer) -> dict[str, Any]:
    app = state.app
    me = LeadFilter(owners=(viewer.name,))
    found: dict[str, Any] = {
        "tasks": inbox.list_tasks(app, assignee=viewer.name, status="open", limit=SHORT),
        "late": leadquery.find_leads(
            app, viewer.scope, LeadFilter(owners=me.owners, sla="breached"), sort="longest_in_status", limit=SHORT
        ),
        "soon": leadquery.find_leads(
            app, viewer.scope, LeadFilter(owners=me.owners, sla="due_soon"), sort="longest_in_status", limit=SHORT
        ),
        "stale": leadquery.find_leads(
            app, viewer.scope, LeadFilter(owners=me.owners, stale=True), sort="longest_in_status", limit=SHORT
        ),
        "notes": inbox.list_notifications(app, recipient=viewer.name, unread_only=True, limit=SHORT),
    }
    if viewer.is_manager:
        found["team"] = worklists.team_summary(app, viewer.scope)
        found["approvals"] = worklists.approvals_for(app, viewer.scope)
        found["overrides"] = worklists.recent_overrides(app, viewer.scope, limit=SHORT)
    return found


@router.get("/work")
async def my_work(request: Request, viewer: CurrentViewer, state: State) -> Response:
    data = await run_in_threadpool(_mine, state, viewer)
    return page(request, "work/page.html", title="My work", model=state.model, **data)


@router.post("/tasks/{task_id}/done")
async def task_done(request: Request, task_id: RowId, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    why = (form.get("no_change") or [""])[-1].strip() or None  # a status's task: why the lead stays there
    await run_in_threadpool(
        lambda: inbox.complete_task(state.app, task_id=task_id, actor=viewer.name, no_change=why)
    )
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers=flash_header("ok", f"Task #{task_id} done."))
    response = RedirectResponse("/work", status_code=303)
    set_flash(response, "ok", f"Task #{task_id} done.")
    return response


@router.post("/inbox/read")
async def inbox_read(viewer: CurrentViewer, state: State) -> Response:
    marked = await run_in_threadpool(lambda: inbox.mark_read(state.app, recipient=viewer.name))
    response = RedirectResponse("/work", status_code=303)
    set_flash(response, "ok", f"{marked} notification{'' if marked == 1 else 's'} marked read.")
    return response


@router.post("/approvals/{approval_id}/{decision}")
async def approval_decide(request: Request, approval_id: RowId, decision: str, viewer: CurrentViewer,
                          state: State) -> Response:  # fmt: skip
    if decision not in ("approve", "deny"):
        return Response(status_code=404)
    form = await form_data(request)
    note = (form.get("note") or [""])[-1].strip() or None

    def run() -> dict[str, Any]:
        return decide(state.app, approval_id=approval_id, actor=viewer.name, approve=decision == "approve", note=note)

    try:
        result = await run_in_threadpool(run)
        kind, message = "ok", f"Approval #{approval_id} {result['decision']}."
    except ChangeRefused as exc:  # the lead moved on since the request: the change no longer fits
        kind = "error"
        message = f"Approval #{approval_id} cannot be applied now: " + "; ".join(v.message for v in exc.violations)
    response = RedirectResponse("/work#approvals", status_code=303)
    set_flash(response, kind, message)
    return response
