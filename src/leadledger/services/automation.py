"""Automation: what a recorded change and an arriving event set off, by the model's rules.

After a status change: the new status's on-enter actions, in model order, each through the handler the
`ACTION_HANDLERS` table names for its kind (grep the table to find every side effect), then the rules that
react to `status_entered`. When an event arrives: the event rules it triggers. Every change a rule asks for
goes through `changes.apply` like any other, carrying the chain of rules that caused it, so a rule never
reacts to its own output and the chain stops at the model's `max_depth`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from leadledger.domain.automation import (
    STATUS_ENTERED,
    EmailAction,
    EventRule,
    NotifyAction,
    RouteAction,
    TaskAction,
    WebhookAction,
    field_value,
)
from leadledger.domain.changes import StatusChange
from leadledger.services import actions, changes
from leadledger.services.errors import ChangeRefused
from leadledger.services.people import SYSTEM
from leadledger.services.unit_of_work import UnitOfWork

ActionHandler = Callable[[UnitOfWork, Any, str, StatusChange, tuple[str, ...]], None]

# Who carries out each kind of on-enter action: (unit of work, the action's spec, its name, the change that
# entered the status, the causation chain including the action).
ACTION_HANDLERS: dict[type, ActionHandler] = {
    RouteAction: actions.route,
    TaskAction: actions.task,
    NotifyAction: actions.notify,
    WebhookAction: actions.webhook,
    EmailAction: actions.email,
}


def after_change(uow: UnitOfWork, change: StatusChange, causation: tuple[str, ...]) -> None:
    """Run the on-enter actions of the status a change entered, then the rules reacting to `status_entered`."""
    auto = uow.auto
    if not change.status_changed or len(causation) >= auto.max_depth:
        return
    lead_id = change.lead_id
    on_enter = auto.on_enter.get(change.to_status, ())
    if not on_enter and not uow.status_entered_rules:
        return
    context = uow.context(lead_id, change=change)
    for action in on_enter:
        state = uow.states[lead_id]
        if state.status != change.to_status:
            break  # an earlier action (or a rule it set off) already moved the lead on
        if action.name in causation or not action.when(context):
            continue
        ACTION_HANDLERS[type(action.spec)](uow, action.spec, action.name, change, (*causation, action.name))
        if uow.states[lead_id] is not state:
            context = uow.context(lead_id, change=change)  # the action moved the lead: guards read it anew
    if not uow.status_entered_rules:
        return
    event = {
        "type": STATUS_ENTERED,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "reason": change.reason,
        "rule": change.rule,
        "at": change.at,
    }
    for rule in auto.rules_for(STATUS_ENTERED, {**context, "event": event}, causation):
        apply_rule(uow, rule, lead_id, event, change.at, None, causation)


def run_event_rules(
    uow: UnitOfWork, lead_id: str, event_type: str, event: Mapping[str, Any], at: datetime, key: str | None
) -> list[tuple[str, changes.Outcome]]:
    """Apply every rule the event triggers, each judged against the state the previous one left.

    Returns (rule name, outcome) for each rule that asked for a change.
    """
    outcomes: list[tuple[str, changes.Outcome]] = []
    if not uow.automation:
        return outcomes
    with uow.triggered_by(uow.who, event=key):  # every change below names the event's sender and the event
        for rule in uow.auto.rules_for(event_type, uow.context(lead_id, event=event)):
            outcome = apply_rule(uow, rule, lead_id, event, at, key, ())
            if outcome is not None:
                outcomes.append((rule.name, outcome))
    return outcomes


def apply_rule(
    uow: UnitOfWork,
    rule: EventRule,
    lead_id: str,
    event: Mapping[str, Any],
    at: datetime,
    key: str | None,
    causation: tuple[str, ...],
) -> changes.Outcome | None:
    """The change a rule asks for, when its guard holds and it changes anything; None otherwise."""
    state = uow.states[lead_id]
    context = uow.context(lead_id, event=event)
    if not rule.when(context):
        return None
    fields = {name: field_value(raw, context, at) for name, raw in rule.fields}
    status = rule.set_status if rule.set_status != state.status else None
    stage = rule.set_stage if rule.set_stage != state.stage else None
    fields = {k: v for k, v in fields.items() if _changed(state.fields.get(k), v)}
    if status is None and stage is None and not fields:
        return None
    spec = changes.ChangeSpec(
        lead_id=lead_id,
        status=status,
        stage=stage,
        reason=rule.reason if status else None,
        fields=fields,
        at=max(at, state.last_at),
        source="automation",
        rule=rule.name,  # no key of its own: the event's id (its sender's) already makes it happen once
    )
    outcome = changes.apply(uow, spec, actor=SYSTEM, causation=(*causation, rule.name))
    if isinstance(outcome, ChangeRefused):
        uow.refusals.append((lead_id, rule.name, outcome.violations))
        uow.counts["rule_refused"] += 1
    elif isinstance(outcome, changes.Applied) and not outcome.duplicate:
        uow.counts["rule_changes"] += 1
    return outcome


def _changed(old: Any, new: Any) -> bool:
    return str(old) != str(new) if old is not None and new is not None else old != new
