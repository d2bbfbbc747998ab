"""Activity events in: store each one (the activity log), then let the model's rules move the lead.

Events carry an idempotency key (`id`): replaying a batch changes nothing. A bad event is reported with
its line number and the good ones are applied; each chunk of events is one transaction.

An event is recorded as its sender's: the caller is the activity's actor, and every change a rule makes
because of it names the caller and the event (`triggered_by`, `trigger_event`). Nothing in the event itself
can say who did it: an `actor` key, or an actor-like key in `data`, is refused.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadledger.domain.automation import Automation
from leadledger.domain.engine import FUTURE_TOLERANCE
from leadledger.domain.moments import parse_moment
from leadledger.services import automation, changes, telemetry
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, PendingApproval
from leadledger.services.duplicates import existing_contact
from leadledger.services.errors import ChangeRefused, Forbidden
from leadledger.services.leads import new_lead_id
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work

CHUNK = 2000
MAX_KEY = 200
LEAD_FIELDS_FROM_FORMS = ("name", "email", "phone", "company", "title", "source", "campaign", "territory")
# Keys that would read as "who did this" in an event's data: the ledger takes that from the authenticated caller.
ACTOR_LIKE_KEYS = frozenset(
    {"actor", "actor_name", "actor_role", "user", "username", "by", "performed_by", "submitted_by", "created_by",
     "triggered_by", "triggered_by_role", "approved_by", "caused_by"}
)  # fmt: skip


def actor_like_keys(data: Mapping[str, Any]) -> list[str]:
    """The keys of `data` that claim an identity (compared without regard to case, `-` or spaces)."""
    return [key for key in data if key.strip().lower().replace("-", "_").replace(" ", "_") in ACTOR_LIKE_KEYS]


@dataclass(frozen=True)
class Event:
    line: int
    id: str
    type: str
    lead: str | None
    at: datetime
    data: Mapping[str, Any]


@dataclass
class EventSummary:
    """What applying a batch of events did; `as_dict` is the `--format json` summary."""

    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "status_changes": self.counts["rule_changes"],
            "leads_created": self.counts["leads_created"],
            "tasks": self.counts["tasks"],
            "notifications": self.counts["notifications"],
            "webhooks": self.counts["webhooks"],
            "webhooks_skipped": self.counts["webhooks_skipped"],  # no active endpoint of that name: not sent
            "emails": self.counts["emails"],
            "routed": self.counts["routed"],
            "errors": self.errors,
            "refused": self.refused,
            "approvals": self.approvals,
        }


def parse_event(raw: str | Mapping[str, Any], line: int, auto: Automation, now: datetime) -> Event:
    """Validate one event; raises ValueError with a sentence naming the field."""
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise ValueError("an event is a JSON object")
    unknown = set(data) - {"id", "type", "lead", "at", "data"}
    if unknown:
        who = " (who sent an event is the authenticated caller)" if "actor" in unknown else ""
        raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}{who}")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_KEY:
        raise ValueError(f"id: a non-empty string of at most {MAX_KEY} characters is required")
    kind = data.get("type")
    event_type = auto.event_type(kind) if isinstance(kind, str) else None
    if event_type is None or not isinstance(kind, str):
        known = ", ".join(sorted(auto.event_types))
        raise ValueError(f"type: unknown event type {kind!r} (one of: {known})")
    payload = data.get("data") or {}
    if not isinstance(payload, dict):
        raise ValueError("data: must be a JSON object")
    claimed = actor_like_keys(payload)
    if claimed:
        raise ValueError(
            f"data.{claimed[0]}: an event cannot say who did it; it is recorded as the authenticated caller's"
        )
    problems = event_type.check(payload)
    if problems:
        raise ValueError("; ".join(problems))
    at_text = data.get("at")
    if not isinstance(at_text, str):
        raise ValueError("at: an ISO 8601 time is required")
    try:
        at = parse_moment(at_text)
    except ValueError as exc:
        raise ValueError(f"at: {exc}") from None
    if at > now + FUTURE_TOLERANCE:
        raise ValueError("at: the event is dated in the future")
    lead = data.get("lead")
    if lead is not None and (not isinstance(lead, str) or not lead.strip()):
        raise ValueError("lead: must be a lead id")
    if lead is None and not (kind == "form_submitted" and payload.get("email")):
        raise ValueError("lead: required (a form_submitted event may give data.email instead)")
    return Event(line, event_id.strip(), kind, lead, at.astimezone(UTC), payload)


def apply_events(
    app: App,
    lines: Iterable[str | Mapping[str, Any]],
    *,
    actor: str,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
) -> EventSummary:
    """Apply events (JSON lines or dicts) in order; bad ones are reported by line number, good ones applied."""
    summary = EventSummary()
    auto = app.loaded_model().model.automation
    pending: list[tuple[int, str | Mapping[str, Any]]] = []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, str) and not raw.strip():
            continue
        pending.append((number, raw))
        if len(pending) >= chunk:
            _apply_chunk(app, pending, actor, auto, summary)
            if progress:
                progress(len(pending))
            pending = []
    if pending:
        _apply_chunk(app, pending, actor, auto, summary)
        if progress:
            progress(len(pending))
    telemetry.observe_events(summary.applied, summary.duplicates, summary.rejected, summary.counts["rule_changes"],
                             len(summary.refused), len(summary.approvals))  # fmt: skip
    return summary


def _apply_chunk(
    app: App, raws: list[tuple[int, str | Mapping[str, Any]]], actor: str, auto: Automation, summary: EventSummary
) -> None:
    now = app.clock.now()
    events: list[Event] = []
    for number, raw in raws:
        try:
            events.append(parse_event(raw, number, auto, now))
        except ValueError as exc:
            summary.rejected += 1
            summary.errors.append({"line": number, "error": str(exc)})

    def work(uow: UnitOfWork) -> EventSummary:
        local = EventSummary()
        source = "integration" if uow.who.role == "integration" else "manual"
        for event in events:  # who may send each type is the model's: refuse the request before writing anything
            not_theirs = changes.submit_violation(uow, event.type)
            if not_theirs is not None:
                raise Forbidden(f"event {event.id!r} (line {event.line}): {not_theirs.message}")
        uow.load(e.lead for e in events if e.lead)
        uow.load_keys([], [e.id for e in events])
        for event in events:
            lead_id = event.lead or _lead_for_form(uow, event, local)
            if lead_id is None:
                continue
            if lead_id not in uow.states:
                local.rejected += 1
                local.errors.append({"line": event.line, "error": f"lead: no lead {lead_id!r}"})
                continue
            activity = ActivityIn(event.type, event.at, event.data, key=event.id)
            if not changes.log_event(uow, lead_id, activity, event.at, uow.who.name, source):
                local.duplicates += 1
                continue
            local.applied += 1
            context = {**event.data, "type": event.type, "id": event.id, "at": event.at.isoformat()}
            for rule, outcome in automation.run_event_rules(uow, lead_id, event.type, context, event.at, event.id):
                if isinstance(outcome, ChangeRefused):
                    local.refused.append(
                        {
                            "line": event.line,
                            "lead": lead_id,
                            "rule": rule,
                            "violations": [v.as_dict() for v in outcome.violations],
                        }
                    )
                elif isinstance(outcome, PendingApproval):
                    local.approvals.append(
                        {"line": event.line, "lead": lead_id, "rule": rule, "approval": outcome.approval_id}
                    )
        local.counts.update(uow.counts)
        return local

    result = in_unit_of_work(app, actor, work)
    summary.applied += result.applied
    summary.duplicates += result.duplicates
    summary.rejected += result.rejected
    summary.errors.extend(result.errors)
    summary.refused.extend(result.refused)
    summary.approvals.extend(result.approvals)
    summary.counts.update(result.counts)
    summary.errors.sort(key=lambda e: e["line"])


def _lead_for_form(uow: UnitOfWork, event: Event, local: EventSummary) -> str | None:
    """A form from an unknown visitor creates the lead (New, then routed); a known mailbox finds its lead (the
    same person however the address is written: case, dots and +tags where the provider ignores them; the
    lead a Duplicate points to)."""
    email = str(event.data.get("email", "")).strip()
    found = existing_contact(uow, {"email": email})
    if found is not None:
        uow.load([found.lead_id])
        return found.lead_id
    fields = {key: event.data.get(key) for key in LEAD_FIELDS_FROM_FORMS if event.data.get(key) not in (None, "")}
    lead_id = new_lead_id(event.at)
    created = changes.create(
        uow,
        lead_id=lead_id,
        fields=fields,
        owner=None,
        stage=None,
        at=event.at,
        source="manual",  # recorded as `integration` when an integration sent the form (changes.create)
        idempotency_key=f"{event.id}:create",
    )
    if isinstance(created, ChangeRefused):
        local.rejected += 1
        problems = "; ".join(f"{v.field}: {v.message}" for v in created.violations)
        local.errors.append({"line": event.line, "error": f"cannot create the lead from the form: {problems}"})
        return None
    local.counts["leads_created"] += 1
    return created.lead_id
