"""Change handling: a requested change judged against the model and the lead's state, then recorded.

`apply` is the one way a status, stage, owner or field change gets into the ledger, whoever asks (a person
through the CLI or API, an integration, a rule, a time rule, an approval): the domain engine judges it against
the state the previous change left, an approval rule may hold it, and what is recorded sets off automation
(`automation.after_change`). `create` does the same for a lead's first entry. Both work inside a
`UnitOfWork`; nothing is written until it flushes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from leadledger.domain.changes import Activity, Actor, ChangeRequest, LeadState, Refused, StatusChange, Violation
from leadledger.domain.engine import change_status, new_lead
from leadledger.services import approvals, automation
from leadledger.services.duplicates import check_duplicate_of, existing_contact
from leadledger.services.errors import ChangeRefused, Forbidden
from leadledger.services.people import SYSTEM
from leadledger.services.unit_of_work import ENTRY_META_KEYS, UnitOfWork


@dataclass(frozen=True)
class ActivityIn:
    """An interaction logged with a change (or on its own): `call_logged` with {"outcome": "connected"}."""

    type: str
    at: datetime | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None


@dataclass(frozen=True)
class ChangeSpec:
    """One requested change, as an adapter hands it over (the actor is given separately)."""

    lead_id: str
    status: str | None = None
    stage: str | None = None
    owner: str | None = None
    clear_owner: bool = False
    reason: str | None = None
    note: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    source: str = "manual"
    rule: str | None = None
    idempotency_key: str | None = None
    override: bool = False
    log: ActivityIn | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class Applied:
    """A change that is in the ledger: the entry, its position, and whether it was already there."""

    lead_id: str
    seq: int
    change: StatusChange | None
    duplicate: bool = False
    changed: bool = True  # False: the lead already was as asked (same status, owner, fields); nothing written

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return self.change.warnings if self.change else ()


@dataclass(frozen=True)
class PendingApproval:
    """A change that waits for a decision; it is listed with `leadledger approval list`."""

    lead_id: str
    approval_id: int
    rule: str
    approvers: tuple[str, ...]


Outcome = Applied | ChangeRefused | PendingApproval
RESERVED_FIELDS = frozenset({*ENTRY_META_KEYS, "actor", "actor_role"})  # a field cannot forge attribution


def apply(
    uow: UnitOfWork,
    spec: ChangeSpec,
    *,
    actor: Actor | None = None,
    causation: tuple[str, ...] = (),
    approved_by: str | None = None,
) -> Outcome:
    """Judge and record one change; then run what entering the new status triggers."""
    who = actor or uow.who
    if who.role == "integration" and spec.source == "manual":
        spec = replace(spec, source="integration")  # judged as automation is: `automatic` transitions only
    spec = _keys_for_labels(uow, spec)
    digest = _change_digest(spec) if spec.idempotency_key else None
    if spec.idempotency_key and (who.name, spec.idempotency_key) in uow.keys:
        return _replayed(uow, spec.lead_id, spec.idempotency_key, digest, who)
    if spec.lead_id not in uow.leads:
        uow.load([spec.lead_id])
    state = uow.states.get(spec.lead_id)
    if state is None:
        return ChangeRefused(spec.lead_id, (Violation("lead", "not_found", f"no lead {spec.lead_id!r}"),))
    # "now" is read when the transaction starts, before the lead is locked: a writer that got the lock first may
    # have recorded a later time meanwhile. Without an `at`, the change happens now as the lead knows it.
    at = spec.at or max(uow.now, state.last_at)
    history = uow.activities_for(spec.lead_id) if _needs_history(uow, spec, state) else []
    logged = None
    if spec.log is not None:
        logged = Activity(spec.log.type, spec.log.at or at, spec.log.data)
        history = [*history, logged]
    request = ChangeRequest(
        lead_id=spec.lead_id,
        actor=who,
        at=at,
        source=spec.source,
        status=spec.status,
        stage=spec.stage,
        owner=spec.owner,
        clear_owner=spec.clear_owner,
        reason=spec.reason,
        note=spec.note,
        fields=spec.fields,
        rule=spec.rule,
        idempotency_key=spec.idempotency_key,
        override=spec.override,
    )
    decided = change_status(uow.model, state, request, now=uow.now, activities=history)
    problems = list(decided.violations) if isinstance(decided, Refused) else []
    problems.extend(_reserved_field_violations(spec.fields))
    if spec.owner is not None:
        owner_problem = owner_violation(spec.owner, uow)
        if owner_problem:
            problems.append(owner_problem)
    pointer = check_duplicate_of(uow.model, spec.lead_id, spec.fields, lambda other: state_of(uow, other))
    if pointer is not None:
        problems.append(pointer)
    if spec.expected_version is not None and spec.expected_version != state.version:
        problems.append(
            Violation("version", "stale", f"the lead is at version {state.version}, not {spec.expected_version}")
        )
    if spec.log is not None and (not_theirs := submit_violation(uow, spec.log.type, who)) is not None:
        problems.append(not_theirs)
    if problems or isinstance(decided, Refused):
        return ChangeRefused(spec.lead_id, tuple(problems))
    if spec.source != "import" and _leaves_as_is(decided, state):
        if logged is not None:  # the interaction happened all the same
            log_activity(uow, spec.lead_id, spec.log, logged.at, who.name, spec.source)  # type: ignore[arg-type]
        return Applied(spec.lead_id, state.version, None, changed=False)
    if decided.status_changed and spec.source != "import" and approved_by is None:
        pending = approvals.request_if_needed(uow, state, decided, spec, who)
        if pending is not None:
            return pending
    if logged is not None:
        log_activity(uow, spec.lead_id, spec.log, logged.at, who.name, spec.source)  # type: ignore[arg-type]
    seq = record(uow, decided, approved_by=approved_by, causation=causation, digest=digest)
    if uow.automation and spec.source != "import":
        with uow.triggered_by(who, change=seq):
            automation.after_change(uow, decided, causation)
    return Applied(spec.lead_id, seq, decided)


def record(
    uow: UnitOfWork,
    change: StatusChange,
    *,
    approved_by: str | None = None,
    causation: tuple[str, ...] = (),
    digest: str | None = None,
) -> int:
    """Append a judged change to the ledger (the projection and SLA clocks follow); returns its seq."""
    return uow.append(change, entry_data=_entry_extra(uow, change, approved_by, causation, digest))


def _entry_extra(
    uow: UnitOfWork, change: StatusChange, approved_by: str | None, causation: tuple[str, ...], digest: str | None
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if approved_by:
        extra["approved_by"] = approved_by
    if causation:
        extra["caused_by"] = list(causation)
    if uow.trigger is not None and change.actor == SYSTEM.name:
        extra.update(uow.trigger)  # "by rule X, triggered by ana's event e23"
    if digest is not None:
        extra["request_digest"] = digest  # what the caller's idempotency key was used for
    return extra


def create(
    uow: UnitOfWork,
    *,
    lead_id: str,
    fields: Mapping[str, Any],
    owner: str | None,
    stage: str | None,
    at: datetime,
    source: str,
    idempotency_key: str | None,
    actor: Actor | None = None,
) -> Applied | ChangeRefused:
    """A new lead, New (or Assigned with an owner), then whatever entering that status triggers."""
    who = actor or uow.who
    if who.role == "integration" and source == "manual":
        source = "integration"  # the ledger says where the lead came from
    digest = _creation_digest(fields, owner, stage) if idempotency_key else None
    if idempotency_key and (who.name, idempotency_key) in uow.keys:
        return _replayed(uow, None, idempotency_key, digest, who)
    if uow.exists(lead_id):
        return ChangeRefused(lead_id, (Violation("id", "exists", f"lead {lead_id} already exists"),))
    result = new_lead(
        uow.model,
        lead_id=lead_id,
        fields={k: v for k, v in fields.items() if v is not None},
        actor=who,
        at=at,
        now=uow.now,
        source=source,
        stage=stage,
        owner=owner,
        idempotency_key=idempotency_key,
    )
    problems = list(result.violations) if isinstance(result, Refused) else []
    problems.extend(_reserved_field_violations(fields))
    owner_problem = owner_violation(owner, uow) if owner else None
    if owner_problem:
        problems.append(owner_problem)
    if who.role == "rep" and owner not in (None, who.name) and source == "manual":
        problems.append(Violation("owner", "not_allowed", "a rep may create leads for themselves only"))
    pointer = check_duplicate_of(uow.model, lead_id, fields, lambda other: state_of(uow, other))
    if pointer is not None:
        problems.append(pointer)
    if who.role == "integration" and owner is not None:
        problems.append(Violation("owner", "not_allowed", "an integration may not assign owners: routing does"))
    if problems or isinstance(result, Refused):
        return ChangeRefused(lead_id, tuple(problems))
    known = existing_contact(uow, result.fields)
    if known is not None:  # one person, one lead: never silently created twice
        if uow.model.duplicate_on_create == "link":
            return Applied(known.lead_id, known.version, None, duplicate=True)
        message = f"lead {known.lead_id} already has this {known.field} ({known.value}): update or merge it"
        return ChangeRefused(lead_id, (Violation(known.field, "duplicate", message),))
    has_contact = bool(result.fields.get("email") or result.fields.get("phone"))
    uow.add_lead(lead_id, result, incomplete=not has_contact, entry_data=_entry_extra(uow, result, None, (), digest))
    if uow.automation and source != "import":
        with uow.triggered_by(who, change=1):
            automation.after_change(uow, result, ())
    return Applied(lead_id, 1, result)


def record_decision(uow: UnitOfWork, lead_id: str, approval_id: int, decision: str, note: str | None) -> int:
    """A ledger entry saying who decided what about a pending change (the state does not move)."""
    state = uow.states[lead_id]
    marker = StatusChange(
        lead_id=lead_id,
        at=max(uow.now, state.last_at),
        actor=uow.who.name,
        actor_role=uow.who.role,
        source="manual",
        from_status=state.status,
        to_status=state.status,
        from_stage=state.stage,
        to_stage=state.stage,
        from_owner=state.owner,
        to_owner=state.owner,
        note=note,
        fields={"approval_id": approval_id, "decision": decision},
        kind=f"approval_{decision}",
    )
    return record(uow, marker)


def log_event(
    uow: UnitOfWork, lead_id: str, activity: ActivityIn, at: datetime, actor: str | None, source: str
) -> bool:
    """Store an event in the activity log; False when its sender sent it before (another sender's same id is
    another event). Who may submit each type is the model's (`event_types` roles)."""
    owner = uow.states[lead_id].owner
    if uow.who.role == "rep" and owner not in (None, uow.who.name):  # as for log_activity: own leads only
        raise Forbidden(f"{uow.who.name} is a rep and does not own lead {lead_id}")
    not_theirs = submit_violation(uow, activity.type)
    if not_theirs is not None:
        raise Forbidden(not_theirs.message)
    if activity.key and (actor, activity.key) in uow.activity_keys:
        return False
    log_activity(uow, lead_id, activity, at, actor, source)
    return True


