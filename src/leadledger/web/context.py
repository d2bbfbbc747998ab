"""What every page handler asks for: the running app, the change writer, the signed-in viewer and their scope.

`CurrentViewer` resumes the session named by the cookie and, for every request that changes something,
checks the CSRF token (the `X-CSRF-Token` header htmx sends, or the `csrf` field of a plain form) and that
an `Origin` header, when the browser sends one, is this site. A request without a live session is answered
with the login page (a redirect, or `HX-Redirect` for htmx), never with data.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from leadledger.domain.statusmodel import StatusModel
from leadledger.services import auth, sessions, visibility
from leadledger.services.app import App
from leadledger.services.errors import ServiceError
from leadledger.services.visibility import LeadScope
from leadledger.services.writer import ChangeWriter

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SCOPE_CACHE_SECONDS = 30.0  # a manager moved to another team sees the new team within this long


@dataclass(frozen=True)
class WebOptions:
    secure_cookies: bool = False  # Secure cookies (and the __Host- prefix): set when served over HTTPS
    idle: timedelta = sessions.DEFAULT_IDLE
    live_interval: float = 1.0  # seconds between two looks at the ledger for the live-update stream

    @property
    def cookie(self) -> str:
        return "__Host-ll_session" if self.secure_cookies else "ll_session"

    @property
    def login_cookie(self) -> str:
        return "__Host-ll_login" if self.secure_cookies else "ll_login"


@dataclass
class WebState:
    app: App
    writer: ChangeWriter
    options: WebOptions
    _scopes: dict[str, tuple[float, LeadScope]] = field(default_factory=dict)

    def scope_of(self, name: str) -> LeadScope:
        cached = self._scopes.get(name)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        scope = visibility.scope_for(self.app, name)
        if len(self._scopes) > 10_000:
            self._scopes.clear()
        self._scopes[name] = (time.monotonic() + SCOPE_CACHE_SECONDS, scope)
        return scope

    @property
    def model(self) -> StatusModel:
        return self.app.model


class LoginRequired(ServiceError):
    """No live session: the browser goes to the login page (and comes back to `next` afterwards)."""


class CsrfRejected(ServiceError):
    """A state-changing request without this session's CSRF token, or from another origin."""


@dataclass(frozen=True)
class Viewer:
    name: str
    role: str
    csrf: str
    scope: LeadScope

    @property
    def is_ops(self) -> bool:
        return self.role == "ops"

    @property
    def is_manager(self) -> bool:
        return self.role in ("manager", "ops")


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


async def check_csrf(request: Request, expected: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfRejected("this request came from another site")
    given = request.headers.get("x-csrf-token")
    if given is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf")
            given = value if isinstance(value, str) else None
    if not given or not hmac.compare_digest(given, expected):
        raise CsrfRejected("the form has expired or did not come from this site; reload the page and try again")


async def current_viewer(request: Request) -> Viewer:
    state = web_state(request)
    secret = request.cookies.get(state.options.cookie)
    if not secret:
        raise LoginRequired("please log in")
    try:
        session = await run_in_threadpool(sessions.resume_session, state.app, secret, idle=state.options.idle)
    except auth.Unauthenticated as exc:
        raise LoginRequired(str(exc)) from exc
    if request.method not in SAFE_METHODS:
        await check_csrf(request, session.csrf)
    scope = await run_in_threadpool(state.scope_of, session.user.name)
    viewer = Viewer(session.user.name, session.user.role, session.csrf, scope)
    request.state.viewer = viewer
    return viewer


async def optional_viewer(request: Request) -> Viewer | None:
    try:
        return await current_viewer(request)
    except LoginRequired:
        return None


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form as a dict of lists (a field may repeat: several statuses, several leads)."""
    form = await request.form()
    found: dict[str, Any] = {}
    for key, value in form.multi_items():
        found.setdefault(key, []).append(value)
    return found


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]
MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
State = Annotated[WebState, Depends(web_state)]
