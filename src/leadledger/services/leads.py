"""Lead commands and queries: create a lead, change its status/stage/owner, log an activity, read it back.

Every write path (CLI, API, UI, import, automation) calls these functions; each runs a `WriteBatch` (one
transaction: engine check, ledger + projection, automation) and retries when another writer got there first.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from leadledger.domain.changes import Violation
from leadledger.services.app import App
from leadledger.services.batch import (
    ActivityIn,
    Applied,
    ChangeSpec,
    Outcome,
    PendingApproval,
    WriteBatch,
)
from leadledger.services.errors import ChangeRefused, Conflict, Forbidden, NotFound, ServiceError
from leadledger.store import repository as repo
from leadledger.store.tables import leads

__all__ = [
    "ActivityIn",
    "Applied",
    "ApprovalPending",
    "ChangeSpec",
    "PendingApproval",
    "change_lead",
    "change_leads",
    "create_lead",
    "get_lead",
    "in_batch",
    "list_leads",
    "log_activity",
    "timeline",
]

MAX_ATTEMPTS = 8
BATCH_SIZE = 2000
T = TypeVar("T")


class ApprovalPending(ServiceError):
    """The change waits for a decision by someone with an approver role; nothing moved yet."""

    def __init__(self, pending: PendingApproval):
        self.pending = pending
        super().__init__(
            f"change to {pending.lead_id} waits for approval #{pending.approval_id} ({pending.rule}; "
            f"approvers: {', '.join(pending.approvers)})"
        )


def new_lead_id(now: datetime) -> str:
    """`L` + 16 base32 characters: creation time in milliseconds then randomness, so ids sort by age."""
    raw = int(now.timestamp() * 1000).to_bytes(6, "big") + secrets.token_bytes(4)
    return "L" + base64.b32encode(raw).decode().rstrip("=")


def in_batch(app: App, actor: str, work: Callable[[WriteBatch], T], *, automation: bool = True) -> T:
    """Run `work` in one write transaction and flush it; retried when another writer got there first."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with app.db.write() as conn:
                batch = WriteBatch(app, conn, actor, automation=automation)
                result = work(batch)
                batch.flush()
                return result
        except (repo.VersionConflict, IntegrityError) as exc:
            if attempt == MAX_ATTEMPTS - 1:
                raise Conflict(
                    f"the lead kept changing under this write; try again ({exc.__class__.__name__})"
                ) from exc
    raise AssertionError("unreachable")


# --- create -------------------------------------------------------------------------------------


def create_lead(
    app: App,
    *,
    actor: str,
    fields: Mapping[str, Any],
    owner: str | None = None,
    stage: str | None = None,
    at: datetime | None = None,
    source: str = "manual",
    idempotency_key: str | None = None,
    lead_id: str | None = None,
) -> Applied:
    """Create a lead as New (name and a contact method required); raises ChangeRefused listing every problem.

    Entering New runs its automation (routing, then the first-contact task) in the same transaction.
    """
    new_id = lead_id or new_lead_id(app.clock.now())

    def work(batch: WriteBatch) -> Applied | ChangeRefused:
        if idempotency_key:
            batch.load_keys([idempotency_key])
        return batch.create(
            lead_id=new_id,
            fields=fields,
            owner=owner,
            stage=stage,
            at=at or batch.now,
            source=source,
            idempotency_key=idempotency_key,
        )

    result = in_batch(app, actor, work)
    if isinstance(result, ChangeRefused):
        raise result
    return result


# --- change ---------------------------------------------------------------------------------------


def change_lead(app: App, *, actor: str, spec: ChangeSpec) -> Applied:
    """Apply one change; raises ChangeRefused (nothing written) with every violation when the model says no.

    A change that needs approval raises ApprovalPending (the request is recorded; the state does not move).
    """
    (result,) = change_leads(app, [spec], actor=actor)
    if isinstance(result, ChangeRefused):
        raise result
    if isinstance(result, PendingApproval):
        raise ApprovalPending(result)
    return result


