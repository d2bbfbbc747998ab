"""Approvals: a change the model says needs a decision waits as pending until an approver decides.

The request, the decision and the decider are all in the ledger: the request as an `approval_request`
entry, a denial as `approval_denied`, an approval as the change itself carrying `approved_by`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from leadledger.domain.automation import ApprovalRule
from leadledger.domain.changes import Actor, LeadState, StatusChange, json_ready
from leadledger.services import changes
from leadledger.services.app import App
from leadledger.services.errors import ChangeRefused, Forbidden, Invalid, NotFound
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import repository as repo

DEFAULT_APPROVERS = frozenset({"manager", "ops"})


def request_if_needed(
    uow: UnitOfWork, state: LeadState, change: StatusChange, spec: changes.ChangeSpec, who: Actor
) -> changes.PendingApproval | None:
    """When an approval rule holds the change: record the request (the state does not move), tell the approvers."""
    if change.to_status not in uow.approval_statuses:
        return None
    rule = _approval_rule(uow, state, change)
    if rule is None or (who.role in rule.approvers and spec.source == "manual"):
        return None  # an approver deciding for themselves; automation never approves its own moves
    request = {
        "status": spec.status,
        "stage": spec.stage,
        "owner": spec.owner,
        "reason": spec.reason,
        "note": spec.note,
        "fields": json_ready(spec.fields),
        "at": (spec.at or uow.now).isoformat(),
        "source": spec.source,
        "rule": spec.rule,
        "log": ({"type": spec.log.type, "data": dict(spec.log.data)} if spec.log else None),
    }
    uow.store_now(state.id)  # a lead created in this unit of work (a form, a replay) has no row yet
    approval_id = uow.session.add_approval(
        {
            "lead_id": state.id,
            "rule": rule.name,
            "request": request,
            "requested_by": who.name,
            "requested_at": uow.now,
            "status": "pending",
        }
    )
    marker = replace(
        change,
        to_status=state.status,
        to_stage=state.stage,
        to_owner=state.owner,
        kind="approval_request",
        fields={"approval_id": approval_id, "requested_status": change.to_status, "approval_rule": rule.name},
        override_of_seq=None,
        override_rule=None,
        idempotency_key=spec.idempotency_key,
    )
    changes.record(uow, marker)
    for approver in uow.people_with_roles(rule.approvers, near=state.owner):
        uow.notify(approver, state.id, "approval",
                   f"{who.name} asks to move {state.id} to {change.to_status} ({rule.name})", rule.name)  # fmt: skip
    uow.counts["approvals_requested"] += 1
    return changes.PendingApproval(state.id, approval_id, rule.name, tuple(sorted(rule.approvers)))


def _approval_rule(uow: UnitOfWork, state: LeadState, change: StatusChange) -> ApprovalRule | None:
    """The approval a move needs, judged on every value the lead's fields held in its current stint.

    Clearing or lowering a field before the move (then restoring it) would otherwise dodge a rule such as
    "high value -> Disqualified needs a manager" (`UnitOfWork.stint_fields` says what a stint is).
    """
    context = uow.context(state.id, change=change)
    rule = uow.auto.approval_for(change.to_status, context)
    if rule is not None:
        return rule
    for fields in uow.stint_fields(state.id):
        rule = uow.auto.approval_for(change.to_status, {**context, "lead": {**context["lead"], **fields}})
        if rule is not None:
            return rule
    return None


def list_approvals(app: App, *, status: str | None = "pending", lead_id: str | None = None) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        return [row._asdict() for row in repo.approval_rows(conn, status=status, lead_id=lead_id)]


def decide(app: App, *, approval_id: int, actor: str, approve: bool, note: str | None = None) -> dict[str, Any]:
    """Approve (the change is applied now, re-checked against the lead as it is) or deny a pending request."""

    def work(uow: UnitOfWork) -> dict[str, Any]:
        row = uow.session.approval(approval_id)
        if row is None:
            raise NotFound(f"no approval #{approval_id}")
        if row["status"] != "pending":
            raise Invalid(f"approval #{approval_id} is already {row['status']}")
        rule = next((r for r in uow.auto.approvals if r.name == row["rule"]), None)
        approvers = rule.approvers if rule is not None else DEFAULT_APPROVERS
        if uow.who.role not in approvers:
            raise Forbidden(
                f"{uow.who.name} is a {uow.who.role}; approval #{approval_id} needs one of: "
                f"{', '.join(sorted(approvers))}"
            )
        lead_id = row["lead_id"]
        uow.load([lead_id])
        if not approve:
            changes.record_decision(uow, lead_id, approval_id, "denied", note)
            _close(uow, approval_id, "denied", note)
            return {"approval": approval_id, "lead": lead_id, "decision": "denied"}
        request = row["request"]
        requester = uow.user(row["requested_by"])
        role = requester.role if requester is not None else "rep"
        spec = changes.ChangeSpec(
            lead_id=lead_id,
            status=request.get("status"),
            stage=request.get("stage"),
            owner=request.get("owner"),
            reason=request.get("reason"),
            note=note or request.get("note"),
            fields=request.get("fields") or {},
            at=max(uow.now, uow.states[lead_id].last_at),
            source=request.get("source") or "manual",
            rule=request.get("rule"),
            log=changes.ActivityIn(request["log"]["type"], data=request["log"]["data"]) if request.get("log") else None,
        )
        outcome = changes.apply(uow, spec, actor=Actor(row["requested_by"], role), approved_by=uow.who.name)
        if isinstance(outcome, ChangeRefused):
            raise ChangeRefused(lead_id, outcome.violations)  # the lead moved on; deny it or try again later
        assert not isinstance(outcome, changes.PendingApproval)
        _close(uow, approval_id, "approved", note)
        return {"approval": approval_id, "lead": lead_id, "decision": "approved", "seq": outcome.seq}

    return in_unit_of_work(app, actor, work)


def _close(uow: UnitOfWork, approval_id: int, status: str, note: str | None) -> None:
    uow.session.close_approval(approval_id, {"status": status, "decided_by": uow.who.name, "decided_at": uow.now,
                                             "note": note})  # fmt: skip
