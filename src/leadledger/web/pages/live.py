"""`/live`: the server-sent-events stream of changed leads an open page listens to (see `web.live`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from leadledger.web.context import CurrentViewer
from leadledger.web.live import LiveFeed

router = APIRouter()


@router.get("/live")
async def live(request: Request, viewer: CurrentViewer) -> StreamingResponse:
    feed: LiveFeed = request.app.state.feed
    return StreamingResponse(
        feed.stream(viewer.scope),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