def change_leads(app: App, specs: Sequence[ChangeSpec], *, actor: str, batch_size: int = BATCH_SIZE) -> list[Outcome]:
    """Apply many changes, `batch_size` per transaction; each change is all-or-nothing on its own.

    Results come back in the order given: `Applied`, `PendingApproval`, or the `ChangeRefused` with its
    violations. Changes to the same lead apply in order, each judged against the state the previous one left.
    """
    results: list[Outcome] = []
    for start in range(0, len(specs), batch_size):
        chunk = specs[start : start + batch_size]

        def work(batch: WriteBatch, chunk: Sequence[ChangeSpec] = chunk) -> list[Outcome]:
            batch.load(spec.lead_id for spec in chunk)
            batch.load_keys([spec.idempotency_key for spec in chunk if spec.idempotency_key])
            return [batch.apply(spec) for spec in chunk]

        results.extend(in_batch(app, actor, work))
    return results


def log_activity(app: App, *, lead_id: str, actor: str, activity: ActivityIn, source: str = "manual") -> bool:
    """Record an interaction on a lead, as an event: the model's rules react to it like to any other event.

    Returns False when the activity's key was seen before (nothing happens twice).
    """

    def work(batch: WriteBatch) -> bool:
        batch.load([lead_id])
        state = batch.states.get(lead_id)
        if state is None:
            raise NotFound(f"no lead {lead_id!r}")
        if batch.who.role == "rep" and state.owner not in (None, batch.who.name):
            raise Forbidden(f"{batch.who.name} is a rep and does not own lead {lead_id}")
        at = activity.at or batch.now
        if at > batch.now + timedelta(minutes=5):
            raise ChangeRefused(lead_id, (Violation("at", "in_future", "an activity cannot be dated in the future"),))
        if activity.key:
            batch.load_keys([], [activity.key])
        if not batch.log_event(lead_id, activity, at, batch.who.name, source):
            return False
        context = {"type": activity.type, "id": activity.key, "at": at.isoformat(), **activity.data}
        batch.run_event_rules(lead_id, activity.type, context, at, activity.key)
        return True

    return in_batch(app, actor, work)


# --- read -----------------------------------------------------------------------------------------


def get_lead(app: App, lead_id: str) -> dict[str, Any]:
    with app.db.read() as conn:
        row = repo.lead_row(conn, lead_id)
    if row is None:
        raise NotFound(f"no lead {lead_id!r}")
    return lead_view(row)


def lead_view(row: Any) -> dict[str, Any]:
    data = row._asdict()
    data["fields"] = dict(row.fields or {})
    return data


def list_leads(
    app: App,
    *,
    status: str | None = None,
    stage: str | None = None,
    owner: str | None = None,
    source: str | None = None,
    in_status_longer_than: timedelta | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Leads matching every filter given, ordered by id (ids sort by creation), `after` an id for the next page.

    A status filter includes that status's sub-statuses (`new` lists Assigned leads too).
    """
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        query = select(leads).order_by(leads.c.id).limit(max(1, min(limit, 10_000)))
        if status:
            keys = [status, *model.children.get(status, ())]
            query = query.where(leads.c.status.in_(keys))
        if stage:
            query = query.where(leads.c.stage == stage)
        if owner:
            query = query.where(leads.c.owner == owner)
        if source:
            query = query.where(leads.c.source == source)
        if in_status_longer_than is not None:
            query = query.where(leads.c.status_since <= app.clock.now() - in_status_longer_than)
        if after:
            query = query.where(leads.c.id > after)
        return [lead_view(row) for row in conn.execute(query)]


def timeline(app: App, lead_id: str) -> dict[str, Any]:
    """The lead, every ledger entry in order, and its logged activities."""
    with app.db.read() as conn:
        row = repo.lead_row(conn, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}")
        entries = [entry._asdict() for entry in repo.entries_for(conn, lead_id)]
        logged = [a._asdict() for a in repo.activities_for(conn, lead_id)]
    return {"lead": lead_view(row), "entries": entries, "activities": logged}
