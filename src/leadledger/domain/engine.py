"""The transition engine: judges a change against the status model and returns a ledger entry or every violation.

Pure: no I/O, no clock of its own (the caller passes `now`). Change handling (`services.changes`) loads the
lead, calls `change_status` for every change it is asked for, and appends what it returns; the importer
asks it whether a recorded move is one the model allows (history is recorded either way, flagged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from leadledger.domain.changes import (
    Activity,
    Actor,
    ChangeRequest,
    LeadState,
    Refused,
    StatusChange,
    Violation,
)
from leadledger.domain.statusmodel import AUTOMATED_SOURCES, SOURCES, EntryRule, ExitRule, Status, StatusModel

# A change may be stamped a little ahead of the server clock (clients' clocks drift), not more.
FUTURE_TOLERANCE = timedelta(minutes=5)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def check_fields(
    model: StatusModel,
    status: Status,
    current: Mapping[str, Any],
    given: Mapping[str, Any],
    at: datetime,
    violations: list[Violation],
    warnings: list[Violation],
) -> dict[str, Any]:
    """Validate the fields given with a change and the target status's required data; returns normalised values."""
    normalised: dict[str, Any] = {}
    for name, raw in given.items():
        spec = model.fields.get(name)
        if spec is None:
            normalised[name] = raw  # a custom field the model does not type: kept as given
            continue
        if not _present(raw):
            normalised[name] = None
            continue
        value, error = spec.parse(raw)
        if error is not None:
            violations.append(Violation(name, "invalid", f"{spec.label}: {error}"))
            continue
        if spec.after_change and value is not None and _as_datetime(value) <= at:
            violations.append(Violation(name, "invalid", f"{spec.label} must be after the change ({at:%Y-%m-%d})"))
            continue
        normalised[name] = value

    def has(name: str) -> bool:
        return _present(normalised[name]) if name in normalised else _present(current.get(name))

    entry = status.entry
    for name in entry.required:
        if not has(name) and not any(v.field == name for v in violations):
            label = model.fields[name].label if name in model.fields else name
            violations.append(Violation(name, "required", f"{label} is required to enter {status.label}"))
    for group in entry.any_of:
        if not any(has(name) for name in group):
            violations.append(
                Violation("|".join(group), "required", f"one of {', '.join(group)} is required to enter {status.label}")
            )
    for name in entry.recommended:
        if not has(name):
            label = model.fields[name].label if name in model.fields else name
            warnings.append(Violation(name, "recommended", f"{label} should be recorded for {status.label}"))
    return normalised


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    # a date compares as the start of that day in UTC
    return datetime.combine(value, time(), tzinfo=UTC)


def _check_reason(status: Status, reason: str | None, model: StatusModel, violations: list[Violation]) -> None:
    rule = status.entry.reason
    if reason is None or reason == "":
        if rule is not None and rule.required:
            codes = ", ".join(rule.codes)
            violations.append(
                Violation("reason", "required", f"a reason is required to enter {status.label} (one of: {codes})")
            )
        return
    if rule is not None and rule.codes:
        if reason not in rule.codes:
            codes = ", ".join(rule.codes)
            violations.append(
                Violation(
                    "reason", "not_allowed", f"reason {reason!r} is not allowed for {status.label} (one of: {codes})"
                )
            )
    elif reason not in model.reasons:
        violations.append(Violation("reason", "unknown", f"reason {reason!r} is not in the model's reason list"))


def _check_activity(status: Status, activities: Iterable[Activity], at: datetime, violations: list[Violation]) -> None:
    rule = status.entry.activity
    if rule is None:
        return
    earliest = at - rule.within if rule.within is not None else None
    for activity in activities:
        if activity.at > at or (earliest is not None and activity.at < earliest):
            continue
        if any(m.matches(activity.type, activity.data) for m in rule.any_of):
            return
    wanted = " or ".join(m.describe() for m in rule.any_of)
    window = f" in the last {rule.within.days} days" if rule.within is not None and rule.within.days else ""
    violations.append(
        Violation("activity", "required", f"log the interaction first: {status.label} needs {wanted}{window}")
    )


