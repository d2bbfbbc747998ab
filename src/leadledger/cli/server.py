"""The one ASGI application `leadledger serve` runs: the web app at `/`, the REST API at `/api/v1` beside it.

The composition lives here, in the command line (the only module allowed to import both adapters): the API is
built first, and the web app shares its `App` and its change writer, so a change from a page and one from
`curl` queue in the same group-commit writer and are judged by the same service calls.
"""

from __future__ import annotations

from leadledger.api import create_app
from leadledger.api.app import API_PREFIX
from leadledger.bootstrap import build_app
from leadledger.config import Settings, keep_new_files_private
from leadledger.domain.durations import parse_duration
from leadledger.services.app import App
from leadledger.web import WebOptions, create_web
from leadledger.web.security import ASGIApp


def web_options(settings: Settings) -> WebOptions:
    return WebOptions(secure_cookies=settings.web_secure, idle=parse_duration(settings.web_idle))


def build_site(app: App, options: WebOptions | None = None) -> ASGIApp:
    """Pages and API for `app`: API paths (everything under /api/, its documents, its health routes) go to it."""
    api = create_app(app)
    own = {
        path
        for route in api.routes
        if isinstance(path := getattr(route, "path", None), str) and not path.startswith(API_PREFIX) and "{" not in path
    }

    def api_owns(path: str) -> bool:
        return path.startswith("/api/") or path in own

    return create_web(
        app,
        writer=api.state.writer,
        options=options,
        api=api,
        api_owns=api_owns,
        api_lifespan=lambda: api.router.lifespan_context(api),
    )


def create_server() -> ASGIApp:
    """Uvicorn's factory: settings from the environment, as `leadledger serve` passes them to its workers."""
    keep_new_files_private()
    settings = Settings()
    return build_site(build_app(settings), web_options(settings))
