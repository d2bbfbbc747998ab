"""The FastAPI application: `create_app(app)` wires an `App` (database, clock, model) into the REST API.

`leadledger serve` runs it under Uvicorn; tests call `create_app(test_app)` and talk to it in-process. The
API is an adapter: every rule lives in the service layer, and this package only turns HTTP into service
calls and service errors into HTTP answers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from leadledger import __name__ as package_name
from leadledger import logs
from leadledger.api import errors as error_handlers
from leadledger.api import observe
from leadledger.api.deps import known_query_only
from leadledger.api.guard import DEFAULT_MAX_BODY, JSON_TYPES, BodyRule, Guard
from leadledger.api.observe import Observe
from leadledger.api.openapi import COMMON, errors
from leadledger.api.routers import access, accounts, events, governance, insights, leads, model, segments, work
from leadledger.bootstrap import build_app
from leadledger.services.app import App
from leadledger.services.writer import ChangeWriter

API_PREFIX = "/api/v1"
DESCRIPTION = """\
Lead status management over HTTP: the same service layer, rules and ledger as the `leadledger` command line.

Authenticate with `Authorization: Bearer <token>` (`leadledger token create USER`, or POST /api/v1/auth/token
with a password). Every error is JSON: `{"detail": "...", "violations": [{"field", "code", "message"}]}`;
a change the status model refuses is 409 with every violation, 403 when the caller may not make it at all.
"""


DOCS_ASSETS = "/docs/static"
# The interactive docs: Swagger UI from the package (vendored, see static/swagger-ui/README.md); scripts only
# from this server (no inline script), styles inline as Swagger UI sets them, requests only to this server.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>LeadLedger API</title>
<link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="{DOCS_ASSETS}/docs.js"></script>
</body>
</html>
"""


def create_app(app: App | None = None, *, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The ASGI application for `app` (default: built from LEADLEDGER_* settings, as the CLI builds it)."""
    logs.configure()
    service_app = app or build_app()
    writer = ChangeWriter(service_app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service_app.loaded_model()  # fail at start-up, not on the first request, when `init` was not run
        _refresh_planner_statistics(service_app)
        yield
        writer.close()

    # FastAPI's native OpenTelemetry asks the tracing providers on every request when the library is
    # installed; that costs about a tenth of a status change's time. Opt in where a collector listens.
    telemetry = os.environ.get("LEADLEDGER_API_TELEMETRY", "") == "1"
    api = FastAPI(
        telemetry={"tracing": telemetry, "metrics": telemetry, "logs": telemetry},
        title="LeadLedger",
        version=_version(),
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from vendored files, not a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    api.state.leadledger = service_app
    api.state.writer = writer
    for router in (
        leads.router, events.router, model.router, work.router, access.router, insights.router, governance.router,
        segments.router, accounts.router,
    ):
        # included one by one, not under a parent /api/v1 router: one level less to match on every request
        api.include_router(
            router, prefix=API_PREFIX, responses=errors(*COMMON), dependencies=[Depends(known_query_only)]
        )

    observe.install(api, service_app)  # /healthz, /readyz, /metrics

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE, headers={"Content-Security-Policy": DOCS_CSP})

    api.mount(DOCS_ASSETS, StaticFiles(directory=str(resources.files("leadledger.api") / "static" / "swagger-ui")))

    error_handlers.install(api)
    rules = (
        BodyRule(f"{API_PREFIX}/model", (*JSON_TYPES, *model.YAML_TYPES), max_body),
        BodyRule(f"{API_PREFIX}/events", JSON_TYPES, 8 * max_body),  # up to 1000 events in one request
        BodyRule(f"{API_PREFIX}/hooks/", JSON_TYPES, 8 * max_body),
        BodyRule(f"{API_PREFIX}/imports", insights.CSV_TYPES, insights.MAX_IMPORT_BYTES),
    )
    api.add_middleware(Guard, max_body=max_body, rules=rules)
    api.add_middleware(Observe)  # outermost of ours: counts and logs what the guard refuses too
    return api


def _refresh_planner_statistics(app: App) -> None:
    """SQLite plans a filtered, id-ordered page well only with table statistics (without them it sorts every
    lead in a status to return fifty); PostgreSQL keeps its own by autovacuum. A sampled ANALYZE takes a few
    tens of milliseconds on 1 M leads, so it runs at every start."""
    if not app.db.is_sqlite:
        return
    with app.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package_name)
    except PackageNotFoundError:
        return "0"
