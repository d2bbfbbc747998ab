"""Segments: definitions, members a page at a time, streamed exports, and who entered or left between times.

Thin routes over `leadledger.marketing.segments`, which computes every answer from the ledger (as of any
time). A members cursor carries the time of its first page, so paging through an audience never mixes two
moments; an export streams row by row from the analytics store.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from leadledger.api.deps import AppDep, CurrentUser
from leadledger.api.openapi import errors
from leadledger.api.schemas import KEY_PATTERN, Moment
from leadledger.marketing import segments as segment_service
from leadledger.services.errors import Invalid

router = APIRouter(tags=["segments"])
SegmentKey = Annotated[str, Path(pattern=KEY_PATTERN, description="the segment's key (GET /segments lists them)")]
AsOf = Annotated[Moment | None, Query(description="the audience as the ledger says it was then; default now")]
EXPORT_RESPONSES = {
    200: {
        "description": "the members as a marketing tool imports them, streamed",
        "content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "array"}}},
    },
    **errors(422),
}


@router.get("/segments", summary="Every segment of the model, with its number of members")
def list_segments(user: CurrentUser, app: AppDep, as_of: AsOf = None) -> dict[str, Any]:
    return segment_service.list_segments(app, as_of=as_of)


@router.get("/segments/{key}", responses=errors(422), summary="A segment: definition, members per status and reason")
def show_segment(key: SegmentKey, user: CurrentUser, app: AppDep, as_of: AsOf = None) -> dict[str, Any]:
    return segment_service.show_segment(app, key, as_of=as_of)


def _cursor(as_of: datetime, last_id: str) -> str:
    return base64.urlsafe_b64encode(f"{as_of.isoformat()}|{last_id}".encode()).decode().rstrip("=")


def _read_cursor(text: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        moment, _, last_id = raw.partition("|")
        parsed = datetime.fromisoformat(moment)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid("cursor: not a cursor this API gave out (use next_cursor as it came)") from None
    if parsed.tzinfo is None or not last_id:
        raise Invalid("cursor: not a cursor this API gave out (use next_cursor as it came)")
    return parsed, last_id


@router.get(
    "/segments/{key}/members",
    responses=errors(422),
    summary="The members a page at a time (by lead id); next_cursor keeps the time of the first page",
)
def segment_members(
    key: SegmentKey,
    user: CurrentUser,
    app: AppDep,
    as_of: AsOf = None,
    cursor: Annotated[str | None, Query(max_length=300, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    after = None
    if cursor is not None:
        if as_of is not None:
            raise Invalid("give as_of or cursor, not both: the cursor carries the time of its first page")
        as_of, after = _read_cursor(cursor)
    rows, moment = segment_service.member_page(app, key, as_of=as_of, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "segment": key,
        "as_of": moment,
        "items": rows,
        "next_cursor": _cursor(moment, rows[-1]["id"]) if more else None,
    }


@router.get(
    "/segments/{key}/export",
    responses=EXPORT_RESPONSES,
    response_model=None,
    summary="Every member as a marketing tool imports it (CSV, spreadsheet-safe, or JSON), streamed",
)
def export_segment(
    key: SegmentKey,
    user: CurrentUser,
    app: AppDep,
    as_of: AsOf = None,
    fmt: Annotated[Literal["csv", "json"], Query(alias="format", description="csv (the default) or json")] = "csv",
) -> StreamingResponse:
    # Export refuses an unknown segment here, before the stream starts: an error must be a 422, not a cut-off body
    export = segment_service.Export(app, key, fmt, as_of=as_of)
    headers = {"Content-Disposition": f'attachment; filename="{key}.{fmt}"'}
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    return StreamingResponse(iter(export), media_type=media, headers=headers)


@router.get(
    "/segments/{key}/changes",
    responses=errors(422),
    summary="Who entered and who left the segment between two times (each as it is at `until`)",
)
def segment_changes(
    key: SegmentKey,
    user: CurrentUser,
    app: AppDep,
    since: Annotated[Moment, Query(description="from this time")],
    until: Annotated[Moment | None, Query(description="to this time; default now")] = None,
) -> dict[str, Any]:
    return segment_service.segment_changes(app, key, since=since, until=until)
