"""Probes, metrics and request logs: `/healthz`, `/readyz`, `/metrics`, and what every request leaves behind.

`Observe` is plain ASGI (every request passes through it): it counts the answer by method, route template
(never the raw path, which holds lead ids) and status, times it, echoes or assigns an `X-Request-ID`, and in
JSON log mode writes one line per request. `/metrics` is open unless LEADLEDGER_METRICS_TOKEN is set, in which
case it needs `Authorization: Bearer <that token>`: it holds counts only, no lead data (README, "Operating it").
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from leadledger import logs
from leadledger.api.guard import ASGIApp, Message, Receive, Scope, Send
from leadledger.ops import health
from leadledger.ops import metrics as ops_metrics
from leadledger.services.app import App

log = logging.getLogger("leadledger.request")

METRICS_TOKEN_ENV = "LEADLEDGER_METRICS_TOKEN"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Observe:
    """Counts, times and (in JSON mode) logs every HTTP request; adds X-Request-ID to every answer."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.log_json = logs.json_enabled()
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            template = self._template(scope)
            key = (method, template, status)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (
                    ops_metrics.HTTP_REQUESTS.labels(method, template, str(status)),
                    ops_metrics.HTTP_SECONDS.labels(method, template),
                )
            series[0].inc()
            series[1].observe(elapsed)
            if self.log_json:
                state = scope.get("state") or {}
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": template,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                        "user": state.get("user"),
                    },
                )


    def _template(self, scope: Scope) -> str:
        """The matched route's full template (`/api/v1/leads/{lead_id}`); a 404's path is never a label.

        FastAPI keeps an included router's prefix apart from its routes' paths: the prefix is the part of the
        request path in front of the segments the route matched, the same for every request to that route."""
        route = scope.get("route")
        relative = getattr(route, "path", None)
        if not relative:
            return "unmatched"
        cached = self._templates.get(id(route))
        if cached is not None:
            return cached
        if ":path}" in relative:  # a catch-all segment: the prefix cannot be counted off
            return relative
        segments = scope["path"].rstrip("/").split("/")
        own = len(relative.strip("/").split("/")) if relative.strip("/") else 0
        prefix = "/".join(segments[: max(1, len(segments) - own)])
        template = self._templates[id(route)] = prefix + relative
        return template


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


def install(api: FastAPI, app: App) -> None:
    """The probe and metrics routes (outside /api/v1, not in the OpenAPI document)."""
    registry = ops_metrics.build_registry(app)

    @api.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is up and answering (no dependency is checked: that is /readyz)."""
        return {"status": "ok"}

    @api.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """200 when the database answers and the schema is at head (status "degraded" if no worker's heartbeat is
        fresh); 503 otherwise, or when LEADLEDGER_WORKER_EXPECTED=1 and no worker's heartbeat is fresh."""
        result = await run_in_threadpool(health.readiness, app)
        return JSONResponse(result.as_dict(), status_code=200 if result.ok else 503)

    @api.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        token = os.environ.get(METRICS_TOKEN_ENV)
        if token and not _bearer_matches(request, token):
            return JSONResponse(
                {"detail": "send Authorization: Bearer <LEADLEDGER_METRICS_TOKEN>", "violations": []},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await run_in_threadpool(ops_metrics.render, registry)
        return Response(body, media_type=PROMETHEUS_TYPE)


def _bearer_matches(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
