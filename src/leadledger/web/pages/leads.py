"""Leads: the filtered list, one-click status changes in place, the change form, bulk changes, saved views.

Every change goes through the process's change writer (the API's), so it is judged by the same engine, in the
same transactions, with the same rules; a refusal comes back with every violation and is shown next to the
field it names. Reads go through `services.leadquery` with the viewer's scope: a lead outside it does not
exist as far as this page is concerned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger.domain.changes import Violation
from leadledger.domain.durations import parse_duration
from leadledger.domain.statusmodel import StatusModel
from leadledger.services import leadquery, people, views
from leadledger.services.changes import ActivityIn, Applied, ChangeSpec, PendingApproval
from leadledger.services.errors import ChangeRefused, Invalid, NotFound
from leadledger.services.leadquery import SORTS, UNOWNED, LeadFilter, LeadPage
from leadledger.services.preview import Requirements, requirements
from leadledger.services.visibility import LeadScope
from leadledger.services.writer import ChangeJob, Done
from leadledger.web.context import CurrentViewer, State, Viewer, WebState, form_data
from leadledger.web.render import FLASH_COOKIE, page

router = APIRouter()
LeadId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
PAGE_SIZE = 50
FILTER_KEYS = ("status", "stage", "owner", "team", "source", "campaign", "reason", "older", "sla", "stale", "sort")
# violations that say "you may not" rather than "not like this": no form can fix them
AUTHORISATION = {("owner", "not_owner"), ("owner", "not_allowed"), ("status", "role_not_allowed"),
                 ("stage", "role_not_allowed"), ("status", "needs_human"), ("lead", "not_found")}  # fmt: skip


# --- reading the filters ----------------------------------------------------------------------------


def request_params(request: Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key in FILTER_KEYS or key in ("cursor", "view"):
            value = value.strip()
            if value and len(value) <= 500:
                found.setdefault(key, []).append(value)
    return found


def lead_filter(params: Mapping[str, list[str]]) -> tuple[LeadFilter, str]:
    """The list's filter and sort from its query string; raises Invalid naming the filter that is wrong."""
    older = params.get("older", [None])[0]
    try:
        age = parse_duration(older) if older else None
    except ValueError as exc:
        raise Invalid(f"older: {exc}") from exc
    sort = params.get("sort", ["newest"])[0]
    sla = params.get("sla", [None])[0]
    where = LeadFilter(
        statuses=tuple(params.get("status", ())),
        stages=tuple(params.get("stage", ())),
        owners=tuple(params.get("owner", ())),
        teams=tuple(params.get("team", ())),
        sources=tuple(params.get("source", ())),
        campaigns=tuple(params.get("campaign", ())),
        reasons=tuple(params.get("reason", ())),
        in_status_longer_than=age,
        sla=sla,
        stale=params.get("stale", [""])[0] in ("1", "on", "true"),
    )
    return where, sort


@dataclass(frozen=True)
class Choices:
    owners: list[tuple[str, str]]
    teams: list[str]
    sources: list[str]
    campaigns: list[str]


def _choices(state: WebState, scope: LeadScope) -> Choices:
    users = [u for u in people.list_users(state.app) if u["active"] and u["role"] in ("rep", "manager", "ops")]
    if not scope.everything:
        users = [u for u in users if u["name"] == scope.actor.name or (u["team"] and u["team"] in scope.teams)]
    owners = [(UNOWNED, "(nobody)")] + [(u["name"], u["name"]) for u in users if u["name"] != "system"]
    teams = sorted(scope.teams) if not scope.everything else [t["name"] for t in people.list_teams(state.app)]
    return Choices(
        owners=owners,
        teams=teams,
        sources=sorted(leadquery.distinct_values(state.app, "source")),
        campaigns=sorted(leadquery.distinct_values(state.app, "campaign")),
    )


# --- the list -----------------------------------------------------------------------------------------


