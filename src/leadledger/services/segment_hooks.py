"""Queueing a segment's on-enter/on-leave messages through the outbox, once per change, never twice.

`leadledger.marketing.hooks` works out who entered and left (today's members against the members the
endpoint was last told of); this writes the result in one unit of work: the messages (the same outbox rows,
signatures, retries and dead letters as the `webhook` action: `UnitOfWork.queue`), the set of members sent,
and the segment's watermark. The watermark is read locked and compared with the one the changes were worked
out from: when another run moved it meanwhile, this one writes nothing (its changes are stale, and were or
will be sent by the other). A crash before commit leaves all three as they were; the next run sends them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from leadledger.services.app import App
from leadledger.services.people import SYSTEM
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store.tables_marketing import segment_hook_members, segment_marks

RULE_PREFIX = "segment:"  # outbox rows' `rule` column: which segment queued the message


@dataclass(frozen=True)
class HookMessage:
    topic: str  # the event name (the segment's on_enter or on_leave)
    lead_id: str
    payload: dict[str, Any]


def marks(app: App) -> dict[str, datetime]:
    """Each synced segment's watermark: when its endpoint was last brought up to date."""
    with app.db.read() as conn:
        return {row.segment: row.watermark for row in conn.execute(select(segment_marks))}


def sent_members(app: App, segment: str) -> set[str]:
    """The leads `segment`'s endpoint was last told are members (read with the watermark: they move together)."""
    with app.db.read() as conn:
        query = select(segment_hook_members.c.lead_id).where(segment_hook_members.c.segment == segment)
        return set(conn.execute(query).scalars())


def queue_sync(
    app: App,
    *,
    segment: str,
    endpoint: str,
    since: datetime,
    until: datetime,
    messages: Sequence[HookMessage],
    entered: Sequence[str],
    left: Sequence[str],
) -> int | None:
    """Queue `messages` to `endpoint`, record that the endpoint now knows `entered` and forgot `left`, and move
    `segment`'s watermark from `since` to `until`.

    Returns how many were queued; None when nothing was written: the watermark is no longer `since` (another
    run synced meanwhile) or the endpoint is no longer active (the sync pauses; see `marketing.hooks`)."""

    def work(uow: UnitOfWork) -> int | None:
        if uow.session.segment_mark(segment) != since or endpoint not in uow.endpoints():
            return None
        for message in messages:
            uow.queue("webhook", message.topic, endpoint, message.payload, message.lead_id, RULE_PREFIX + segment)
        uow.session.set_segment_mark(
            segment,
            until,
            now=uow.now,
            first=False,
            entered=entered,
            left=left,
        )
        return len(messages)

    return in_unit_of_work(app, SYSTEM.name, work, automation=False)


def start_sync(app: App, *, segment: str, endpoint: str, until: datetime, members: Sequence[str]) -> bool:
    """A segment's first sync: its members now count as sent, nothing is queued (no flood of history)."""

    def work(uow: UnitOfWork) -> bool:
        if uow.session.segment_mark(segment) is not None or endpoint not in uow.endpoints():
            return False
        uow.session.set_segment_mark(segment, until, now=uow.now, first=True, entered=members, left=())
        return True

    return in_unit_of_work(app, SYSTEM.name, work, automation=False)