def _check_role_for(
    model: StatusModel, lead: LeadState | None, actor: Actor, source: str, violations: list[Violation]
) -> None:
    """Reps work their own leads; a lead with no owner may be claimed by the rep taking it."""
    if source != "manual" or actor.role != "rep" or lead is None:
        return
    if lead.owner is not None and lead.owner != actor.name:
        violations.append(
            Violation("owner", "not_owner", f"{actor.name} is a rep and does not own this lead (owner: {lead.owner})")
        )


@dataclass(slots=True)
class _Judging:
    """One change being judged: the request, the lead it starts from, where it would leave the lead, and every
    violation and warning found so far. The checks read it and add to it; `change_status` runs them in order."""

    model: StatusModel
    lead: LeadState
    request: ChangeRequest
    now: datetime
    activities: Iterable[Activity]
    importing: bool  # import changes are facts: recorded even when the model forbids them
    target_status: str
    target_stage: str
    owner: str | None
    fields: Mapping[str, Any]
    forced_by_stage: bool = False
    off_model: bool = False
    status_changes: bool = False  # set once the lead's destination is known (after WHERE_CHECKS)
    target: Status | None = None  # the status the lead would be in, likewise
    violations: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)

    def refuse(self, field_name: str, code: str, message: str) -> None:
        self.violations.append(Violation(field_name, code, message))


Check = Callable[[_Judging], None]


def change_status(
    model: StatusModel,
    lead: LeadState,
    request: ChangeRequest,
    *,
    now: datetime,
    activities: Iterable[Activity] = (),
) -> StatusChange | Refused:
    """Judge a status, stage and/or owner change; every violation is reported, not only the first.

    Stage moves go through the same checks: forward-only except the model's listed backward moves,
    and a stage may set the status (promote to SQL -> Working). Import changes are facts: they are
    recorded even when the model forbids the move, flagged `off_model`.

    Three steps, each a list of named checks: the request itself (REQUEST_CHECKS); where the lead would end
    up (WHERE_CHECKS: its status, stage and owner, which stop the judging when a key is unknown); and whether
    the model allows that move and what entering the status requires (MOVE_CHECKS).
    """
    judging = _Judging(model, lead, request, now, activities, importing=request.source == "import",
                       target_status=lead.status, target_stage=lead.stage, owner=lead.owner, fields=request.fields)  # fmt: skip
    for check in REQUEST_CHECKS:
        check(judging)
    for where in WHERE_CHECKS:
        if where(judging) is _STOP:
            return Refused(tuple(judging.violations))
    judging.status_changes = judging.target_status != lead.status
    judging.target = model.statuses.get(judging.target_status)
    for check in MOVE_CHECKS:
        check(judging)
    if judging.violations:
        return Refused(tuple(judging.violations))
    return _recorded(judging)


_STOP = object()  # a WHERE check's answer when a key is unknown: nothing further can be judged


# --- the request ----------------------------------------------------------------------------------------------


def source_known(j: _Judging) -> None:
    """The change says where it comes from: manual, automation, time rule, integration or import."""
    if j.request.source not in SOURCES:
        j.refuse("source", "unknown", f"unknown source {j.request.source!r} (one of: {', '.join(SOURCES)})")


def dated_in_order(j: _Judging) -> None:
    """A change is not dated before the lead's last change (history is appended, never rewritten); an
    import's is, since it records the past."""
    if j.request.at < j.lead.last_at and not j.importing:
        j.refuse("at", "before_last_change",
                 f"the change is dated before the lead's last change ({j.lead.last_at.isoformat()})")  # fmt: skip


def not_in_future(j: _Judging) -> None:
    """A change may be stamped a little ahead of the server clock (FUTURE_TOLERANCE), not more."""
    if j.request.at > j.now + FUTURE_TOLERANCE:
        j.refuse("at", "in_future", "a change cannot be dated in the future")


REQUEST_CHECKS: tuple[Check, ...] = (source_known, dated_in_order, not_in_future)


# --- where the lead ends up -----------------------------------------------------------------------------------


def target_status(j: _Judging) -> object:
    """The status asked for exists."""
    status = j.request.status
    if status is not None and status not in j.model.statuses:
        j.refuse("status", "unknown", j.model.unknown_status(status))
        return _STOP
    if status is not None:
        j.target_status = status
    return None


