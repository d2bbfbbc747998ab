"""The outermost layer of the API: bounded bodies, the content types each route reads, no NUL in URLs, and no
stack trace ever reaching a client.

It is plain ASGI (no per-request objects) because every request passes through it, the hot ones included.
Bodies are counted as they stream in, so a chunked upload without Content-Length is cut off at the limit
as surely as one that declares its size.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from leadledger.api.errors import unexpected

log = logging.getLogger("leadledger.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1_048_576
JSON_TYPES = ("application/json",)
_BODY_METHODS = (b"POST", b"PUT", b"PATCH")
# On every answer, unless the route set its own (the docs page and the HTML guide allow what they need):
# nothing may run, load or frame an API answer, and no URL leaks to other sites through the Referer header.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", API_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(frozen=True)
class BodyRule:
    """What a path prefix accepts: media types (`*` for any) and the largest body."""

    prefix: str
    media_types: tuple[str, ...]
    max_bytes: int


class _TooLarge(StarletteHTTPException):
    """An HTTPException, so the framework's body reader lets it through as the 413 it is."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class Guard:
    def __init__(self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY, rules: tuple[BodyRule, ...] = ()):
        self.app = app
        self.max_body = max_body
        self.rules = tuple(sorted(rules, key=lambda r: -len(r.prefix)))  # the longest prefix wins

    def _rule_for(self, path: str) -> tuple[tuple[str, ...], int]:
        for rule in self.rules:
            if path.startswith(rule.prefix):
                return rule.media_types, rule.max_bytes
        return JSON_TYPES, self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = [*headers, *(h for h in _SECURITY_HEADERS if h[0] not in present)]
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await _answer(send_with_headers, *refusal)
            return
        _, limit = self._rule_for(scope["path"])
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, counted_receive, send_with_headers)
        except _TooLarge:
            if not started:
                await _answer(send_with_headers, 413, f"the request body is larger than {limit} bytes")
        except Exception as exc:
            if started:
                log.error("error after the response started", exc_info=exc)
                return
            response = unexpected(exc)
            await response(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        """A reason to answer before the application sees the request, or None."""
        if (
            "\x00" in scope["path"]
            or b"%00" in scope.get("query_string", b"")
            or b"\x00" in scope.get("query_string", b"")
        ):
            return 400, "NUL characters are not accepted in URLs"
        if scope["method"].encode() not in _BODY_METHODS:
            return None
        headers = dict(scope.get("headers", []))
        media_types, limit = self._rule_for(scope["path"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Content-Length must be a number"
            if int(length) > limit:
                return 413, f"the request body is larger than {limit} bytes"
            if int(length) == 0:
                return None  # nothing to read: the route says whether a body is required
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if "*" in media_types:
            return None
        if content_type in media_types or (content_type.endswith("+json") and "application/json" in media_types):
            return None
        wanted = " or ".join(media_types)
        return 415, f"send the body as {wanted} (Content-Type: {content_type or 'missing'})"


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "violations": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
