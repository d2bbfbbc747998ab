"""The web app for reps, managers, marketing and ops, served next to the REST API by `leadledger serve`.

`create_web` builds the pages (server-rendered Jinja2, htmx for the parts of a page that change in place) on
the same `App` and the same change writer as the API, and returns one ASGI application for both: requests
the API answers (`/api/...`, `/openapi.json`, `/docs`, `/healthz` and whatever the API adds) go to it
untouched; everything else is a page. The web layer is an adapter like the API: it calls service functions,
and every rule (who may change what, what a status requires) is theirs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadledger.services.app import App, NotInitialised
from leadledger.services.auth import TooManyAttempts
from leadledger.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from leadledger.services.writer import ChangeWriter
from leadledger.web.context import CsrfRejected, LoginRequired, WebOptions, WebState
from leadledger.web.imports import ImportJobs
from leadledger.web.live import LiveFeed
from leadledger.web.pages import accounts, admin, board, dashboards, guide, imports, lead, leads, live, login, work
from leadledger.web.render import page
from leadledger.web.security import ASGIApp, Receive, Scope, Send, WebGuard

log = logging.getLogger("leadledger.web")


def create_web(
    app: App,
    *,
    writer: ChangeWriter,
    options: WebOptions | None = None,
    api: ASGIApp | None = None,
    api_owns: Callable[[str], bool] | None = None,
    api_lifespan: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
) -> ASGIApp:
    """The pages, and the API beside them when `api` is given (`api_owns(path)` says which paths are its)."""
    state = WebState(app, writer, options or WebOptions())
    feed = LiveFeed(app, interval=state.options.live_interval)
    import_jobs = ImportJobs(app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if api_lifespan is not None:
            async with api_lifespan():
                yield
        else:
            app.loaded_model()
            yield
        feed.stop()
        import_jobs.close()

    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    web.state.web = state
    web.state.feed = feed
    web.state.imports = import_jobs
    web.mount("/static", StaticFiles(packages=[("leadledger.web", "static")]), name="static")
    for router in (
        login.router,
        leads.router,
        lead.router,
        accounts.router,
        board.router,
        work.router,
        dashboards.router,
        guide.router,
        imports.router,
        admin.router,
        live.router,
    ):
        web.include_router(router)
    _install_errors(web)
    guarded = WebGuard(web)
    if api is None:
        return guarded
    return Site(guarded, api, api_owns or (lambda path: path.startswith("/api/")))


class Site:
    """One ASGI application for pages and API: each request goes to the one that owns its path."""

    def __init__(self, web: ASGIApp, api: ASGIApp, api_owns: Callable[[str], bool]):
        self.web = web
        self.api = api
        self.api_owns = api_owns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.api_owns(scope["path"]):
            await self.api(scope, receive, send)
        else:
            await self.web(scope, receive, send)  # the web app's lifespan runs the API's too


def _install_errors(web: FastAPI) -> None:
    @web.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        where = "/login" if target in ("/", "/login") else f"/login?next={quote(target, safe='')}"
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": where})
        if request.method not in ("GET", "HEAD"):
            return _error_page(request, 401, "Your session has ended", str(exc))
        return RedirectResponse(where, status_code=303)

    @web.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        return _error_page(request, 403, "Refused", str(exc))

    @web.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        if isinstance(exc, NotFound):
            return _error_page(request, 404, "Not found", str(exc))
        if isinstance(exc, Forbidden):
            return _error_page(request, 403, "Not allowed", str(exc))
        if isinstance(exc, Invalid):
            return _error_page(request, 400, "Please check the request", str(exc))
        if isinstance(exc, TooManyAttempts):
            return _error_page(request, 429, "Too many attempts", str(exc))
        if isinstance(exc, Conflict):
            return _error_page(request, 409, "Try again", str(exc))
        if isinstance(exc, NotInitialised):
            return _error_page(request, 503, "Not initialised", str(exc))
        return _error_page(request, 400, "Refused", str(exc))

    @web.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed here", 422: "Please check the request"}
        return _error_page(request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))

    @web.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        reference = uuid.uuid4().hex[:12]
        log.error("unexpected error %s on %s %s", reference, request.method, request.url.path, exc_info=exc)
        return _error_page(request, 500, "Something went wrong", f"the error is logged under reference {reference}")


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    if request.headers.get("hx-request") == "true":
        # htmx shows it in the page's message area instead of replacing the part of the page it was working on
        return page(request, "fragments/flash.html", status_code=status, headers={"HX-Retarget": "#flash",
                    "HX-Reswap": "innerHTML"}, kind="error", message=f"{title}: {message}")  # fmt: skip
    return page(request, "error.html", status_code=status, title=title, message=message)
