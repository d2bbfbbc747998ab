"""The error answers each route declares in /openapi.json, so clients (and schemathesis) know every 4xx."""

from __future__ import annotations

from typing import Any

from leadledger.api.schemas import Problem

DESCRIPTIONS = {
    400: "the request cannot be read (malformed JSON, invalid UTF-8, NUL in the URL)",
    401: "no valid credentials: send Authorization: Bearer <token>",
    403: "the authenticated user may not do this (the violations say why, for a refused change)",
    404: "no such resource",
    409: "the status model refuses the change (every violation listed) or the lead changed meanwhile",
    413: "the request body is too large",
    415: "the body's content type is not one this route reads",
    422: "the request is not valid (every problem listed by field)",
    429: "too many failed attempts; see Retry-After",
    503: "the database is unavailable or busy; see Retry-After",
}

# Every route can answer these.
COMMON = (400, 401, 403, 413, 415, 422, 503)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": DESCRIPTIONS[code]} for code in codes}
