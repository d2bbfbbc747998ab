"""The lead page: where the lead is on the model's path and what the guide says to do next, its timeline (ledger,
activities, tasks, SLA clocks), fields and owner history, and the change form with its preview.

The preview is the engine's dry run (`services.preview.preview_change`): the real write path, rolled back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from leadledger.services import leadpage
from leadledger.services.errors import Invalid
from leadledger.services.preview import preview_change, requirements
from leadledger.web.context import CurrentViewer, State, Viewer, WebState, form_data
from leadledger.web.pages.leads import LeadId, change_spec, targets_for
from leadledger.web.render import page

router = APIRouter()


@router.get("/leads/{lead_id}")
async def lead_page(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    data = await run_in_threadpool(leadpage.lead_page, state.app, viewer.scope, lead_id)
    model = state.model
    lead = data.lead
    status = model.statuses.get(lead["status"])
    on_path = lead["status"] if lead["status"] in model.forward_path else (status.parent if status else None)
    timeline = _timeline(data)
    return page(request, "lead/page.html", title=lead["name"] or lead_id, data=data, lead=lead, status=status,
                model=model, on_path=on_path if on_path in model.forward_path else None, timeline=timeline,
                targets=targets_for(model, viewer, lead), typed=[f for f in model.fields if f in lead["fields"]],
                custom=sorted(k for k in lead["fields"] if k not in model.fields))  # fmt: skip


def _timeline(data: leadpage.LeadPageData) -> list[dict[str, Any]]:
    """Ledger entries, activities and tasks in one list, newest first (ledger order breaks ties)."""
    items: list[tuple[Any, int, dict[str, Any]]] = []
    for entry in data.entries:
        items.append((entry["at"], 2 * entry["seq"] + 1, {**entry, "item": "entry"}))
    for activity in data.activities:
        items.append((activity["at"], 0, {**activity, "item": "activity"}))
    for task in data.tasks:
        items.append((task["created_at"], 1, {**task, "item": "task"}))
    items.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [item for _, _, item in items]


@router.get("/leads/{lead_id}/preview")
async def preview(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    """What saving a change would do, by the engine's dry run (the fields as query parameters)."""
    form = {k: request.query_params.getlist(k) for k in request.query_params}
    return await _preview(request, lead_id, viewer, state, form)


@router.post("/leads/{lead_id}/preview")
async def preview_form(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    """The same dry run for the change form as it is filled in now (htmx posts it here on every change)."""
    return await _preview(request, lead_id, viewer, state, await form_data(request))


async def _preview(request: Request, lead_id: str, viewer: Viewer, state: WebState,
                   form: dict[str, list[Any]]) -> Response:  # fmt: skip
    model = state.model
    spec = change_spec(model, lead_id, form, model.calendar(None).tz)
    if spec.status not in model.statuses:
        raise Invalid("status: choose a status")
    await run_in_threadpool(leadpage.lead_page, state.app, viewer.scope, lead_id)  # NotFound outside the scope
    result = await run_in_threadpool(lambda: preview_change(state.app, actor=viewer.name, spec=spec))
    return page(request, "lead/preview.html", result=result, need=requirements(model, str(spec.status)), model=model)