def submit_violation(uow: UnitOfWork, event_type: str, who: Actor | None = None) -> Violation | None:
    """Why `who` may not submit (or log) an event of this type, or None: the model's `event_types` roles.

    An event sets rules off in its sender's name. Types the model does not declare trigger no rule, so anyone
    may log them; `system` replays anything (a backtest).
    """
    who = who or uow.who
    declared = uow.auto.event_type(event_type)
    if declared is None or who.name == SYSTEM.name or who.role in declared.roles:
        return None
    allowed = ", ".join(sorted(declared.roles)) or "nobody"
    return Violation("log", "role_not_allowed", f"a {who.role} may not submit {event_type} events (allowed: {allowed})")


def _replayed(
    uow: UnitOfWork, lead_id: str | None, key: str, digest: str | None, who: Actor
) -> Applied | ChangeRefused:
    """The caller used this key before: the same request is a duplicate; another one is refused, naming the key
    (and never answered with another lead's result)."""
    used = uow.keys[(who.name, key)]
    other_lead = lead_id is not None and used.lead_id != lead_id
    other_request = who.name != SYSTEM.name and None not in (used.digest, digest) and used.digest != digest
    if other_lead or other_request:
        message = f"idempotency key {key!r} was already used for a different request; use a new key for a new request"
        return ChangeRefused(lead_id, (Violation("idempotency_key", "reused", message),))
    return Applied(used.lead_id, used.seq, None, duplicate=True)


