"""The web app's outer layer: security headers on every answer, bounded request bodies, no NUL in URLs.

Plain ASGI, like the API's guard. The Content-Security-Policy allows scripts, styles and connections from this
origin only: no inline script or style anywhere in the app, so an injected `<script>` in a lead's name would
not run even if escaping ever failed. Pages cannot be framed (clickjacking), and no page is cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
MAX_FORM = 1_048_576  # a form post; an upload on the imports page may be larger
MAX_UPLOAD = 1 << 30


class WebGuard:
    def __init__(self, app: ASGIApp, *, upload_prefix: str = "/imports"):
        self.app = app
        self.upload_prefix = upload_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(HEADERS)
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await _plain(send_with_headers, 400, "NUL characters are not accepted in URLs")
            return
        limit = MAX_UPLOAD if scope["path"].startswith(self.upload_prefix) else MAX_FORM
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _plain(send_with_headers, 413, f"the request body is larger than {limit} bytes")
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send_with_headers)
        except _TooLarge:
            await _plain(send_with_headers, 413, f"the request body is larger than {limit} bytes")


class _TooLarge(Exception):
    pass


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
