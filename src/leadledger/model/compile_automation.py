"""Compile the model's rules: event rules, on-enter actions, routing, approvals, SLAs, time rules, segments.

Every reference is checked against the statuses, stages, reasons, fields and roles the core compile produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from leadledger.domain.automation import (
    BUILTIN_EVENT_ROLES,
    BUILTIN_EVENT_TYPES,
    DEFAULT_EVENT_ROLES,
    REQUIRED_EVENT_DATA,
    STATUS_ENTERED,
    Action,
    ActionSpec,
    ApprovalRule,
    Automation,
    EmailAction,
    EventRule,
    EventType,
    NotifyAction,
    Pool,
    RouteAction,
    RoutingRule,
    TaskAction,
    Template,
    WebhookAction,
)
from leadledger.domain.conditions import ALWAYS, Condition, ConditionError, compile_condition
from leadledger.domain.durations import parse_duration
from leadledger.domain.segments import (
    ATTRIBUTES,
    BOOL_OPS,
    LEDGER_META_KEYS,
    NUMBER_OPS,
    Segment,
    SegmentWebhook,
    condition_attributes,
)
from leadledger.domain.statusmodel import (
    FieldSpec,
    Reason,
    Status,
)
from leadledger.domain.timerules import Duration, SlaSpec, TimeAction, TimeRule
from leadledger.model.schema import ModelFile
from leadledger.model.source import IssueLog, Path_


class AutomationCompiler:
    """The rules of a validated model file -> domain objects, reporting problems to the shared `IssueLog`."""

    def __init__(self, source: ModelFile, log: IssueLog):
        self.src = source
        self.log = log

    def error(self, path: Path_, message: str) -> None:
        self.log.error(path, message)

    def _check_statuses(self, keys: list[str], statuses: dict[str, Status], path: Path_) -> frozenset[str]:
        for j, key in enumerate(keys):
            if key not in statuses:
                self.error((*path, j), f"unknown status {key!r}")
        return frozenset(keys)

    def slas(self, statuses: dict[str, Status]) -> tuple[SlaSpec, ...]:
        specs = []
        names: set[str] = set()
        for i, sla in enumerate(self.src.slas):
            path: Path_ = ("slas", i)
            if sla.name in names:
                self.error((*path, "name"), f"SLA {sla.name!r} is declared twice")
            names.add(sla.name)
            specs.append(
                SlaSpec(
                    name=sla.name,
                    statuses=self._check_statuses(sla.statuses, statuses, (*path, "statuses")),
                    target=Duration.parse(sla.target, sla.business_time),
                    kind=sla.kind,
                    met_on=self._check_statuses(sla.met_on, statuses, (*path, "met_on")),
                    continues_in=self._check_statuses(sla.continues_in, statuses, (*path, "continues_in")),
                    activity_types=frozenset(sla.activity_types),
                    description=sla.description,
                )
            )
        return tuple(specs)

    def time_rules(
        self, statuses: dict[str, Status], reasons: dict[str, Reason], fields: dict[str, FieldSpec], roles: set[str]
    ) -> tuple[TimeRule, ...]:
        rules = []
        names = {r.name for r in self.src.rules}
        for i, rule in enumerate(self.src.time_rules):
            path: Path_ = ("time_rules", i)
            if rule.name in names:
                self.error((*path, "name"), f"rule name {rule.name!r} is used twice")
            names.add(rule.name)
            kinds = [k for k in ("notify", "escalate", "task", "move") if getattr(rule.then, k) is not None]
            if len(kinds) != 1:
                self.error((*path, "then"), "then: is exactly one of notify, escalate, task, move")
                continue
            kind = kinds[0]
            if kind in ("notify", "escalate"):
                spec = getattr(rule.then, kind)
                to = (spec.to,) if isinstance(spec.to, str) else tuple(spec.to)
                action = TimeAction(kind, to=to, message=spec.message)
            elif kind == "task":
                task = rule.then.task
                assert task is not None
                action = TimeAction(kind, to=(task.assignee,), message=task.title, due=parse_duration(task.due))
            else:
                move = rule.then.move or {}
                target = move.get("status")
                if target not in statuses:
                    self.error((*path, "then", "move", "status"), f"unknown status {target!r}")
                if move.get("reason") is not None and move["reason"] not in reasons:
                    self.error((*path, "then", "move", "reason"), f"unknown reason {move['reason']!r}")
                unknown = set(move) - {"status", "reason"}
                if unknown:
                    self.error((*path, "then", "move"), f"unknown key(s): {', '.join(sorted(unknown))}")
                action = TimeAction(kind, status=target, reason=move.get("reason"))
            if rule.after is None and rule.min_attempts is None and rule.date_field is None and rule.group_by is None:
                self.error(path, "a time rule needs after:, min_attempts:, date_field: or group_by:")
            if rule.date_field is not None and (
                rule.date_field not in fields or fields[rule.date_field].type != "date"
            ):
                self.error((*path, "date_field"), f"{rule.date_field!r} is not a date field of the model")
            rules.append(
                TimeRule(
                    name=rule.name,
                    statuses=self._check_statuses(rule.statuses, statuses, (*path, "statuses")),
                    action=action,
                    after=Duration.parse(rule.after, rule.business_time) if rule.after is not None else None,
                    since=rule.since,
                    min_attempts=rule.min_attempts,
                    attempt_types=frozenset(rule.attempt_types),
                    date_field=rule.date_field,
                    group_by=rule.group_by,
                    min_group=rule.min_group,
                    description=rule.description,
                )
            )
        return tuple(rules)

    def segments(
        self,
        statuses: dict[str, Status],
        stage_keys: set[str],
        reasons: dict[str, Reason],
        fields: dict[str, FieldSpec],
    ) -> dict[str, Segment]:
        out: dict[str, Segment] = {}
        paths: dict[str, Path_] = {}
        known = {s.key: s.kind for s in self.src.segments}
        for i, spec in enumerate(self.src.segments):
            path: Path_ = ("segments", i)
            if spec.key in out:
                self.error((*path, "key"), f"segment {spec.key!r} is declared twice")
                continue
            if spec.when is None and not spec.include:
                self.error(path, "a segment needs when: (a condition) or include: (other segments)")
            for group in ("include", "exclude"):
                for j, other in enumerate(getattr(spec, group)):
                    if other not in known:
                        self.error((*path, group, j), f"unknown segment {other!r}")
                    elif other == spec.key:
                        self.error((*path, group, j), "a segment cannot include or exclude itself")
                    elif spec.kind == "suppression" and known[other] != "suppression":
                        self.error(
                            (*path, group, j),
                            f"a suppression segment may only combine suppression segments; {other!r} is an inclusion segment",
                        )
            when = None
            if spec.when is not None:
                when = self._condition(spec.when, (*path, "when"))
                self._check_segment_tests(spec.when, (*path, "when"), statuses, stage_keys, reasons, fields)
            webhook = None
            if spec.webhook is not None:
                webhook = SegmentWebhook(spec.webhook.endpoint, spec.webhook.on_enter, spec.webhook.on_leave)
            out[spec.key] = Segment(
                key=spec.key,
                label=spec.label,
                kind=spec.kind,
                description=spec.description,
                when=when,
                include=tuple(spec.include),
                exclude=tuple(spec.exclude),
                webhook=webhook,
                attributes=frozenset(condition_attributes(spec.when)),
            )
            paths[spec.key] = path
        # segments combine other segments: the graph must have no cycle
        state: dict[str, int] = {}

        def visit(key: str, trail: tuple[str, ...]) -> None:
            if state.get(key) == 2 or key not in out:
                return
            if state.get(key) == 1:
                cycle = " -> ".join((*trail[trail.index(key) :], key))
                self.error(paths[key], f"segments include or exclude each other in a cycle: {cycle}")
                return
            state[key] = 1
            for other in (*out[key].include, *out[key].exclude):
                visit(other, (*trail, key))
            state[key] = 2

        for key in out:
            visit(key, ())
        return out

    def _check_segment_tests(
        self,
        data: Any,
        path: Path_,
        statuses: dict[str, Status],
        stage_keys: set[str],
        reasons: dict[str, Reason],
        fields: dict[str, FieldSpec],
    ) -> None:
        """What a segment test reads must exist, and its operator and value must suit the attribute's type."""
        if not isinstance(data, Mapping):
            return
        for key in ("all", "any"):
            for j, item in enumerate(data.get(key) or ()):
                self._check_segment_tests(item, (*path, key, j), statuses, stage_keys, reasons, fields)
        if "not" in data:
            self._check_segment_tests(data["not"], (*path, "not"), statuses, stage_keys, reasons, fields)
        attr = data.get("attr")
        if not isinstance(attr, str):
            return
        scope, _, name = attr.partition(".")
        if scope != "lead":
            self.error((*path, "attr"), f"a segment reads the lead only: write lead.<attribute>, not {attr!r}")
            return
        kind = segment_attribute_type(name, fields)
        if kind is None:
            self.error(
                (*path, "attr"),
                f"unknown attribute {attr!r}: one of {', '.join('lead.' + a for a in ATTRIBUTES)}, or lead.<field>",
            )
            return
        op = data.get("op", "eq")
        value = data.get("value")
        values = value if isinstance(value, list) else [value]
        if kind == "number":
            if op not in NUMBER_OPS:
                self.error((*path, "op"), f"{attr} is a number: use eq, ne, gt, gte, lt, lte, exists or missing")
            elif op not in ("exists", "missing") and not _is_number(value):
                self.error((*path, "value"), f"{attr} is a number: compare it with a number, not {value!r}")
        elif kind == "bool":
            if op not in BOOL_OPS:
                self.error((*path, "op"), f"{attr} is yes/no: use eq, ne, exists or missing")
            elif op not in ("exists", "missing") and str(value).lower() not in ("true", "false"):
                self.error((*path, "value"), f"{attr} is yes/no: compare it with true or false, not {value!r}")
        elif op in ("eq", "ne", "in", "not_in") and kind in ("status", "stage", "reason"):
            catalogue = {"status": statuses, "stage": stage_keys, "reason": reasons}[kind]
            for item in values:
                if item is not None and str(item) not in catalogue:
                    self.error((*path, "value"), f"unknown {kind} {item!r}")
                elif name == "primary_status" and item is not None and statuses[str(item)].parent is not None:
                    self.error(
                        (*path, "value"),
                        f"{item!r} is a sub-status: lead.primary_status is never one (use lead.status)",
                    )

    def _condition(self, data: Any, path: Path_) -> Condition:
        try:
            return compile_condition(data)
        except ConditionError as exc:
            self.error(path + exc.path, str(exc))
            return ALWAYS

    def automation(
        self,
        statuses: dict[str, Status],
        stage_keys: set[str],
        reasons: dict[str, Reason],
        fields: dict[str, FieldSpec],
        roles: set[str],
    ) -> Automation:
        src = self.src
        event_types: dict[str, EventType] = {
            name: EventType(name, values, REQUIRED_EVENT_DATA.get(name, ()), BUILTIN_EVENT_ROLES[name])
            for name, values in BUILTIN_EVENT_TYPES.items()
        }
        for name, spec in src.event_types.items():
            path: Path_ = ("event_types", name)
            submitters = self._event_roles(spec.roles, roles, (*path, "roles"))
            if name == STATUS_ENTERED:
                self.error(path, f"{name} is emitted by LeadLedger itself; nobody submits it")
                continue
            if name in event_types:
                if spec.data is not None or spec.required is not None:
                    self.error(path, f"{name} is a built-in event type: only its roles and description may be given")
                elif submitters is not None:
                    event_types[name] = replace(event_types[name], roles=submitters)
                continue
            values = {key: tuple(allowed or ()) for key, allowed in (spec.data or {}).items()}
            event_types[name] = EventType(
                name, values, tuple(spec.required or ()), submitters if submitters is not None else DEFAULT_EVENT_ROLES
            )
        templates = {name: Template(t.subject, t.body) for name, t in src.templates.items()}

        rules: list[EventRule] = []
        seen: set[str] = set()
        for i, rule in enumerate(src.rules):
            path = ("rules", i)
            if rule.name in seen:
                self.error((*path, "name"), f"rule {rule.name!r} is declared twice")
            seen.add(rule.name)
            on = [rule.on] if isinstance(rule.on, str) else list(rule.on)
            for j, kind in enumerate(on):
                if kind not in event_types and kind != STATUS_ENTERED:
                    self.error(
                        (*path, "on", j) if isinstance(rule.on, list) else (*path, "on"),
                        f"unknown event type {kind!r} (declare it under event_types:)",
                    )
            if rule.set_status is not None and rule.set_status not in statuses:
                self.error((*path, "set_status"), f"unknown status {rule.set_status!r}")
            if rule.set_stage is not None and rule.set_stage not in stage_keys:
                self.error((*path, "set_stage"), f"unknown stage {rule.set_stage!r}")
            if rule.reason is not None and rule.reason not in reasons:
                self.error((*path, "reason"), f"unknown reason {rule.reason!r}")
            for name in rule.set:
                if name not in fields:
                    self.error((*path, "set", name), f"unknown field {name!r} (declare it under fields:)")
            if rule.set_status is None and rule.set_stage is None and not rule.set:
                self.error(path, "a rule must set a status, a stage or a field")
            rules.append(
                EventRule(
                    name=rule.name,
                    on=frozenset(on),
                    when=self._condition(rule.when, (*path, "when")),
                    set_status=rule.set_status,
                    set_stage=rule.set_stage,
                    reason=rule.reason,
                    fields=tuple(rule.set.items()),
                    description=rule.description,
                )
            )

        pools: dict[str, Pool] = {}
        for name, pool in src.routing.pools.items():
            path = ("routing", "pools", name)
            if pool.team is None and not pool.members:
                self.error(path, "a pool needs a team or a list of members")
            for user, weight in pool.weights.items():
                if weight < 1:
                    self.error((*path, "weights", user), "a weight is a whole number >= 1")
            for role in pool.roles:
                if role not in roles:
                    self.error((*path, "roles"), f"unknown role {role!r}")
            pools[name] = Pool(
                name,
                pool.team,
                tuple(pool.members),
                dict(pool.weights),
                pool.strategy,
                pool.capacity,
                frozenset(pool.roles),
            )
        routing_rules = []
        for i, routing_rule in enumerate(src.routing.rules):
            path = ("routing", "rules", i)
            if routing_rule.pool not in pools:
                self.error((*path, "pool"), f"unknown pool {routing_rule.pool!r}")
            routing_rules.append(RoutingRule(routing_rule.pool, self._condition(routing_rule.when, (*path, "when"))))

        on_enter: dict[str, tuple[Action, ...]] = {}
        for status_key, actions in src.on_enter.items():
            if status_key not in statuses:
                self.error(("on_enter", status_key), f"unknown status {status_key!r}")
                continue
            compiled = []
            for i, action in enumerate(actions):
                path = ("on_enter", status_key, i)
                for j, key in enumerate(action.task.while_in if action.task is not None else ()):
                    if key not in statuses:
                        self.error((*path, "task", "while_in", j), f"unknown status {key!r}")
                action_spec = self._action(action, path, pools, templates, roles)
                if action_spec is not None:
                    kind = type(action_spec).__name__.removesuffix("Action").lower()
                    name = action.name or f"{status_key}:{kind}"
                    compiled.append(Action(name, action_spec, self._condition(action.when, (*path, "when"))))
            on_enter[status_key] = tuple(compiled)

        approvals = []
        for i, approval in enumerate(src.approvals):
            path = ("approvals", i)
            for j, key in enumerate(approval.to):
                if key not in statuses:
                    self.error((*path, "to", j), f"unknown status {key!r}")
            for j, role in enumerate(approval.approvers):
                if role not in roles:
                    self.error((*path, "approvers", j), f"unknown role {role!r}")
            approvals.append(
                ApprovalRule(
                    approval.name,
                    frozenset(approval.to),
                    self._condition(approval.when, (*path, "when")),
                    frozenset(approval.approvers),
                    approval.description,
                )
            )
        return Automation(
            rules=tuple(rules),
            on_enter=on_enter,
            approvals=tuple(approvals),
            pools=pools,
            routing_rules=tuple(routing_rules),
            routing_seed=src.routing.seed,
            templates=templates,
            event_types=event_types,
        )

    def _event_roles(self, given: list[str] | None, roles: set[str], path: Path_) -> frozenset[str] | None:
        if given is None:
            return None
        for j, role in enumerate(given):
            if role not in roles:
                self.error((*path, j), f"unknown role {role!r}")
        return frozenset(given)

    def _action(
        self, action: Any, path: Path_, pools: dict[str, Pool], templates: dict[str, Template], roles: set[str]
    ) -> ActionSpec | None:
        kinds = [k for k in ("task", "notify", "route", "webhook", "email") if getattr(action, k) is not None]
        if len(kinds) != 1:
            self.error(path, "an action is exactly one of: task, notify, route, webhook, email")
            return None
        kind = kinds[0]
        spec = getattr(action, kind)
        if kind == "task":
            return TaskAction(
                spec.title, parse_duration(spec.due), spec.business_time, spec.assignee, tuple(spec.while_in)
            )
        if kind == "notify":
            to = (spec.to,) if isinstance(spec.to, str) else tuple(spec.to)
            for recipient in to:
                if recipient.startswith("role:") and recipient[5:] not in roles:
                    self.error((*path, "notify", "to"), f"unknown role in {recipient!r}")
            return NotifyAction(to, spec.message, spec.email)
        if kind == "route":
            if spec.pool is not None and spec.pool not in pools:
                self.error((*path, "route", "pool"), f"unknown pool {spec.pool!r}")
            if spec.pool is not None and spec.user is not None:
                self.error((*path, "route"), "route to a pool or to a user, not both")
            return RouteAction(spec.pool, spec.user, spec.exclude_previous_owners)
        if kind == "webhook":
            return WebhookAction(spec.endpoint, spec.event)
        if spec.template not in templates:
            self.error(
                (*path, "email", "template"), f"unknown template {spec.template!r} (declare it under templates:)"
            )
        return EmailAction(spec.template, spec.to)


def segment_attribute_type(name: str, fields: Mapping[str, FieldSpec]) -> str | None:
    """The type a segment condition sees for `lead.<name>`: a built-in attribute's, or the model field's
    (bool and number fields keep their type, every other field is text); None when there is no such thing."""
    if name in ATTRIBUTES:
        return ATTRIBUTES[name][0]
    spec = fields.get(name)
    if spec is None or name in LEDGER_META_KEYS:
        return None
    if spec.type == "bool":
        return "bool"
    if spec.type in ("number", "integer"):
        return "number"
    return "text"


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True