@router.get("/leads")
async def lead_list(request: Request, viewer: CurrentViewer, state: State) -> Response:
    params = request_params(request)
    if "view" in params and len(params) == 1:
        saved = await run_in_threadpool(views.list_views, state.app, user=viewer.name)
        chosen = next((v for v in saved if str(v["id"]) == params["view"][0]), None)
        if chosen is None:
            raise NotFound("no such saved view")
        return RedirectResponse(f"/leads?{chosen['query']}", status_code=303)
    where, sort = lead_filter(params)
    cursor = params.get("cursor", [None])[0]
    result: LeadPage = await run_in_threadpool(
        leadquery.find_leads, state.app, viewer.scope, where, sort=sort, cursor=cursor, limit=PAGE_SIZE
    )
    context: dict[str, Any] = {
        "result": result,
        "params": {k: v for k, v in params.items() if k in FILTER_KEYS},
        "cursor": cursor,
        "sort": sort,
        "sorts": SORTS,
        "model": state.model,
        "viewer_scope": viewer.scope,
    }
    if request.headers.get("hx-target") == "results":
        return page(request, "leads/results.html", **context)
    context["choices"] = await run_in_threadpool(_choices, state, viewer.scope)
    context["views"] = await run_in_threadpool(views.list_views, state.app, user=viewer.name)
    return page(request, "leads/list.html", title="Leads", **context)