def target_stage(j: _Judging) -> object:
    """The stage asked for exists; stages move forward only, except the model's backward moves, which set
    their status; a stage may set the status (promote to SQL -> Working); a status may pull the stage
    forward; only the roles a stage names move leads into it."""
    model, lead, request = j.model, j.lead, j.request
    if request.stage is not None and request.stage != lead.stage:
        stage = model.stage_by_key.get(request.stage)
        if stage is None:
            j.refuse("stage", "unknown", model.unknown_stage(request.stage))
            return _STOP
        j.target_stage = stage.key
        if stage.rank < model.stage_rank(lead.stage):
            move = model.backward_moves.get((lead.stage, stage.key))
            if move is None:
                if not j.importing:
                    j.refuse("stage", "backward",
                             f"lifecycle stages move forward only: {lead.stage} -> {stage.key} is not an allowed step back")  # fmt: skip
            elif request.status is None:
                j.target_status, j.forced_by_stage = move.sets_status, True
            elif request.status != move.sets_status and not j.importing:
                j.refuse(
                    "status", "forced_by_stage", f"moving back to {stage.label} sets the status to {move.sets_status}"
                )
        elif stage.sets_status is not None and request.status is None and not j.importing:
            if not _already_beyond(model, lead.status, stage.sets_status, stage.key):
                j.target_status, j.forced_by_stage = stage.sets_status, True
        if request.source in ("manual", "integration") and request.actor.role not in stage.roles:
            j.refuse("stage", "role_not_allowed", f"a {request.actor.role} may not move leads to {stage.label}")
    elif request.status is not None and not j.importing:
        implied = model.status_sets_stage.get(request.status)
        if implied is not None and model.stage_rank(implied) > model.stage_rank(lead.stage):
            j.target_stage = implied
    return None


def target_owner(j: _Judging) -> object:
    """Assigning an owner may set the status (New -> Assigned); a rep takes leads for themselves only, and an
    integration assigns nobody (routing does)."""
    lead, request, actor = j.lead, j.request, j.request.actor
    if request.clear_owner:
        j.owner = None
    elif request.owner is not None:
        j.owner = request.owner
        if request.status is None and request.stage is None and j.owner != lead.owner:
            assigned = j.model.assignment_sets_status.get(lead.status)
            if assigned is not None and not j.importing:
                j.target_status, j.forced_by_stage = assigned, True
    if j.owner != lead.owner and request.source == "manual" and actor.role == "rep" and j.owner != actor.name:
        j.refuse("owner", "not_allowed", "a rep may take a lead for themselves, not assign it to others")
    if j.owner != lead.owner and actor.role == "integration" and not j.importing:
        j.refuse("owner", "not_allowed", "an integration may not assign owners: routing does")
    return None


WHERE_CHECKS: tuple[Callable[[_Judging], object], ...] = (target_status, target_stage, target_owner)


# --- is the move allowed, and what entering the status requires -----------------------------------------------


def not_locked(j: _Judging) -> None:
    """A locked status (converted) is never left, nor its stage moved back; an import records it off-model."""
    model, lead = j.model, j.lead
    current = model.statuses.get(lead.status)
    backwards = j.target_stage != lead.stage and model.stage_rank(j.target_stage) < model.stage_rank(lead.stage)
    if current is not None and current.locked and (j.status_changes or backwards):
        if j.importing:
            j.off_model = True
        else:
            j.refuse("status", "locked", f"{current.label} is locked: the lead cannot be changed back")


