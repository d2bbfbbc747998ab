"""Lead commands and queries: create a lead, change its status/stage/owner, log an activity, read it back.

Adapters (CLI, API) call these; each write runs in a unit of work (`services.unit_of_work`: one transaction,
retried when another writer got there first) through change handling (`services.changes`), which every
other writer — events, the sweep, approvals, the backtest, the API's change writer — goes through too.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from leadledger.domain.changes import Violation
from leadledger.domain.engine import FUTURE_TOLERANCE
from leadledger.services import automation, changes
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, Applied, ChangeSpec, Outcome, PendingApproval
from leadledger.services.errors import ChangeRefused, Forbidden, Invalid, NotFound, ServiceError
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import repository as repo
from leadledger.store.bulk import chunks
from leadledger.store.ports import CONTACT_FIELDS

__all__ = [
    "CONTACT_FIELDS",
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


class ApprovalPending(ServiceError):
    """The change waits for a decision by someone with an approver role; nothing moved yet."""

    def __init__(self, pending: PendingApproval):
        self.pending = pending
        super().__init__(
            f"change to {pending.lead_id} waits for approval #{pending.approval_id} ({pending.rule}; "
            f"approvers: {', '.join(pending.approvers)})"
        )


def new_lead_id(now: datetime) -> str:
    """`L` + 16 characters: creation time in milliseconds then randomness, so ids sort by age.

    The "extended hex" base32 alphabet (0-9, A-V) keeps byte order in text order; the standard one (A-Z, 2-7)
    sorts 2-7 before A-Z, so pages by id were not in creation order.
    """
    raw = int(now.timestamp() * 1000).to_bytes(6, "big") + secrets.token_bytes(4)
    return "L" + base64.b32hexencode(raw).decode().rstrip("=")


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
    for chunk in chunks(specs, batch_size):

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
    data = _hex_hashes(row._asdict())
    data["fields"] = dict(row.fields or {})
    return data


def _hex_hashes(data: dict[str, Any]) -> dict[str, Any]:
    """The hash chain's values (an entry's `hash`, a lead's `chain_head`) as hex text, as `verify` prints them."""
    for key in ("hash", "chain_head"):
        if isinstance(data.get(key), bytes | bytearray | memoryview):
            data[key] = bytes(data[key]).hex()
    return data


def list_leads(
    app: App,
    *,
    status: str | Sequence[str] | None = None,
    not_status: Sequence[str] = (),
    stage: str | None = None,
    owner: str | None = None,
    source: str | None = None,
    reason: Sequence[str] = (),
    campaign: Sequence[str] = (),
    company: str | None = None,
    team: Sequence[str] = (),
    lead_ids: Collection[str] | None = None,
    in_status_longer_than: timedelta | None = None,
    after: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Leads matching every filter given, ordered by id (ids sort by creation), `after` an id for the next page.

    Several statuses (or reasons, campaigns, teams) mean any of them; a status includes its sub-statuses
    (`new` lists Assigned leads too), and so does `not_status`. `company` ignores case. `lead_ids` keeps only
    those leads (a segment's members, which adapters compute from the analytics store). A status or stage may
    be named by its label; an unknown status, stage, reason or owner is an error (`Invalid`) that lists the
    valid ones, never an empty page.
    """
    limit = max(1, min(limit, 10_000))
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        keys = _resolve_statuses(model, "status", [status] if isinstance(status, str) else list(status or ()))
        not_keys = _resolve_statuses(model, "not_status", list(not_status))
        stage_key = model.resolve_stage(stage) if stage else None
        if stage and stage_key is None:
            raise Invalid(f"stage: {model.unknown_stage(stage)}")
        _check_known("reason", reason, model.reasons)
        if owner and repo.user_row(conn, owner) is None:
            names = sorted(r.name for r in repo.user_rows(conn) if r.name != "system")
            shown = ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
            raise Invalid(f"owner: unknown user {owner!r}: users are {shown}")
        rows = repo.find_leads(
            conn,
            statuses=_with_children(model, keys) if keys else None,
            not_statuses=_with_children(model, not_keys) if not_keys else (),
            stage=stage_key,
            owner=owner,
            source=source,
            reasons=list(reason),
            campaigns=list(campaign),
            company=company,
            teams=list(team),
            lead_ids=lead_ids,
            status_since_before=(
                app.clock.now() - in_status_longer_than if in_status_longer_than is not None else None
            ),
            after=after,
            limit=limit,
        )
        return [lead_view(row) for row in rows]


def _check_known(option: str, values: Sequence[str], known: Collection[str]) -> None:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise Invalid(f"{option}: unknown {option.removeprefix('not_')} {unknown[0]!r} (one of: {', '.join(known)})")


def _resolve_statuses(model: Any, option: str, given: Sequence[str]) -> list[str]:
    """Status keys for what the caller named (a key or a label); an unknown one names the closest keys."""
    keys = []
    for text in given:
        key = model.resolve_status(text)
        if key is None:
            raise Invalid(f"{option}: {model.unknown_status(text)}")
        keys.append(key)
    return keys


def _with_children(model: Any, keys: Sequence[str]) -> list[str]:
    return sorted({k for key in keys for k in (key, *model.children.get(key, ()))})


def timeline(app: App, lead_id: str) -> dict[str, Any]:
    """The lead, every ledger entry in order, and its logged activities."""
    with app.db.read() as conn:
        row = repo.lead_row(conn, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}")
        entries = [_hex_hashes(entry._asdict()) for entry in repo.entries_for(conn, lead_id)]
        logged = [a._asdict() for a in repo.activities_for(conn, lead_id)]
    return {"lead": lead_view(row), "entries": entries, "activities": logged}
