"""Templates: one Jinja2 environment with autoescaping on, and the small formatting helpers pages share.

Every value a user or an import typed (names, notes, companies, field values) reaches HTML only through
autoescaping; templates never mark such text safe. Times show in the model's default business calendar zone,
with the zone named, so a rep in Berlin and one in New York read the same instant the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from leadledger.domain.statusmodel import StatusModel

env = Environment(
    loader=PackageLoader("leadledger.web", "templates"),
    autoescape=select_autoescape(["html", "svg"], default_for_string=True, default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

CATEGORY_CLASS = {
    "open": "b-open",
    "active": "b-active",
    "qualified": "b-qualified",
    "won": "b-won",
    "lost": "b-lost",
    "parked": "b-parked",
    "data_problem": "b-problem",
}


def _asset_version() -> str:
    """A digest of the static files, so a new release's assets are never served from a stale browser cache."""
    digest = hashlib.sha256()
    folder = resources.files("leadledger.web") / "static"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.is_file():
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:10]


ASSET_VERSION = _asset_version()


def static_url(name: str) -> str:
    return f"/static/{name}?v={ASSET_VERSION}"


def age(since: datetime | None, now: datetime) -> str:
    """`3 d 4 h`, `5 h 10 min`, `2 min`: how long ago, coarse enough to read at a glance."""
    if since is None:
        return ""
    return span(now - since)


def span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days} d {hours} h" if days < 10 else f"{sign}{days} d"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min"


def query(base: dict[str, Any] | None = None, **changes: Any) -> str:
    """A query string from a dict of lists with some keys replaced (None removes a key)."""
    merged: dict[str, Any] = {k: v for k, v in (base or {}).items()}
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    pairs: list[tuple[str, Any]] = []
    for key, value in merged.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((key, v) for v in values if v not in (None, ""))
    return urlencode(pairs)


class Formats:
    """Helpers bound to the model and the clock, handed to every template as `ui`."""

    def __init__(self, model: StatusModel, now: datetime):
        self.model = model
        self.now = now
        self.tz = model.calendar(None).tz

    def when(self, moment: datetime | None, *, seconds: bool = False) -> str:
        if moment is None:
            return ""
        local = moment.astimezone(self.tz)
        return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    @property
    def zone(self) -> str:
        return str(self.tz)

    def age(self, since: datetime | None) -> str:
        return age(since, self.now)

    def span(self, delta: timedelta) -> str:
        return span(delta)

    def hours(self, delta: timedelta) -> str:
        """Business time reads in hours (`13 h 20 min`): a business day is not 24 hours."""
        minutes = int(abs(delta.total_seconds()) // 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"

    def status(self, key: str | None) -> str:
        if key is None:
            return ""
        found = self.model.statuses.get(key)
        return found.label if found else key

    def stage(self, key: str | None) -> str:
        if key is None:
            return ""
        found = self.model.stage_by_key.get(key)
        return found.label if found else key

    def reason(self, code: str | None) -> str:
        if not code:
            return ""
        found = self.model.reasons.get(code)
        return found.label if found else code

    def badge(self, key: str) -> str:
        found = self.model.statuses.get(key)
        return CATEGORY_CLASS.get(found.category if found else "", "b-unknown")

    def field_label(self, name: str) -> str:
        spec = self.model.fields.get(name)
        return spec.label if spec else name.replace("_", " ")

    def value(self, value: Any) -> str:
        if isinstance(value, datetime):
            return self.when(value)
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, default=str)
        return "" if value is None else str(value)


FLASH_COOKIE = "ll_flash"


def _flash_from(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        found = json.loads(unquote(raw))
        return {"kind": str(found["kind"]), "message": str(found["message"])}
    except (ValueError, KeyError, TypeError):
        return None


def page(request: Request, template: str, status_code: int = 200, headers: dict[str, str] | None = None,
         **context: Any) -> HTMLResponse:  # fmt: skip
    """Render a template with what every page needs: the viewer, the CSRF token, the model's formats."""
    html, flash = _page_context(request, context)
    response = HTMLResponse(env.get_template(template).render(**html), status_code=status_code, headers=headers)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def streamed_page(request: Request, template: str, after: Callable[[], None] | None = None,
                  **context: Any) -> StreamingResponse:  # fmt: skip
    """A page sent while it renders: what the template writes before a slow part (a value computed when the
    template reaches it) reaches the browser at once, and the browser shows it while the rest is computed.

    The template renders in one worker thread from start to end, so a resource the slow parts hold (the
    analytics store and its lock) is taken and given back by that thread; what it writes is sent whenever the
    page calls `flush()` (passed in the context) and at the end. A reader who leaves stops the rendering at
    its next flush. `after` runs in that thread once the rendering has ended, however it ended (to give back
    what the slow parts hold)."""
    html, flash = _page_context(request, context)
    rendering = _rendered_in_a_thread(env.get_template(template), html, after)
    response = StreamingResponse(rendering, media_type="text/html")
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


class ReaderLeft(Exception):
    """The browser closed the connection of a page still rendering."""


async def _rendered_in_a_thread(
    template: Any, context: dict[str, Any], after: Callable[[], None] | None
) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    parts: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    left = threading.Event()
    written: list[str] = []

    def send(item: bytes | BaseException | None) -> None:
        loop.call_soon_threadsafe(parts.put_nowait, item)

    def flush() -> str:
        if left.is_set():
            raise ReaderLeft
        if written:
            send("".join(written).encode())
            written.clear()
        return ""

    def render() -> None:
        try:
            for chunk in template.generate(**context, flush=flush):
                written.append(chunk)
            flush()
            send(None)
        except ReaderLeft:
            send(None)
        except BaseException as exc:  # raised in the request's task, where the server logs it
            send(exc)
        finally:
            if after is not None:
                after()

    worker = loop.run_in_executor(None, render)
    try:
        while (item := await parts.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        left.set()
        await worker


def _page_context(request: Request, context: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None]:
    state = request.app.state.web
    viewer = getattr(request.state, "viewer", None)
    try:
        model = state.app.model
    except Exception:  # the login page renders even when the database has no model yet
        model = None
    context.setdefault("ui", Formats(model, state.app.clock.now()) if model is not None else None)
    context["csrf"] = viewer.csrf if viewer is not None else context.get("csrf", "")
    flash = _flash_from(request) if not request.headers.get("hx-request") else None
    context.setdefault("flash", flash)
    shared = {
        "request": request,
        "viewer": viewer,
        "static": static_url,
        "query": query,
        "path": request.url.path,
        "htmx": request.headers.get("hx-request") == "true",
    }
    return {**shared, **context}, flash
