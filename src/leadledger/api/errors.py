"""Service errors to HTTP answers: one JSON shape (`Problem`), the right 4xx, never a stack trace or SQL.

A refused change is 409 with every violation, each naming its field; when any violation says the caller
may not make this change at all (not their lead, not their role, not for automation), it is 403 with the
same list, because no change to the request would help. Anything unexpected is logged here with its
traceback and answered 500 with a reference to find it in the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadledger.domain.changes import Violation
from leadledger.model.source import ModelError
from leadledger.services.app import NotInitialised
from leadledger.services.auth import LoginBusy, TooManyAttempts, Unauthenticated
from leadledger.services.errors import (
    ChangeRefused,
    Conflict,
    DatabaseError,
    Forbidden,
    Invalid,
    NotFound,
    NotStorable,
    ServiceError,
    Unavailable,
    as_service_error,
)
from leadledger.services.models import ModelRejected

log = logging.getLogger("leadledger.api")

# (field, code) pairs that say "you may not", as opposed to "not like this".
AUTHORISATION_VIOLATIONS = frozenset(
    {
        ("owner", "not_owner"),
        ("owner", "not_allowed"),
        ("status", "role_not_allowed"),
        ("stage", "role_not_allowed"),
        ("status", "needs_human"),
        ("log", "role_not_allowed"),
    }
)


class InvalidBody(Invalid):
    """A body that parsed but does not validate (where the route parses it itself): every problem by field."""

    def __init__(self, violations: list[dict[str, str]]):
        self.violations = violations
        super().__init__("the request is not valid")


def problem(
    status: int, detail: str, violations: Iterable[dict[str, str]] = (), *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "violations": list(violations)}, status_code=status, headers=headers)


def violation_dicts(violations: Iterable[Violation]) -> list[dict[str, str]]:
    return [v.as_dict() for v in violations]


def refusal_status(exc: ChangeRefused) -> int:
    """404 for a lead that does not exist, 403 when the caller may not make the change, else 409."""
    codes = {(v.field, v.code) for v in exc.violations}
    if codes == {("lead", "not_found")}:
        return 404
    if codes & AUTHORISATION_VIOLATIONS:
        return 403
    return 409


def refusal_response(exc: ChangeRefused) -> JSONResponse:
    status = refusal_status(exc)
    detail = (
        f"no lead {exc.lead_id!r}"
        if status == 404
        else f"refused: nothing was written for lead {exc.lead_id}"
        if exc.lead_id
        else "refused: nothing was written"
    )
    return problem(status, detail, violation_dicts(exc.violations))


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_violations(errors: Iterable[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as violations; the offending input is never echoed back."""
    return [
        {"field": _field_of(tuple(e.get("loc", ()))), "code": str(e.get("type", "invalid")), "message": str(e["msg"])}
        for e in errors
    ]


def service_error_response(exc: ServiceError) -> JSONResponse:
    if isinstance(exc, ChangeRefused):
        return refusal_response(exc)
    if isinstance(exc, Unauthenticated):
        return problem(401, str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, TooManyAttempts):
        return problem(429, str(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, LoginBusy):
        return problem(503, str(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, Forbidden):
        return problem(403, str(exc))
    if isinstance(exc, NotFound):
        return problem(404, str(exc))
    if isinstance(exc, ModelRejected):
        findings = [
            {"field": f.subject, "code": f.check, "message": f.message} for f in exc.findings if f.level == "error"
        ]
        return problem(422, "the model has lint errors; it was not activated", findings)
    if isinstance(exc, InvalidBody):
        return problem(422, str(exc), exc.violations)
    if isinstance(exc, Invalid):
        return problem(422, str(exc))
    if isinstance(exc, Conflict):
        return problem(409, str(exc), headers={"Retry-After": "1"})
    if isinstance(exc, NotInitialised):
        return problem(503, str(exc))
    return problem(400, str(exc))


def unexpected(exc: BaseException) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error (reference %s)", reference, exc_info=exc)
    return problem(500, f"internal error; the server log has the details under reference {reference}")


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""

    async def on_service_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return service_error_response(exc)

    async def on_model_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ModelError)
        issues = [{"field": i.key or "model", "code": "invalid", "message": str(i)} for i in exc.issues]
        return problem(422, "the model file is not valid", issues)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem(422, "the request is not valid", validation_violations(exc.errors()))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    async def on_database(_: Request, exc: Exception) -> JSONResponse:
        translated = as_service_error(exc)
        if isinstance(translated, NotStorable):  # a value the database cannot hold slipped past validation
            log.warning("database refused a value: %s", exc.__class__.__name__)
            return problem(422, str(translated))
        if isinstance(translated, Unavailable):
            log.error("database unavailable", exc_info=exc)
            return problem(503, "the database is unavailable or busy; try again", headers={"Retry-After": "1"})
        return unexpected(exc)

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(ModelError, on_model_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DatabaseError, on_database)
