"""Per-segment webhooks: tell a marketing platform who entered and who left each segment that has one.

A sync compares the segment's members now (from the ledger, as every membership answer) with the members its
endpoint was last told of, and queues one outbox message per lead and event (`on_enter`, `on_leave`; a
segment may leave either out). The worker runs it every round; `leadledger segment sync-hooks` runs it once.

Decisions:
* The first sync of a segment (or of a webhook added to it) sends nothing: today's members count as sent and
  the watermark starts now. Installing a webhook does not flood the endpoint with the segment's history; a
  platform that wants the current list imports `segment export` once.
* While the endpoint is not configured or is disabled, the segment's sync pauses (nothing queued, watermark
  and sent set unchanged); once it is active again the net changes since are sent, one per lead.
* "Entered/left" is the net change between two syncs: a lead that entered and left between them is not sent.
* `at` in the payload is when the lead's current status began when that falls after the last sync (the
  move that took it in or out), otherwise the time of this sync (it moved by a field, or by time passing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from leadledger.analytics.context import naive
from leadledger.domain.segments import Segment
from leadledger.marketing.conditions_sql import Params
from leadledger.marketing.membership import EXPORT_ATTRIBUTES
from leadledger.marketing.segments import _session
from leadledger.services import outbox, segment_hooks
from leadledger.services.errors import Invalid
from leadledger.services.segment_hooks import HookMessage

PAYLOAD_ATTRIBUTES = (*EXPORT_ATTRIBUTES, "status_since")
ISO = "%Y-%m-%dT%H:%M:%SZ"  # as the `status_since` attribute writes times


def sync_hooks(app: Any, *, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Sync every segment with a webhook (or those of `only`); what each did."""
    model = app.loaded_model().model
    hooked = [s for s in model.segments.values() if s.webhook is not None]
    if only is not None:
        unknown = sorted(set(only) - {s.key for s in hooked})
        if unknown:
            raise Invalid(f"segment: {', '.join(unknown)} has no webhook (segments with one: "
                          f"{', '.join(s.key for s in hooked) or 'none'})")  # fmt: skip
        hooked = [s for s in hooked if s.key in only]
    active = {e["name"] for e in outbox.list_endpoints(app) if e["active"]}
    marks = segment_hooks.marks(app)
    results = [_sync(app, segment, marks.get(segment.key), segment.webhook.endpoint in active) for segment in hooked]
    return {
        "segments": results,
        "queued": sum(r["queued"] for r in results),
    }


def _sync(app: Any, segment: Segment, since: datetime | None, active: bool) -> dict[str, Any]:
    hook = segment.webhook
    assert hook is not None
    now = app.clock.now()
    result: dict[str, Any] = {"segment": segment.key, "endpoint": hook.endpoint, "since": since, "until": now,
                              "entered": 0, "left": 0, "queued": 0}  # fmt: skip
    if not active:
        result["state"] = "paused: the endpoint is not configured or not active"
        return result
    sent = segment_hooks.sent_members(app, segment.key) if since is not None else set()
    current, details = _members(app, segment.key, now, sent)
    if since is None:
        started = segment_hooks.start_sync(app, segment=segment.key, endpoint=hook.endpoint, until=now,
                                           members=sorted(current))  # fmt: skip
        result["state"] = "started: current members count as sent" if started else "skipped: another run synced"
        return result
    entered, left = sorted(current - sent), sorted(sent - current)
    result["entered"], result["left"] = len(entered), len(left)
    messages = [
        HookMessage(event, lead, _payload(event, segment.key, details.get(lead, {"id": lead}), since, now))
        for event, leads in ((hook.on_enter, entered), (hook.on_leave, left))
        if event is not None  # an event the segment does not send still moves the sent set
        for lead in leads
    ]
    queued = segment_hooks.queue_sync(app, segment=segment.key, endpoint=hook.endpoint, since=since, until=now,
                                      messages=messages, entered=entered, left=left)  # fmt: skip
    if queued is None:
        result["state"] = "skipped: another run synced meanwhile, or the endpoint was disabled"
        return result
    result["queued"] = queued
    result["state"] = "synced"
    return result


def _members(app: Any, key: str, now: datetime, sent: set[str]) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """The members of `key` at `now`, and the payload attributes of every lead that entered or left."""
    with _session(app, now) as session:
        params = Params("p")
        t = params.add(naive(session.as_of))
        inner = session.builder.flagged([key], t, params, "", PAYLOAD_ATTRIBUTES)
        current = {lead for (lead,) in session.conn.execute(
            f'SELECT "id" FROM ({inner}) WHERE "m_{key}"', params.values).fetchall()}  # fmt: skip
        changed = sorted(current ^ sent)
        details: dict[str, dict[str, Any]] = {}
        if changed:
            selected = ", ".join(f'"{c}"' for c in PAYLOAD_ATTRIBUTES)
            wanted = params.add(changed)
            rows = session.conn.execute(
                f'SELECT {selected} FROM ({inner}) WHERE list_contains({wanted}::VARCHAR[], "id")', params.values
            ).fetchall()
            details = {row[0]: dict(zip(PAYLOAD_ATTRIBUTES, row, strict=True)) for row in rows}
    return current, details


def _payload(event: str, segment: str, lead: dict[str, Any], since: datetime, now: datetime) -> dict[str, Any]:
    status_since = lead.get("status_since")
    at = now.astimezone(UTC).strftime(ISO)
    if status_since and status_since > since.astimezone(UTC).strftime(ISO):
        at = status_since
    return {
        "event": event,
        "segment": segment,
        "lead": {k: lead.get(k) for k in EXPORT_ATTRIBUTES},
        "at": at,
    }
