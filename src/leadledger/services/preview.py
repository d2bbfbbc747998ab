"""Preview before commit: what a change would do, computed by the real write path and then rolled back.

`preview_change` runs the change exactly as `change_lead` would — the engine's checks, the approval rules,
on-enter actions, routing, event rules reacting to the new status, SLA clocks — inside a transaction that is
always rolled back, and reports what it would have written: every ledger entry (with the rules that made
them), the owner before and after, tasks, notifications, webhooks and e-mails, clocks started and stopped,
and an approval the change would wait for (with what approving it would then do). Nothing is committed;
routing state, idempotency keys and sequence counters are untouched because the transaction never commits.

`requirements` reads the status model alone: what entering a status asks for, so a form can show exactly
those fields, with their help text, before anyone presses a button.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadledger.domain.changes import Violation
from leadledger.domain.statusmodel import StatusModel
from leadledger.services import changes
from leadledger.services.app import App
from leadledger.services.changes import Applied, ChangeSpec, PendingApproval
from leadledger.services.errors import ChangeRefused
from leadledger.services.unit_of_work import UnitOfWork
from leadledger.store.session import SqlWriteSession

# --- what a status asks for ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldNeed:
    name: str
    label: str
    type: str
    help: str
    choices: tuple[str, ...]
    required: bool  # False: recommended (a warning when missing, not a refusal)
    group: tuple[str, ...] = ()  # "one of these" groups (email or phone)


@dataclass(frozen=True)
class ActivityOption:
    """One kind of logged interaction that satisfies the entry rule (`call_logged` with outcome connected)."""

    type: str
    key: str | None
    value: str | None

    @property
    def token(self) -> str:
        return f"{self.type}:{self.key}={self.value}" if self.key else self.type

    @property
    def label(self) -> str:
        words = self.type.replace("_", " ")
        return f"{words} ({self.key.replace('_', ' ')}: {self.value})" if self.key else words


@dataclass(frozen=True)
class Requirements:
    status: str
    label: str
    description: str  # the entry rule in words
    fields: tuple[FieldNeed, ...]
    reason_required: bool
    reasons: tuple[tuple[str, str], ...]  # (code, label) the status accepts
    activity: tuple[ActivityOption, ...]  # any one of these, logged with the change
    activity_within_days: int | None

    @property
    def needs_input(self) -> bool:
        """A one-click move is possible only when the status asks for nothing at all."""
        return bool(self.fields or self.reason_required or self.activity or self.reasons)


def requirements(model: StatusModel, status_key: str) -> Requirements:
    status = model.statuses[status_key]
    entry = status.entry
    needs: list[FieldNeed] = []
    seen: set[str] = set()

    def add(name: str, required: bool, group: tuple[str, ...] = ()) -> None:
        if name in seen:
            return
        seen.add(name)
        spec = model.fields.get(name)
        needs.append(
            FieldNeed(
                name=name,
                label=spec.label if spec else name,
                type=spec.type if spec else "text",
                help=spec.help if spec else "",
                choices=spec.choices if spec else (),
                required=required,
                group=group,
            )
        )

    for name in entry.required:
        add(name, True)
    for group in entry.any_of:
        for name in group:
            add(name, True, group)
    for name in entry.recommended:
        add(name, False)
    reason = entry.reason
    codes = reason.codes if reason is not None else ()
    options: list[ActivityOption] = []
    if entry.activity is not None:
        for match in entry.activity.any_of:
            if match.key is None:
                options.append(ActivityOption(match.type, None, None))
            else:
                options.extend(ActivityOption(match.type, match.key, v) for v in sorted(match.values))
    within = entry.activity.within if entry.activity is not None else None
    return Requirements(
        status=status.key,
        label=status.label,
        description=entry.description,
        fields=tuple(needs),
        reason_required=bool(reason and reason.required),
        reasons=tuple((c, model.reasons[c].label if c in model.reasons else c) for c in codes),
        activity=tuple(options),
        activity_within_days=within.days if within is not None else None,
    )


# --- what a change would do ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    lead_id: str
    outcome: str  # applies | needs_approval | refused
    violations: tuple[Violation, ...] = ()
    warnings: tuple[Violation, ...] = ()
    status_before: str | None = None
    status_after: str | None = None
    stage_before: str | None = None
    stage_after: str | None = None
    owner_before: str | None = None
    owner_after: str | None = None
    entries: tuple[dict[str, Any], ...] = ()  # ledger entries, the person's first, then what automation adds
    tasks: tuple[dict[str, Any], ...] = ()
    notifications: tuple[dict[str, Any], ...] = ()
    messages: tuple[dict[str, Any], ...] = ()  # webhooks and e-mails queued in the outbox
    clocks_started: tuple[dict[str, Any], ...] = ()
    clocks_stopped: tuple[dict[str, Any], ...] = ()
    approval_rule: str | None = None
    approvers: tuple[str, ...] = ()
    approver_people: tuple[str, ...] = ()  # who would be asked (their inbox)
    after_approval: Preview | None = field(default=None)


class _RollBack(Exception):
    """Raised at the end of every preview so the transaction never commits."""


def preview_change(app: App, *, actor: str, spec: ChangeSpec) -> Preview:
    """What `change_lead(app, actor=actor, spec=spec)` would do now, without doing it."""
    found: list[Preview] = []
    try:
        with app.db.write() as conn:

            def unit_of_work() -> UnitOfWork:  # as `in_unit_of_work` builds one, on this transaction
                model = app.loaded_model(conn).model
                return UnitOfWork(SqlWriteSession(conn), model, now=app.clock.now(), actor=actor,
                                  smtp_configured=app.smtp_configured)  # fmt: skip

            found.append(_judge(unit_of_work(), spec, approved_by=None))
            pending = found[0]
            if pending.outcome == "needs_approval":
                # what saying yes would do: the same change, judged afresh as the approver's decision applies it
                found[0] = _replace(pending, after_approval=_judge(unit_of_work(), spec, approved_by="(approver)"))
            raise _RollBack  # nothing was flushed; the approval request the first judgement recorded goes too
    except _RollBack:
        pass
    return found[0]


def _replace(preview: Preview, **changes_: Any) -> Preview:
    from dataclasses import replace

    return replace(preview, **changes_)


def _judge(uow: UnitOfWork, spec: ChangeSpec, approved_by: str | None) -> Preview:
    uow.load([spec.lead_id])
    before = uow.states.get(spec.lead_id)
    outcome = changes.apply(uow, spec, approved_by=approved_by)
    if isinstance(outcome, ChangeRefused):
        return Preview(spec.lead_id, "refused", violations=outcome.violations)
    assert before is not None
    after = uow.states[spec.lead_id]
    writes = uow.writes
    base: dict[str, Any] = {
        "lead_id": spec.lead_id,
        "status_before": before.status,
        "stage_before": before.stage,
        "owner_before": before.owner,
    }
    if isinstance(outcome, PendingApproval):
        asked = [n["recipient"] for n in writes.notifications if n["kind"] == "approval"]
        return Preview(
            **base,
            outcome="needs_approval",
            status_after=before.status,
            stage_after=before.stage,
            owner_after=before.owner,
            approval_rule=outcome.rule,
            approvers=outcome.approvers,
            approver_people=tuple(asked),
        )
    assert isinstance(outcome, Applied)
    started = [
        {"sla": c.sla, "due_at": c.due_at, "responsible": c.responsible, "status": c.status}
        for lead_id, c in uow.new_clocks
        if lead_id == spec.lead_id
    ]
    stopped = [
        {"sla": c.sla, "outcome": c.status, "due_at": c.due_at, "closed_at": c.closed_at}
        for c in uow.changed_clocks.values()
        if c.closed_at is not None
    ]
    return Preview(
        **base,
        outcome="applies",
        warnings=outcome.warnings,
        status_after=after.status,
        stage_after=after.stage,
        owner_after=after.owner,
        entries=tuple(_entry(e) for e in writes.entries if e["lead_id"] == spec.lead_id),
        tasks=tuple(
            {"title": t["title"], "assignee": t["assignee"], "due_at": t["due_at"], "rule": t["rule"]}
            for t in writes.tasks
        ),
        notifications=tuple(
            {"recipient": n["recipient"], "message": n["message"], "rule": n["rule"]} for n in writes.notifications
        ),
        messages=tuple(
            {"kind": m["kind"], "topic": m["topic"], "target": m["target"], "rule": m["rule"]} for m in writes.outbox
        ),
        clocks_started=tuple(started),
        clocks_stopped=tuple(stopped),
    )


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "source", "rule", "from_status", "to_status", "from_stage", "to_stage", "from_owner",
            "to_owner", "reason", "override_rule")  # fmt: skip
    found = {k: entry.get(k) for k in keys}
    at: datetime | None = entry.get("at")
    found["at"] = at
    return found
