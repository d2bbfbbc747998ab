"""Logging for a running service: one JSON object per line when LEADLEDGER_LOG=json, else quiet text.

JSON mode is for log collectors: every API request (`leadledger.request`: request id, method, route,
status, milliseconds, user) and every worker round (`leadledger.worker`: worker id, round, sweep id,
firings, deliveries) is one line on standard error, and so is every warning or error, with its traceback
in `exc_info`. Uvicorn's own access log is replaced by the request lines (same facts, plus the ids).
"""

from __future__ import annotations

import logging
import os
import sys

JSON = "json"
_configured: list[str] = []


def mode() -> str:
    return (os.environ.get("LEADLEDGER_LOG") or "text").strip().lower()


def json_enabled() -> bool:
    return mode() == JSON


def configure() -> None:
    """Install the JSON handler on the root logger once per process (idempotent; text mode changes nothing)."""
    if not json_enabled() or _configured:
        return
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "message": "msg"},
            timestamp="ts",
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's copy of the message with ANSI colours
        )
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(os.environ.get("LEADLEDGER_LOG_LEVEL", "INFO").upper())
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn installs its own text handlers: route them to ours
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our request lines carry the same and the ids
    _configured.append(JSON)


def uvicorn_log_config() -> dict[str, object] | None:
    """What `leadledger serve` hands Uvicorn: nothing of its own in JSON mode (the root handler takes all)."""
    if not json_enabled():
        return None
    return {"version": 1, "disable_existing_loggers": False}
