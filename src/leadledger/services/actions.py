"""The on-enter actions: route a lead, open a task, notify people, queue a webhook or an e-mail.

Each handler takes (unit of work, the action's spec, the action's name, the change that entered the status,
the causation chain) — `automation.ACTION_HANDLERS` says which handles what. Tasks and notifications are
rows of the same transaction; webhooks and e-mails go to the outbox, delivered after commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leadledger.domain.automation import EmailAction, NotifyAction, RouteAction, TaskAction, WebhookAction, render
from leadledger.domain.changes import StatusChange
from leadledger.domain.routing import choose_owner
from leadledger.services import changes
from leadledger.services.lead_tasks import open_while
from leadledger.services.people import SYSTEM
from leadledger.services.unit_of_work import UnitOfWork

LEAD_PAYLOAD_KEYS = ("id", "name", "email", "phone", "company", "source", "campaign", "owner", "status", "stage")


def route(uow: UnitOfWork, spec: RouteAction, name: str, change: StatusChange, causation: tuple[str, ...]) -> None:
    """Give the lead an owner: a fixed user, or one chosen from a pool (the routing rules pick the pool)."""
    lead_id = change.lead_id
    state = uow.states[lead_id]
    if spec.user is not None:
        chosen, why, pool_name = spec.user, "fixed owner", None
        user = uow.user(chosen)
        if user is None or not user.active:
            _routing_failed(uow, lead_id, None, f"owner {chosen!r} is not an active user", name)
            return
    else:
        pool_name = spec.pool or uow.auto.pool_for(uow.context(lead_id))
        pool = uow.auto.pools.get(pool_name or "")
        if pool is None:
            _routing_failed(uow, lead_id, None, "no routing rule matches the lead", name)
            return
        members = uow.session.people_with_roles(pool.roles, team=pool.team, members=pool.members)
        if pool.members:
            members = [m for m in pool.members if m in members]
        exclude = frozenset(uow.previous_owners(lead_id)) if spec.exclude_previous_owners else frozenset()
        choice = choose_owner(
            strategy=pool.strategy,
            members=members,
            weights=pool.weights,
            state=uow.routing_state(pool.name),
            loads=uow.loads(),
            capacity=pool.capacity,
            exclude=exclude,
            seed=uow.auto.routing_seed,
            lead_id=lead_id,
        )
        if choice.owner is None:
            _routing_failed(uow, lead_id, pool.team, f"pool {pool.name}: {choice.why}", name)
            return
        uow.routing[pool.name] = choice.state
        uow.routing_counts[(pool.name, choice.owner)] += 1
        chosen, why = choice.owner, choice.why
    if chosen == state.owner:
        return
    changes.apply(
        uow,
        changes.ChangeSpec(
            lead_id=lead_id,
            owner=chosen,
            at=max(change.at, state.last_at),
            source="automation",
            rule=name,
            note=f"routed: {why}" + (f" (pool {pool_name})" if pool_name else ""),
        ),
        actor=SYSTEM,
        causation=causation,
    )
    uow.counts["routed"] += 1


def _routing_failed(uow: UnitOfWork, lead_id: str, team: str | None, why: str, rule: str) -> None:
    uow.counts["routing_failed"] += 1
    team_row = uow.teams().get(team or "")
    recipients = [team_row.manager] if team_row is not None and team_row.manager else uow.people_with_roles({"ops"})
    for person in recipients:
        uow.notify(person, lead_id, "routing", f"could not route {lead_id}: {why}", rule, email=False)


def task(uow: UnitOfWork, spec: TaskAction, name: str, change: StatusChange, causation: tuple[str, ...]) -> None:
    """A task for the owner (or their manager, or a named user), due in business time on their calendar."""
    lead_id = change.lead_id
    state = uow.states[lead_id]
    if spec.assignee == "owner":
        assignee = state.owner
    elif spec.assignee == "manager":
        assignee = uow.manager_of(state.owner)
    else:
        assignee = spec.assignee
    calendar = uow.model.calendar(uow.calendar_of(state.owner))
    due = calendar.add_business_time(change.at, spec.due) if spec.business_time else change.at + spec.due
    uow.add_task({"lead_id": lead_id, "title": render(spec.title, uow.context(lead_id))[:500], "assignee": assignee,
                  "due_at": due, "rule": name,
                  "open_while": open_while(spec.while_in or (state.status,))})  # fmt: skip


def notify(uow: UnitOfWork, spec: NotifyAction, name: str, change: StatusChange, causation: tuple[str, ...]) -> None:
    """An alert to the owner, their manager, everyone with a role, or named people."""
    lead_id = change.lead_id
    message = render(spec.message, uow.context(lead_id, change=change))
    for person in recipients(uow, spec.to, lead_id):
        uow.notify(person, lead_id, "alert", message, name, email=spec.email)


def recipients(uow: UnitOfWork, targets: Sequence[str], lead_id: str) -> list[str]:
    """owner | manager (their team's, else every manager) | role:<role> | a user name -> people, once each."""
    owner = uow.states[lead_id].owner
    people: list[str] = []
    for target in targets:
        if target == "owner":
            people.append(owner or "")
        elif target == "manager":
            manager = uow.manager_of(owner)
            people.append(manager or "")
            if not manager:
                people.extend(uow.people_with_roles({"manager"}))
        elif target.startswith("role:"):
            people.extend(uow.people_with_roles({target[5:]}))
        else:
            people.append(target)
    return [p for p in dict.fromkeys(people) if p]


def webhook(uow: UnitOfWork, spec: WebhookAction, name: str, change: StatusChange, causation: tuple[str, ...]) -> None:
    """A signed message to a registered endpoint, through the outbox."""
    lead_id = change.lead_id
    if spec.endpoint not in uow.endpoints():
        uow.counts["webhooks_skipped"] += 1  # no such endpoint configured: nothing to deliver to
        return
    payload = {
        "event": spec.event,
        "lead": lead_payload(uow.lead_row(lead_id)),
        "change": change_payload(change),
        "occurred_at": change.at.isoformat(),
    }
    uow.queue("webhook", spec.event, spec.endpoint, payload, lead_id, name)
    uow.counts["webhooks"] += 1


def email(uow: UnitOfWork, spec: EmailAction, name: str, change: StatusChange, causation: tuple[str, ...]) -> None:
    """An e-mail to the lead from a template, unless the lead is suppressed (unsubscribed, bounced)."""
    lead_id = change.lead_id
    state = uow.states[lead_id]
    address = state.fields.get("email")
    if not address or _truthy(state.fields.get("unsubscribed")) or _truthy(state.fields.get("email_bounced")):
        uow.counts["emails_suppressed"] += 1  # seed 004: suppression protects the lead and the sender
        return
    template = uow.auto.templates[spec.template]
    context = uow.context(lead_id, change=change)
    if template.uses("owner", "booking_url") and not context["owner"].get("booking_url"):
        # a "pick a time" e-mail without the link is worse than none: the owner is told what to set instead
        uow.counts["emails_skipped"] += 1
        owner = state.owner
        uow.notify(owner or None, lead_id, "alert",
                   f"the {spec.template} e-mail to {address} was not sent: {owner or 'the owner'} has no booking link "
                   f"(leadledger user set {owner or 'NAME'} --booking-url URL, or one for the team)", name)  # fmt: skip
        return
    payload = {
        "to": address,
        "subject": render(template.subject, context),
        "body": render(template.body, context),
        "template": spec.template,
    }
    uow.queue("email", spec.template, str(address), payload, lead_id, name)
    uow.counts["emails"] += 1


def lead_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    payload = {k: row.get(k) for k in LEAD_PAYLOAD_KEYS}
    payload["fields"] = row.get("fields") or {}
    return payload


def change_payload(change: StatusChange) -> dict[str, Any]:
    return {
        "from_status": change.from_status,
        "to_status": change.to_status,
        "from_stage": change.from_stage,
        "to_stage": change.to_stage,
        "reason": change.reason,
        "actor": change.actor,
        "source": change.source,
        "rule": change.rule,
    }


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")