def transition_allowed(j: _Judging) -> None:
    """The model has the transition; a person's role may make it by hand; automation makes only automatic ones."""
    model, lead, request, target = j.model, j.lead, j.request, j.target
    if not j.status_changes or target is None:
        return
    rule = model.transition(lead.status, j.target_status)
    if rule is None:
        if j.importing:
            j.off_model = True
        else:
            why = f" (set by the stage change to {j.target_stage})" if j.forced_by_stage else ""
            ways = _ways_on(model, lead, j.target_status, {**lead.fields, **request.fields}, request.actor,
                            request.source)  # fmt: skip
            j.refuse("status", "transition_not_allowed",
                     f"{_label(model, lead.status)} -> {target.label} is not an allowed transition{why}{ways}")  # fmt: skip
    elif not j.importing and not j.forced_by_stage:
        actor = request.actor
        if request.source == "manual" and actor.role not in rule.roles:
            allowed = ", ".join(sorted(rule.roles)) or "nobody"
            j.refuse("status", "role_not_allowed",
                     f"a {actor.role} may not move a lead to {target.label} (allowed: {allowed})")  # fmt: skip
        elif request.source in AUTOMATED_SOURCES and not rule.automatic:
            j.refuse("status", "needs_human",
                     f"{_label(model, lead.status)} -> {target.label} needs human judgment, not automation")  # fmt: skip


def stage_compatible(j: _Judging) -> None:
    """The status is valid in the stage the lead ends up in; an import records it off-model."""
    target = j.target
    if target is not None and j.target_stage not in target.stages:
        if j.importing:
            j.off_model = True
        else:
            j.refuse("stage", "incompatible",
                     f"status {target.label} is not valid in stage {j.model.stage_by_key[j.target_stage].label}"
                     f" (valid in: {', '.join(sorted(target.stages))})")  # fmt: skip


def reps_own_leads(j: _Judging) -> None:
    """Reps work their own leads (and may claim an unowned one)."""
    _check_role_for(j.model, j.lead, j.request.actor, j.request.source, j.violations)


def entry_requirements(j: _Judging) -> None:
    """Entering a status needs its data (fields, a reason from its list, a logged interaction); fields given
    without a status change are checked by type, and a reason given against the current status's list."""
    target = j.target
    if target is None:
        return
    model, lead, request = j.model, j.lead, j.request
    if j.status_changes and not j.importing:
        j.fields = check_fields(model, target, lead.fields, request.fields, request.at, j.violations, j.warnings)
        _check_reason(target, request.reason, model, j.violations)
        _check_activity(target, j.activities, request.at, j.violations)
    elif request.fields:
        j.fields = check_fields(model, _NO_ENTRY, lead.fields, request.fields, request.at, j.violations, j.warnings)
        if request.reason and not j.importing:
            _check_reason(target, request.reason, model, j.violations)
    elif request.reason and not j.importing:
        _check_reason(target, request.reason, model, j.violations)


MOVE_CHECKS: tuple[Check, ...] = (not_locked, transition_allowed, stage_compatible, reps_own_leads, entry_requirements)


def _recorded(j: _Judging) -> StatusChange:
    """The accepted change as the ledger records it; a manual move that undoes automation's last move (or says
    it overrides it) is marked as an override of that entry."""
    lead, request = j.lead, j.request
    override_of_seq = override_rule = None
    auto = lead.last_automated
    if request.source == "manual" and j.status_changes and auto is not None and auto.to_status == lead.status:
        if request.override or _reverses(j.model, auto.from_status, auto.to_status, j.target_status):
            override_of_seq, override_rule = auto.seq, auto.rule
    return StatusChange(
        lead_id=lead.id,
        at=request.at,
        actor=request.actor.name,
        actor_role=request.actor.role,
        source=request.source,
        from_status=lead.status,
        to_status=j.target_status,
        from_stage=lead.stage,
        to_stage=j.target_stage,
        from_owner=lead.owner,
        to_owner=j.owner,
        reason=request.reason or None,
        note=request.note,
        fields=j.fields,
        rule=request.rule,
        override_of_seq=override_of_seq,
        override_rule=override_rule,
        idempotency_key=request.idempotency_key,
        off_model=j.off_model,
        warnings=tuple(j.warnings),
    )


# Fields given without a status change are validated by type only: no status's entry rule applies.
_NO_ENTRY = Status(
    key="",
    label="",
    definition="",
    owner_role="",
    category="",
    stages=frozenset(),
    entry=EntryRule(),
    exit=ExitRule(),
    reporting_use="",
)


