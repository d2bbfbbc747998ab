"""Admin (ops): users and passwords, teams, API tokens, inbound webhooks and the site's switches.

Every action is a service call that checks the caller itself (`services.auth`, `services.sitesettings`); the
page only turns forms into those calls. A new token or webhook secret is shown once, on the page that made it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger.services import auth, hooks, people, sitesettings
from leadledger.services.errors import Invalid
from leadledger.web.context import CurrentViewer, State, Viewer, WebState, form_data
from leadledger.web.pages.guide import require_ops
from leadledger.web.pages.leads import set_flash
from leadledger.web.render import page

router = APIRouter()
Name = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.@-]{1,100}$")]
ROLES = ("rep", "manager", "ops", "integration")


def _data(state: WebState, viewer: Viewer) -> dict[str, Any]:
    app = state.app
    return {
        "users": [u for u in people.list_users(app) if u["name"] != "system"],
        "teams": people.list_teams(app),
        "tokens": auth.list_tokens(app, actor=viewer.name),
        "hooks": hooks.list_hooks(app),
        "settings": sitesettings.all_settings(app),
        "setting_help": {k: v[1] for k, v in sitesettings.SETTINGS.items()},
        "calendars": sorted(app.model.calendars),
        "roles": ROLES,
    }


async def _page(request: Request, state: WebState, viewer: Viewer, **extra: Any) -> Response:
    data = await run_in_threadpool(_data, state, viewer)
    return page(request, "admin/page.html", title="Admin", live=False, **data, **extra)


@router.get("/admin")
async def admin(request: Request, viewer: CurrentViewer, state: State) -> Response:
    require_ops(viewer, "administer users, teams, tokens and webhooks")
    return await _page(request, state, viewer)


def _one(form: dict[str, list[Any]], key: str) -> str:
    value = (form.get(key) or [""])[-1]
    return value.strip() if isinstance(value, str) else ""


def _done(where: str, message: str) -> Response:
    response = RedirectResponse(f"/admin#{where}", status_code=303)
    set_flash(response, "ok", message)
    return response


@router.post("/admin/users")
async def add_user(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    password = _one(form, "password") or None
    user = await run_in_threadpool(lambda: auth.add_user(
        state.app, actor=viewer.name, name=_one(form, "name"), role=_one(form, "role"),
        team=_one(form, "team") or None, email=_one(form, "email") or None, password=password))  # fmt: skip
    return _done("users", f"User {user['name']} ({user['role']}) added.")


@router.post("/admin/users/{name}/{action}")
async def user_action(request: Request, name: Name, action: str, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    if action in ("disable", "enable"):
        await run_in_threadpool(lambda: auth.set_user_active(state.app, actor=viewer.name, name=name,
                                                             active=action == "enable"))  # fmt: skip
        return _done("users", f"User {name} {action}d.")
    if action == "password":
        await run_in_threadpool(lambda: auth.set_password(state.app, name=name, password=_one(form, "password"),
                                                          actor=viewer.name))  # fmt: skip
        return _done("users", f"Password of {name} set; their sessions have ended.")
    raise Invalid(f"unknown action {action!r}")


@router.post("/admin/teams")
async def add_team(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)

    def run() -> dict[str, Any]:
        auth.require_role(state.app, viewer.name, {"ops"}, "add teams")
        return people.add_team(state.app, name=_one(form, "name"), calendar=_one(form, "calendar") or "default",
                               manager=_one(form, "manager") or None)  # fmt: skip

    team = await run_in_threadpool(run)
    return _done("teams", f"Team {team['name']} added.")


@router.post("/admin/tokens")
async def create_token(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    days = _one(form, "days")
    if days and not days.isdigit():
        raise Invalid("days: a whole number of days, or empty for no expiry")
    lifetime = timedelta(days=int(days)) if days else None
    issued = await run_in_threadpool(lambda: auth.issue_token(
        state.app, user=_one(form, "user"), actor=viewer.name, name=_one(form, "name") or "web",
        expires_in=lifetime))  # fmt: skip
    return await _page(request, state, viewer, shown_once={"what": f"Token #{issued['id']} for {issued['user']}",
                                                          "secret": issued["token"]})  # fmt: skip


@router.post("/admin/tokens/{token_id}/revoke")
async def revoke_token(token_id: Annotated[int, Path(ge=1, le=2**62)], viewer: CurrentViewer, state: State) -> Response:
    row = await run_in_threadpool(lambda: auth.revoke_token(state.app, token_id=token_id, actor=viewer.name))
    return _done("tokens", f"Token #{row['id']} of {row['user']} revoked.")


@router.post("/admin/hooks")
async def add_hook(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    hook = await run_in_threadpool(lambda: hooks.add_hook(state.app, name=_one(form, "name"), user=_one(form, "user"),
                                                         actor=viewer.name))  # fmt: skip
    return await _page(request, state, viewer, shown_once={"what": f"Webhook {hook['name']} at {hook['path']}",
                                                          "secret": hook["secret"]})  # fmt: skip


@router.post("/admin/hooks/{name}/{action}")
async def hook_action(name: Name, action: str, viewer: CurrentViewer, state: State) -> Response:
    if action not in ("disable", "enable"):
        raise Invalid(f"unknown action {action!r}")
    await run_in_threadpool(lambda: hooks.set_hook_active(state.app, name=name, active=action == "enable",
                                                         actor=viewer.name))  # fmt: skip
    return _done("hooks", f"Webhook {name} {action}d.")


@router.post("/admin/settings")
async def change_setting(request: Request, viewer: CurrentViewer, state: State) -> Response:
    form = await form_data(request)
    result = await run_in_threadpool(lambda: sitesettings.set_setting(state.app, actor=viewer.name,
                                     name=_one(form, "name"), value=_one(form, "value")))  # fmt: skip
    return _done("settings", f"{result['name']} is now {result['value']}.")
