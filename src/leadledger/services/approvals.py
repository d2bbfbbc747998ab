"""Approvals: a change the model says needs a decision waits as pending until an approver decides.

The request, the decision and the decider are all in the ledger: the request as an `approval_request`
entry, a denial as `approval_denied`, an approval as the change itself carrying `approved_by`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from leadledger.domain.changes import Actor
from leadledger.services.app import App
from leadledger.services.batch import ActivityIn, Applied, ChangeSpec, PendingApproval, WriteBatch
from leadledger.services.errors import ChangeRefused, Forbidden, Invalid, NotFound
from leadledger.services.leads import in_batch
from leadledger.store.tables import approvals, users

DEFAULT_APPROVERS = frozenset({"manager", "ops"})


def list_approvals(app: App, *, status: str | None = "pending", lead_id: str | None = None) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        query = select(approvals).order_by(approvals.c.id)
        if status:
            query = query.where(approvals.c.status == status)
        if lead_id:
            query = query.where(approvals.c.lead_id == lead_id)
        return [row._asdict() for row in conn.execute(query)]


def decide(app: App, *, approval_id: int, actor: str, approve: bool, note: str | None = None) -> dict[str, Any]:
    """Approve (the change is applied now, re-checked against the lead as it is) or deny a pending request."""

    def work(batch: WriteBatch) -> dict[str, Any]:
        query = select(approvals).where(approvals.c.id == approval_id)
        if batch.conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = batch.conn.execute(query).first()
        if row is None:
            raise NotFound(f"no approval #{approval_id}")
        if row.status != "pending":
            raise Invalid(f"approval #{approval_id} is already {row.status}")
        rule = next((r for r in batch.auto.approvals if r.name == row.rule), None)
        approvers = rule.approvers if rule is not None else DEFAULT_APPROVERS
        if batch.who.role not in approvers:
            raise Forbidden(
                f"{batch.who.name} is a {batch.who.role}; approval #{approval_id} needs one of: "
                f"{', '.join(sorted(approvers))}"
            )
        batch.load([row.lead_id])
        if not approve:
            batch.record_decision(row.lead_id, approval_id, "denied", note)
            _close(batch, approval_id, "denied", note)
            return {"approval": approval_id, "lead": row.lead_id, "decision": "denied"}
        request = row.request
        requester = batch.conn.execute(select(users.c.role).where(users.c.name == row.requested_by)).first()
        role = requester.role if requester is not None else "rep"
        spec = ChangeSpec(
            lead_id=row.lead_id,
            status=request.get("status"),
            stage=request.get("stage"),
            owner=request.get("owner"),
            reason=request.get("reason"),
            note=note or request.get("note"),
            fields=request.get("fields") or {},
            at=max(batch.now, batch.states[row.lead_id].last_at),
            source=request.get("source") or "manual",
            rule=request.get("rule"),
            log=ActivityIn(request["log"]["type"], data=request["log"]["data"]) if request.get("log") else None,
        )
        outcome = batch.apply(spec, actor=Actor(row.requested_by, role), approved_by=batch.who.name)
        if isinstance(outcome, ChangeRefused):
            raise ChangeRefused(row.lead_id, outcome.violations)  # the lead moved on; deny it or try again later
        assert not isinstance(outcome, PendingApproval)
        _close(batch, approval_id, "approved", note)
        seq = outcome.seq if isinstance(outcome, Applied) else None
        return {"approval": approval_id, "lead": row.lead_id, "decision": "approved", "seq": seq}

    return in_batch(app, actor, work)


def _close(batch: WriteBatch, approval_id: int, status: str, note: str | None) -> None:
    batch.conn.execute(
        update(approvals)
        .where(approvals.c.id == approval_id)
        .values(status=status, decided_by=batch.who.name, decided_at=batch.now, note=note)
    )