def _digest(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _change_digest(spec: ChangeSpec) -> str:
    """What a change asks for (not its time or note: a retry may differ in those and still be the same change)."""
    log = {"type": spec.log.type, "data": dict(spec.log.data)} if spec.log is not None else None
    return _digest({"lead": spec.lead_id, "status": spec.status, "stage": spec.stage, "owner": spec.owner,
                    "clear_owner": spec.clear_owner, "reason": spec.reason, "fields": dict(spec.fields),
                    "override": spec.override, "log": log})  # fmt: skip


def _creation_digest(fields: Mapping[str, Any], owner: str | None, stage: str | None) -> str:
    return _digest({"fields": {k: v for k, v in fields.items() if v is not None}, "owner": owner, "stage": stage})


def _reserved_field_violations(fields: Mapping[str, Any]) -> list[Violation]:
    """Fields may not take the names the ledger uses to say who did what: an entry's attribution cannot be forged."""
    return [
        Violation(name, "reserved", f"{name!r} is reserved for the ledger's attribution; use another field name")
        for name in fields
        if name in RESERVED_FIELDS
    ]


def _leaves_as_is(change: StatusChange, state: LeadState) -> bool:
    """A change to the status, stage and owner the lead has, setting fields to the values it holds: a no-op."""
    return (
        change.kind == "change"
        and not (change.status_changed or change.stage_changed or change.owner_changed)
        and not any(_differs(state.fields.get(k), v) for k, v in change.fields.items())
    )


def _differs(old: Any, new: Any) -> bool:
    return str(old) != str(new) if old is not None and new is not None else old != new


def log_activity(uow: UnitOfWork, lead_id: str, activity: ActivityIn, at: datetime, actor: str | None,
                 source: str) -> None:  # fmt: skip
    uow.log(lead_id, activity.type, at, activity.data, key=activity.key, actor=actor, source=source)


def state_of(uow: UnitOfWork, lead_id: str) -> LeadState | None:
    """Another lead's state, loaded (and locked) into this unit of work: what a change points at."""
    if lead_id not in uow.leads:
        uow.load([lead_id])
    return uow.states.get(lead_id)


def owner_violation(owner: str | None, uow: UnitOfWork) -> Violation | None:
    """An owner must be an active user."""
    if owner is None:
        return None
    user = uow.user(owner)
    if user is None:
        return Violation("owner", "unknown", f"unknown user {owner!r}")
    if not user.active:
        return Violation("owner", "inactive", f"user {owner!r} is disabled")
    return None


def _needs_history(uow: UnitOfWork, spec: ChangeSpec, state: LeadState) -> bool:
    """Whether a status the change may enter has an entry rule that reads logged activities."""
    model = uow.model
    targets = {spec.status}
    if spec.stage is not None:
        stage = model.stage_by_key.get(spec.stage)
        if stage is not None:
            targets.add(stage.sets_status)
        move = model.backward_moves.get((state.stage, spec.stage))
        if move is not None:
            targets.add(move.sets_status)
    return any((s := model.statuses.get(key)) is not None and s.entry.activity is not None for key in targets if key)


def _keys_for_labels(uow: UnitOfWork, spec: ChangeSpec) -> ChangeSpec:
    """A status or stage named by its label ("Attempting Contact") is that key, wherever a key is taken."""
    status, stage = spec.status, spec.stage
    if status is not None and status not in uow.model.statuses:
        status = uow.model.resolve_status(status) or status
    if stage is not None and stage not in uow.model.stage_by_key:
        stage = uow.model.resolve_stage(stage) or stage
    return spec if (status, stage) == (spec.status, spec.stage) else replace(spec, status=status, stage=stage)
