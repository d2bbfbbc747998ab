"""Lead commands and queries: create a lead, change its status/stage/owner, log an activity, read it back.

Adapters (CLI, API) call these; each write runs in a unit of work (`services.unit_of_work`: one transaction,
retried when another writer got there first) through change handling (`services.changes`), which every
other writer — events, the sweep, approvals, the backtest, the API's change writer — goes through too.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from leadledger.domain.changes import Violation
from leadledger.services import automation, changes
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, Applied, ChangeSpec, Outcome, PendingApproval
from leadledger.services.errors import ChangeRefused, Forbidden, NotFound, ServiceError
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import repository as repo

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
    "list_leads",
    "log_activity",
    "timeline",
]

BATCH_SIZE = 2000
FUTURE_TOLERANCE = timedelta(minutes=5)


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

    def work(uow: UnitOfWork) -> Applied | ChangeRefused:
        if idempotency_key:
            uow.load_keys([idempotency_key])
        return changes.create(uow, lead_id=new_id, fields=fields, owner=owner, stage=stage, at=at or uow.now,
                              source=source, idempotency_key=idempotency_key)  # fmt: skip

    result = in_unit_of_work(app, actor, work)
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

        def work(uow: UnitOfWork, chunk: Sequence[ChangeSpec] = chunk) -> list[Outcome]:
            uow.load(spec.lead_id for spec in chunk)
            uow.load_keys([spec.idempotency_key for spec in chunk if spec.idempotency_key])
            return [changes.apply(uow, spec) for spec in chunk]

        results.extend(in_unit_of_work(app, actor, work))
    return results


def log_activity(app: App, *, lead_id: str, actor: str, activity: ActivityIn, source: str = "manual") -> bool:
    """Record an interaction on a lead, as an event: the model's rules react to it like to any other event.

    Returns False when the activity's key was seen before (nothing happens twice).
    """

    def work(uow: UnitOfWork) -> bool:
        uow.load([lead_id])
        state = uow.states.get(lead_id)
        if state is None:
            raise NotFound(f"no lead {lead_id!r}")
        if uow.who.role == "rep" and state.owner not in (None, uow.who.name):
            raise Forbidden(f"{uow.who.name} is a rep and does not own lead {lead_id}")
        at = activity.at or uow.now
        if at > uow.now + FUTURE_TOLERANCE:
            raise ChangeRefused(lead_id, (Violation("at", "in_future", "an activity cannot be dated in the future"),))
        if activity.key:
            uow.load_keys([], [activity.key])
        if not changes.log_event(uow, lead_id, activity, at, uow.who.name, source):
            return False
        context = {**activity.data, "type": activity.type, "id": activity.key, "at": at.isoformat()}
        automation.run_event_rules(uow, lead_id, activity.type, context, at, activity.key)
        return True

    return in_unit_of_work(app, actor, work)


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
        rows = repo.find_leads(
            conn,
            statuses=[status, *model.children.get(status, ())] if status else None,
            stage=stage,
            owner=owner,
            source=source,
            status_since_before=(
                app.clock.now() - in_status_longer_than if in_status_longer_than is not None else None
            ),
            after=after,
            limit=max(1, min(limit, 10_000)),
        )
        return [lead_view(row) for row in rows]


def timeline(app: App, lead_id: str) -> dict[str, Any]:
    """The lead, every ledger entry in order, and its logged activities."""
    with app.db.read() as conn:
        row = repo.lead_row(conn, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}")
        entries = [entry._asdict() for entry in repo.entries_for(conn, lead_id)]
        logged = [a._asdict() for a in repo.activities_for(conn, lead_id)]
    return {"lead": lead_view(row), "entries": entries, "activities": logged}
