"""Activity events in: as JSON from an authenticated caller, and as signed webhooks from integrations.

Both apply the same objects `leadledger event apply` reads, through `services.events.apply_events`: the
event `id` makes a replay a no-op, a bad event is reported with its position and the good ones are applied.
A signed webhook needs no bearer token: `X-LeadLedger-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">` with the webhook's secret (the format LeadLedger signs its own webhooks with), within five
minutes of the server's clock; the events are applied as the webhook's integration user.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Request
from pydantic import Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.errors import InvalidBody, validation_violations
from leadledger.api.openapi import errors
from leadledger.api.schemas import EventCreate, EventSummaryRead
from leadledger.services import hooks
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.services.events import apply_events

router = APIRouter(tags=["events"])
MAX_EVENTS = 1000  # one request is one transaction (the service applies up to 2000 per transaction)
EventList = Annotated[list[EventCreate], Field(min_length=1, max_length=MAX_EVENTS)]
_events_or_one = TypeAdapter(EventList | EventCreate)


def _apply(app: App, events: list[EventCreate], actor: str) -> dict[str, Any]:
    dicts = [e.model_dump(exclude_none=True) for e in events]
    return apply_events(app, dicts, actor=actor).as_dict()


@router.post(
    "/events",
    response_model=EventSummaryRead,
    summary="Apply activity events (email_sent, call_logged, form_submitted…); replays change nothing",
)
def post_events(
    events: Annotated[EventList, Body(description="up to 1000 events, applied in order in one transaction")],
    user: CurrentUser,
    app: AppDep,
) -> dict[str, Any]:
    return _apply(app, events, user.name)


_HOOK_BODY = {
    "requestBody": {
        "required": True,
        "description": "one event, or a list of up to 1000, exactly as POST /api/v1/events takes them",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/EventCreate"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/EventCreate"}, "minItems": 1,
                         "maxItems": MAX_EVENTS},
                    ]
                }
            }
        },
    }
}  # fmt: skip


@router.post(
    "/hooks/{name}",
    response_model=EventSummaryRead,
    responses=errors(401),
    openapi_extra=_HOOK_BODY,
    summary="Signed webhook for an integration: events in, authenticated by HMAC-SHA256 (no bearer token)",
)
async def post_hook(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,100}$")],
    request: Request,
    app: AppDep,
    signature: Annotated[
        str | None,
        Header(alias=hooks.SIGNATURE_HEADER, max_length=1000, description="t=<unix time>,v1=<hex HMAC-SHA256>"),
    ] = None,
) -> dict[str, Any]:
    body = await request.body()
    who = await run_in_threadpool(hooks.verify_hook, app, name=name, signature=signature, body=body)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise Invalid("the body is not valid JSON") from None
    try:
        given = _events_or_one.validate_python(parsed)
    except ValidationError as exc:
        raise InvalidBody(validation_violations(exc.errors())) from None
    events = given if isinstance(given, list) else [given]
    return await run_in_threadpool(_apply, app, events, who.name)