def _ways_on(
    model: StatusModel, lead: LeadState, target: str, fields: Mapping[str, Any], actor: Actor, source: str
) -> str:
    """What a refused transition's message adds: where the lead may go from here, and, when the target is one
    step further, the status it is reached through and the data that step still needs."""
    automated = source in AUTOMATED_SOURCES

    def may(from_status: str, to_status: str) -> bool:
        rule = model.transition(from_status, to_status)
        if rule is None:
            return False
        return rule.automatic if automated else source == "import" or actor.role in rule.roles

    allowed = [k for k in model.allowed_targets(lead.status) if may(lead.status, k)]
    text = f"; from {_label(model, lead.status)} it can go to {', '.join(allowed) or 'nothing'}"
    if automated:
        text = f"; automation may move it from {_label(model, lead.status)} to {', '.join(allowed) or 'nothing'}"
    paths = []
    for via in model.allowed_targets(lead.status):
        if model.transition(via, target) is None:
            continue
        entry = model.statuses[via].entry
        missing = [name for name in entry.required if fields.get(name) in (None, "")]
        needs = f" (missing for {_label(model, via)}: {', '.join(missing)})" if missing else ""
        who = "" if may(lead.status, via) else " - a person's decision, not automation's" if automated else ""
        paths.append(f"{via}{needs}{who}")
    if paths:
        text += f"; {_label(model, target)} is reached through {' or '.join(paths)}"
    return text


def _label(model: StatusModel, key: str) -> str:
    status = model.statuses.get(key)
    return status.label if status else key


def _already_beyond(model: StatusModel, current: str, wanted: str, stage: str) -> bool:
    """A stage that sets a status leaves alone a lead already further down the forward path (Qualified stays Qualified)."""
    status = model.statuses.get(current)
    goal = model.statuses.get(wanted)
    if status is None or goal is None or status.rank is None or goal.rank is None:
        return False
    return status.rank >= goal.rank and stage in status.stages


def _reverses(model: StatusModel, auto_from: str | None, auto_to: str, target: str) -> bool:
    """A manual change undoes an automated one when it goes back where the rule came from, or back down the path."""
    if auto_from is not None and target == auto_from:
        return True
    rank_auto = model.statuses[auto_to].rank if auto_to in model.statuses else None
    rank_target = model.statuses[target].rank
    return rank_auto is not None and rank_target is not None and rank_target < rank_auto


def new_lead(
    model: StatusModel,
    *,
    lead_id: str,
    fields: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    now: datetime,
    source: str = "manual",
    status: str | None = None,
    stage: str | None = None,
    owner: str | None = None,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> StatusChange | Refused:
    """The ledger's first entry for a lead: New (or the status an import says), with the data New requires."""
    violations: list[Violation] = []
    warnings: list[Violation] = []
    importing = source == "import"
    status_key = status or model.initial_status
    stage_key = stage or model.initial_stage
    target = model.statuses.get(status_key)
    if target is None:
        return Refused((Violation("status", "unknown", model.unknown_status(status_key)),))
    if stage_key not in model.stage_by_key:
        return Refused((Violation("stage", "unknown", model.unknown_stage(stage_key)),))
    if at > now + FUTURE_TOLERANCE:
        violations.append(Violation("at", "in_future", "a lead cannot be created in the future"))
    off_model = False
    if status_key != model.initial_status and not importing:
        violations.append(
            Violation("status", "not_initial", f"a new lead starts as {_label(model, model.initial_status)}")
        )
    if stage_key not in target.stages:
        if importing:
            off_model = True
        else:
            violations.append(
                Violation("stage", "incompatible", f"status {target.label} is not valid in stage {stage_key}")
            )
    if importing:
        normalised = dict(fields)
    else:
        normalised = check_fields(model, target, {}, fields, at, violations, warnings)
        _check_reason(target, reason, model, violations)
    if violations:
        return Refused(tuple(violations))
    if owner is not None and not importing:
        assigned = model.assignment_sets_status.get(status_key)
        if assigned is not None:
            status_key = assigned
    return StatusChange(
        lead_id=lead_id,
        at=at,
        actor=actor.name,
        actor_role=actor.role,
        source=source,
        from_status=None,
        to_status=status_key,
        from_stage=None,
        to_stage=stage_key,
        from_owner=None,
        to_owner=owner,
        reason=reason,
        fields=normalised,
        idempotency_key=idempotency_key,
        off_model=off_model,
        kind="created",
        warnings=tuple(warnings),
    )