@router.get("/leads/{lead_id}/row")
async def lead_row(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    """One row of the list, as it is now (live updates and undo of an open menu ask for it)."""
    found = await _visible(state, viewer, lead_id)
    return page(request, "leads/row.html", lead=found.rows[0], clock=found.sla.get(lead_id), model=state.model,
                viewer_scope=viewer.scope)  # fmt: skip


async def _visible(state: WebState, viewer: Viewer, lead_id: str) -> LeadPage:
    found: LeadPage = await run_in_threadpool(
        leadquery.find_leads, state.app, viewer.scope, LeadFilter(ids=(lead_id,)), limit=1, with_count=False
    )
    if not found.rows:
        raise NotFound(f"no lead {lead_id!r}")
    return found


# --- changing one lead ----------------------------------------------------------------------------------


CONTEXTS = ("row", "page", "board")  # where a change form sits: a list row, the lead page, a board card


def context_of(value: str | None) -> str:
    return value if value in CONTEXTS else "row"


def needs_form(model: StatusModel, need: Requirements, fields: Mapping[str, Any]) -> bool:
    """Whether moving a lead with these fields to the status asks for anything: else one click does it."""

    def has(name: str) -> bool:
        value = fields.get(name)
        return value is not None and str(value).strip() != ""

    missing = [f for f in need.fields if f.required and not f.group and not has(f.name)]
    groups = {f.group for f in need.fields if f.group}
    unmet = [g for g in groups if not any(has(n) for n in g)]
    return bool(missing or unmet or need.reason_required or need.activity)


def targets_for(model: StatusModel, viewer: Viewer, lead: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statuses this viewer may move this lead to, by the model, each saying whether it needs a form."""
    if not viewer.scope.may_change(lead["owner"]):
        return []
    fields = {**lead["fields"], **{k: lead.get(k) for k in ("name", "email", "phone", "company")}}
    found = []
    for key in model.allowed_targets(lead["status"], viewer.role):
        need = requirements(model, key)
        found.append({"key": key, "label": need.label, "form": needs_form(model, need, fields), "need": need})
    return found


@router.get("/leads/{lead_id}/change")
async def change_menu(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    found = await _visible(state, viewer, lead_id)
    lead = found.rows[0]
    model = state.model
    return page(request, "leads/menu.html", lead=lead, targets=targets_for(model, viewer, lead), model=model,
                context=context_of(request.query_params.get("context")))  # fmt: skip


@router.get("/leads/{lead_id}/change/{status}")
async def change_form(request: Request, lead_id: LeadId, status: str, viewer: CurrentViewer, state: State) -> Response:
    """The in-place form for moving the lead to `status`: exactly what the status asks for, and the preview."""
    found = await _visible(state, viewer, lead_id)
    model = state.model
    if status not in model.statuses:
        raise NotFound(f"no status {status!r}")
    return page(request, "leads/change_form.html", lead=found.rows[0], need=requirements(model, status), values={},
                errors={}, general=[], context=context_of(request.query_params.get("context")))  # fmt: skip


@router.get("/leads/{lead_id}/form")
async def change_form_for(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    """The same form, the status given as `?to=` (what the lead page's "Move to" drop-down sends)."""
    status = request.query_params.get("to", "")
    if not status:
        return Response(status_code=200)  # "Choose a status…": an empty form area
    return await change_form(request, lead_id, status, viewer, state)


def change_spec(model: StatusModel, lead_id: str, form: Mapping[str, list[str]], tz: Any) -> ChangeSpec:
    """The ChangeSpec a change form describes: status, reason, note, the logged interaction, field values."""
    status = _one(form, "status")
    if not status:
        raise Invalid("status: choose a status")
    fields: dict[str, Any] = {}
    for key, values in form.items():
        if key.startswith("f.") and values and values[-1].strip():
            name = key[2:]
            fields[name] = _field_value(model, name, values[-1].strip(), tz)
    log = None
    token = _one(form, "log")
    if token:
        log = _activity(token)
    return ChangeSpec(
        lead_id,
        status=status,
        reason=_one(form, "reason") or None,
        note=_one(form, "note") or None,
        fields=fields,
        log=log,
        override=_one(form, "override") in ("1", "on"),
    )


def _one(form: Mapping[str, list[str]], key: str) -> str:
    values = form.get(key) or [""]
    value = values[-1]
    return value.strip() if isinstance(value, str) else ""


def _field_value(model: StatusModel, name: str, value: str, tz: Any) -> Any:
    spec = model.fields.get(name)
    if spec is not None and spec.type == "datetime" and "T" in value and not value.endswith("Z") and "+" not in value:
        try:  # a datetime-local input: wall time in the zone the page shows times in
            return datetime.fromisoformat(value).replace(tzinfo=tz).isoformat()
        except ValueError:
            return value
    return value


def _activity(token: str) -> ActivityIn:
    kind, _, rest = token.partition(":")
    data: dict[str, Any] = {}
    if rest:
        key, _, value = rest.partition("=")
        data[key] = value
    return ActivityIn(kind, data=data)


def violations_by_field(
    violations: Sequence[Violation], need: Requirements | None
) -> tuple[dict[str, list[str]], list[str]]:
    """Each violation under the form field it names; the others (status, owner…) above the form."""
    shown = {"reason", "activity", "note"} | ({f.name for f in need.fields} if need else set())
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    for v in violations:
        names = v.field.split("|")
        target = next((n for n in names if n in shown), None)
        if target is None:
            general.append(v.message)
        else:
            errors.setdefault(target, []).append(v.message)
    return errors, general


@router.post("/leads/{lead_id}/status")
async def change_status(request: Request, lead_id: LeadId, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    context = context_of(_one(form, "context"))
    model = state.model
    if not await run_in_threadpool(leadquery.is_visible, state.app, viewer.scope, lead_id):
        raise NotFound(f"no lead {lead_id!r}")
    spec = change_spec(model, lead_id, form, model.calendar(None).tz)
    done: Done = await state.writer.run(ChangeJob(viewer.name, spec))
    outcome = done.outcome
    if isinstance(outcome, ChangeRefused):
        codes = {(v.field, v.code) for v in outcome.violations}
        need = requirements(model, spec.status) if spec.status in model.statuses else None
        if codes & AUTHORISATION or need is None:
            messages = "; ".join(v.message for v in outcome.violations)
            return Response(status_code=403, headers=flash_header("error", f"Not changed: {messages}"))
        errors, general = violations_by_field(outcome.violations, need)
        found = await _visible(state, viewer, lead_id)
        values = {k: v[-1] for k, v in form.items() if v}
        # the form shows in the lead's pop-up, whichever button (one click, or the form's Save) asked
        return page(request, "leads/change_form.html", status_code=422, lead=found.rows[0], need=need,
                    values=values, errors=errors, general=general, context=context,
                    headers={"HX-Retarget": f"#pop-{lead_id}", "HX-Reswap": "innerHTML"})  # fmt: skip
    message, kind = _outcome_message(model, outcome, spec)
    still: LeadPage = await run_in_threadpool(
        leadquery.find_leads, state.app, viewer.scope, LeadFilter(ids=(lead_id,)), limit=1, with_count=False
    )
    if not still.rows:  # routed away from the viewer (Qualified -> an AE): their list, with what happened
        owner = done.lead["owner"] if done.lead else None
        message += f" It now belongs to {owner}." if owner else ""
        if context == "board":
            events = {"flash": {"kind": kind, "message": message}, "board-refresh": {}}
            return Response(status_code=204, headers={"HX-Trigger": json.dumps(events)})
        response = Response(status_code=204, headers={"HX-Redirect": "/leads"})
        set_flash(response, kind, message)
        return response
    if context == "page":
        response = Response(status_code=204, headers={"HX-Redirect": f"/leads/{lead_id}"})
        set_flash(response, kind, message)
        return response
    if context == "board":  # the board reloads its columns: the card moved, and counts changed
        events = {"flash": {"kind": kind, "message": message}, "board-refresh": {}}
        return Response(status_code=204, headers={"HX-Trigger": json.dumps(events)})
    found = still
    return page(request, "leads/row.html", lead=found.rows[0], clock=found.sla.get(lead_id), model=model,
                viewer_scope=viewer.scope, headers={**flash_header(kind, message), "HX-Retarget": f"#lead-{lead_id}",
                                                    "HX-Reswap": "outerHTML"})  # fmt: skip


def set_flash(response: Response, kind: str, message: str) -> None:
    """A message for the next page this browser shows (after a redirect), read once."""
    response.set_cookie(FLASH_COOKIE, quote(json.dumps({"kind": kind, "message": message[:500]})), max_age=60,
                        httponly=True, samesite="lax", path="/")  # fmt: skip


def flash_header(kind: str, message: str) -> dict[str, str]:
    """A message for the page's message area, sent with a fragment (`HX-Trigger`; app.js shows it as text)."""
    return {"HX-Trigger": json.dumps({"flash": {"kind": kind, "message": message}})}


def _outcome_message(model: StatusModel, outcome: Any, spec: ChangeSpec) -> tuple[str, str]:
    label = model.statuses[spec.status].label if spec.status in model.statuses else spec.status
    if isinstance(outcome, PendingApproval):
        return (f"Waiting for approval #{outcome.approval_id} ({outcome.rule}): "
                f"{', '.join(outcome.approvers)} must approve the move to {label}.", "info")  # fmt: skip
    assert isinstance(outcome, Applied)
    text = f"Moved to {label}." if not outcome.duplicate else "Already done."
    if outcome.warnings:
        text += " " + " ".join(w.message + "." for w in outcome.warnings)
    return text, "ok"


# --- bulk ---------------------------------------------------------------------------------------------------

MAX_BULK = 500


@router.post("/leads/bulk")
async def bulk_change(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    ids = list(dict.fromkeys(i for i in form.get("lead", []) if isinstance(i, str)))[:MAX_BULK]
    status = _one(form, "status")
    model = state.model
    if not ids:
        raise Invalid("select at least one lead")
    if status not in model.statuses:
        raise Invalid("status: choose a status")
    visible: LeadPage = await run_in_threadpool(
        leadquery.find_leads, state.app, viewer.scope, LeadFilter(ids=tuple(ids)), limit=MAX_BULK, with_count=False
    )
    seen = {row["id"]: row for row in visible.rows}
    specs = [
        ChangeSpec(i, status=status, reason=_one(form, "reason") or None, note=_one(form, "note") or None)
        for i in ids
        if i in seen
    ]
    answers = await asyncio.gather(*(state.writer.run(ChangeJob(viewer.name, s)) for s in specs))
    results: list[dict[str, Any]] = []
    for lead_id in ids:
        if lead_id not in seen:
            results.append({"id": lead_id, "name": "", "outcome": "refused", "why": [f"no lead {lead_id!r}"]})
    for spec, answer in zip(specs, answers, strict=True):
        outcome = answer.outcome
        row = {"id": spec.lead_id, "name": seen[spec.lead_id]["name"] or ""}
        if isinstance(outcome, ChangeRefused):
            results.append({**row, "outcome": "refused", "why": [v.message for v in outcome.violations]})
        elif isinstance(outcome, PendingApproval):
            results.append({**row, "outcome": "pending_approval",
                            "why": [f"approval #{outcome.approval_id} ({outcome.rule})"]})  # fmt: skip
        else:
            results.append({**row, "outcome": "applied", "why": [w.message for w in outcome.warnings]})
    counts = {k: sum(1 for r in results if r["outcome"] == k) for k in ("applied", "pending_approval", "refused")}
    changed = tuple(r["id"] for r in results if r["outcome"] != "refused")
    fresh: LeadPage | None = None
    if changed:
        fresh = await run_in_threadpool(
            leadquery.find_leads, state.app, viewer.scope, LeadFilter(ids=changed), limit=MAX_BULK, with_count=False
        )
    return page(request, "leads/bulk_result.html", results=results, counts=counts, label=model.statuses[status].label,
                fresh=fresh, model=model, viewer_scope=viewer.scope)  # fmt: skip


# --- saved views ------------------------------------------------------------------------------------------


@router.post("/views")
async def save_view(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    saved = await run_in_threadpool(
        views.save_view, state.app, user=viewer.name, name=_one(form, "name"), query=_one(form, "query")
    )
    return RedirectResponse(f"/leads?{saved['query']}", status_code=303)


@router.post("/views/{view_id}/delete")
async def delete_view(view_id: Annotated[int, Path(ge=1, le=2**62)], viewer: CurrentViewer, state: State) -> Response:
    await run_in_threadpool(views.delete_view, state.app, user=viewer.name, view_id=view_id)
    return RedirectResponse("/leads", status_code=303)
