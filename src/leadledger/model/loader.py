"""Read a status model file: YAML -> validated schema -> compiled `StatusModel`.

Every error names the file, the line and the key path, so an ops person can fix the file without guessing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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
    ActivityMatch,
    ActivityRule,
    BackwardMove,
    EntryRule,
    ExitRule,
    FieldSpec,
    Reason,
    ReasonRule,
    Stage,
    Status,
    StatusModel,
    Transition,
)
from leadledger.domain.timerules import Duration, SlaSpec, TimeAction, TimeRule
from leadledger.model.calendars import build_calendar
from leadledger.model.fieldtypes import parser_for
from leadledger.model.migration_rules import compile_migrations
from leadledger.model.schema import ModelFile, StatusIn

Path_ = tuple[str | int, ...]
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster


class _Loader(_Base):
    """YAML 1.2 booleans: only true/false. Under YAML 1.1 a rule's `on:` key would read as True."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

# Fields every lead has as columns; a model may retype them but need not declare them.
BUILTIN_FIELDS = ("name", "email", "phone", "company", "source", "campaign", "owner")


@dataclass(frozen=True)
class ModelIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ModelError(Exception):
    """The model file is not valid; `issues` lists every problem found."""

    def __init__(self, issues: list[ModelIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass(frozen=True)
class LoadedModel:
    model: StatusModel
    source: ModelFile
    text: str
    file: str
    lines: dict[Path_, int]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def line_of(self, *path: str | int) -> int | None:
        return _line_for(self.lines, path)


def read_yaml(text: str) -> Any:
    """Parse YAML the way model files are read (YAML 1.2 booleans, so `on:` stays a key)."""
    return yaml.load(text, Loader=_Loader)


def default_model_text() -> str:
    return resources.files("leadledger.model").joinpath("default_model.yaml").read_text(encoding="utf-8")


def load_default() -> LoadedModel:
    return load_text(default_model_text(), "default_model.yaml")


def load_file(path: str | Path) -> LoadedModel:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError([ModelIssue(file, None, "", f"cannot read the file ({exc.strerror})")]) from exc
    except UnicodeDecodeError as exc:
        raise ModelError([ModelIssue(file, None, "", "the file is not UTF-8 text")]) from exc
    return load_text(text, file)


def read_yaml_with_lines(
    text: str, file: str, loader: Any, *, empty: str
) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text and index the line of every key path, so later errors can name file, line and key.

    Raises ModelError for text that is not YAML, is empty (`empty` says so) or repeats a key. Shared by
    the model file and the import mapping files.
    """
    lines: dict[Path_, int] = {}
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ModelError([ModelIssue(file, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if node is None:
        raise ModelError([ModelIssue(file, 1, "", empty)])
    duplicates: list[ModelIssue] = []
    _index_lines(node, (), lines, duplicates, file)
    if duplicates:
        raise ModelError(duplicates)
    return yaml.load(text, Loader=loader), lines


def load_text(text: str, file: str = "<model>", *, check_holidays: bool = True) -> LoadedModel:
    """Parse, validate and compile a model; raises ModelError listing every problem with its line.

    `check_holidays=False` defers loading holiday tables to first use (for a model validated when stored).
    """
    data, lines = read_yaml_with_lines(text, file, _Loader, empty="the file is empty")
    if not isinstance(data, dict):
        raise ModelError(
            [ModelIssue(file, 1, "", "the model must be a mapping of sections (name, stages, statuses...)")]
        )
    try:
        source = ModelFile.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            issues.append(ModelIssue(file, _line_for(lines, loc), _dotted(loc), err["msg"]))
        raise ModelError(issues) from exc
    compiler = _Compiler(source, file, lines, check_holidays)
    model = compiler.compile()
    if compiler.issues:
        raise ModelError(compiler.issues)
    return LoadedModel(model=model, source=source, text=text, file=file, lines=lines)


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], dups: list[ModelIssue], file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dups.append(ModelIssue(file, key_node.start_mark.line + 1, _dotted((*path, key)), "key appears twice"))
            seen.add(key)
            _index_lines(value_node, (*path, key), lines, dups, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, dups, file)


def _line_for(lines: dict[Path_, int], loc: tuple[Any, ...]) -> int | None:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class _Compiler:
    """Turns the validated file into the domain model, collecting every broken cross-reference."""

    def __init__(self, source: ModelFile, file: str, lines: dict[Path_, int], check_holidays: bool):
        self.check_holidays = check_holidays
        self.src = source
        self.file = file
        self.lines = lines
        self.issues: list[ModelIssue] = []
        self.status_paths: dict[str, Path_] = {}

    def error(self, path: Path_, message: str) -> None:
        self.issues.append(ModelIssue(self.file, _line_for(self.lines, path), _dotted(path), message))

    def compile(self) -> StatusModel:
        src = self.src
        roles = set(src.roles)
        stages = self._stages(roles)
        stage_keys = {s.key for s in stages}
        flat = self._flatten_statuses()
        status_keys = set(flat)
        fields = self._fields()
        reasons = {code: Reason(code, r.label, r.description) for code, r in src.reasons.items()}
        rank = {key: i for i, key in enumerate(src.forward_path)}
        for i, key in enumerate(src.forward_path):
            if key not in status_keys:
                self.error(("forward_path", i), f"unknown status {key!r}")

        statuses: dict[str, Status] = {}
        for key, (spec, parent, path) in flat.items():
            statuses[key] = self._status(spec, parent, path, stage_keys, roles, fields, reasons, status_keys, rank)

        for i, stage in enumerate(src.stages):
            if stage.sets_status is not None and stage.sets_status not in status_keys:
                self.error(("stages", i, "sets_status"), f"unknown status {stage.sets_status!r}")
        transitions = self._transitions(status_keys, roles, statuses)
        backward: dict[tuple[str, str], BackwardMove] = {}
        for i, move in enumerate(src.backward_moves):
            path = ("backward_moves", i)
            if move.to not in stage_keys:
                self.error((*path, "to"), f"unknown stage {move.to!r}")
            if move.sets_status not in status_keys:
                self.error((*path, "sets_status"), f"unknown status {move.sets_status!r}")
            for j, origin in enumerate(move.from_):
                if origin not in stage_keys:
                    self.error((*path, "from", j), f"unknown stage {origin!r}")
                    continue
                if move.to in stage_keys and _rank(stages, origin) <= _rank(stages, move.to):
                    self.error((*path, "from", j), f"{origin} -> {move.to} is not a step back")
                backward[(origin, move.to)] = BackwardMove(origin, move.to, move.sets_status)
        for key, stage_key in src.status_sets_stage.items():
            if key not in status_keys:
                self.error(("status_sets_stage", key), f"unknown status {key!r}")
            if stage_key not in stage_keys:
                self.error(("status_sets_stage", key), f"unknown stage {stage_key!r}")
        for key, target in src.assignment_sets_status.items():
            for k in (key, target):
                if k not in status_keys:
                    self.error(("assignment_sets_status", key), f"unknown status {k!r}")
        if src.initial_status not in status_keys:
            self.error(("initial_status",), f"unknown status {src.initial_status!r}")
        if src.initial_stage not in stage_keys:
            self.error(("initial_stage",), f"unknown stage {src.initial_stage!r}")

        calendars = {}
        for name, cal in src.calendars.items():
            try:
                calendars[name] = build_calendar(
                    name=name,
                    timezone=cal.timezone,
                    hours=cal.hours,
                    holidays_country=cal.holidays.country if cal.holidays else None,
                    holidays_subdivision=cal.holidays.subdivision if cal.holidays else None,
                    days_off=cal.days_off,
                    check_holidays=self.check_holidays,
                )
            except ValueError as exc:
                self.error(("calendars", name), str(exc))
        if src.default_calendar not in src.calendars:
            self.error(("default_calendar",), f"unknown calendar {src.default_calendar!r}")

        return StatusModel(
            name=src.name,
            version=src.version,
            stages=tuple(stages),
            statuses=statuses,
            reasons=reasons,
            fields=fields,
            transitions=transitions,
            backward_moves=backward,
            status_sets_stage=dict(src.status_sets_stage),
            assignment_sets_status=dict(src.assignment_sets_status),
            initial_status=src.initial_status,
            initial_stage=src.initial_stage,
            forward_path=tuple(src.forward_path),
            calendars=calendars,
            default_calendar=src.default_calendar,
            automation=self._automation(statuses, {s.key for s in stages}, reasons, fields, roles),
            slas=self._slas(statuses),
            time_rules=self._time_rules(statuses, reasons, fields, roles),
            segments=self._segments(statuses, stage_keys, reasons, fields),
            duplicate_on_create=src.duplicates.on_create,
            migrations=compile_migrations(src.migrations, statuses, stage_keys, self.error),
        )

    def _stages(self, roles: set[str]) -> list[Stage]:
        out, seen = [], set()
        for i, stage in enumerate(self.src.stages):
            if stage.key in seen:
                self.error(("stages", i, "key"), f"stage {stage.key!r} is declared twice")
            seen.add(stage.key)
            stage_roles = frozenset(stage.roles if stage.roles is not None else roles)
            for role in stage_roles - roles:
                self.error(("stages", i, "roles"), f"unknown role {role!r}")
            out.append(Stage(stage.key, stage.label, i, stage.definition, stage.sets_status, stage_roles))
        return out

    def _flatten_statuses(self) -> dict[str, tuple[StatusIn, StatusIn | None, Path_]]:
        flat: dict[str, tuple[StatusIn, StatusIn | None, Path_]] = {}
        for i, status in enumerate(self.src.statuses):
            path: Path_ = ("statuses", i)
            self._add_status(flat, status, None, path)
            for j, sub in enumerate(status.sub_statuses):
                sub_path = (*path, "sub_statuses", j)
                if sub.sub_statuses:
                    self.error((*sub_path, "sub_statuses"), "sub-statuses cannot have sub-statuses of their own")
                self._add_status(flat, sub, status, sub_path)
        return flat

    def _add_status(self, flat: dict, status: StatusIn, parent: StatusIn | None, path: Path_) -> None:
        if status.key in flat:
            self.error((*path, "key"), f"status {status.key!r} is declared twice")
            return
        flat[status.key] = (status, parent, path)
        self.status_paths[status.key] = path

    def _fields(self) -> dict[str, FieldSpec]:
        fields: dict[str, FieldSpec] = {}
        for name in BUILTIN_FIELDS:
            kind = {"email": "email", "phone": "phone"}.get(name, "text")
            fields[name] = FieldSpec(
                name, kind, name.capitalize(), parse=parser_for(kind, phone_region=self.src.phone_region)
            )
        for name, spec in self.src.fields.items():
            if spec.type == "choice" and not spec.choices:
                self.error(("fields", name, "choices"), "a choice field needs its choices")
            if spec.after_change and spec.type not in ("date", "datetime"):
                self.error(
                    ("fields", name, "after_change"), "only a date or datetime can be required to lie after the change"
                )
            parse = parser_for(
                spec.type, choices=spec.choices, minimum=spec.min, maximum=spec.max, phone_region=self.src.phone_region
            )
            fields[name] = FieldSpec(
                name, spec.type, spec.label, spec.help, tuple(spec.choices), parse=parse, after_change=spec.after_change
            )
        return fields

    def _status(
        self,
        spec: StatusIn,
        parent: StatusIn | None,
        path: Path_,
        stage_keys: set[str],
        roles: set[str],
        fields: dict[str, FieldSpec],
        reasons: dict[str, Reason],
        status_keys: set[str],
        rank: dict[str, int],
    ) -> Status:
        owner_role = spec.owner_role or (parent.owner_role if parent else None) or ""
        if owner_role and owner_role not in roles:
            self.error((*path, "owner_role"), f"unknown role {owner_role!r}")
        category = spec.category or (parent.category if parent else None)
        if category is None:
            self.error(
                (*path, "category"),
                "a status needs a category (open, active, qualified, won, lost, parked, data_problem)",
            )
            category = "open"
        stage_list = spec.stages if spec.stages is not None else (parent.stages if parent else None)
        if not stage_list:
            self.error((*path, "stages"), "a status must list the stages it is valid in")
            stage_list = []
        for j, stage in enumerate(stage_list):
            if stage not in stage_keys:
                self.error((*path, "stages", j), f"unknown stage {stage!r}")

        entry = spec.entry
        for group_name in ("required", "recommended"):
            for j, name in enumerate(getattr(entry, group_name)):
                if name not in fields:
                    self.error((*path, "entry", group_name, j), f"unknown field {name!r} (declare it under fields:)")
        for j, group in enumerate(entry.any_of):
            for k, name in enumerate(group):
                if name not in fields:
                    self.error((*path, "entry", "any_of", j, k), f"unknown field {name!r}")
        reason_rule = None
        if entry.reason is not None:
            for j, code in enumerate(entry.reason.codes):
                if code not in reasons:
                    self.error(
                        (*path, "entry", "reason", "codes", j), f"unknown reason {code!r} (declare it under reasons:)"
                    )
            reason_rule = ReasonRule(entry.reason.required, tuple(entry.reason.codes))
        activity = None
        if entry.activity is not None:
            matches = []
            for j, item in enumerate(entry.activity.any_of):
                if isinstance(item, str):
                    matches.append(ActivityMatch(item))
                    continue
                if len(item) != 1:
                    self.error((*path, "entry", "activity", "any_of", j), "write one activity type per item")
                    continue
                ((kind, cond),) = item.items()
                if not cond:
                    matches.append(ActivityMatch(kind))
                    continue
                if len(cond) != 1:
                    self.error((*path, "entry", "activity", "any_of", j), "restrict an activity on one data key")
                    continue
                ((key, values),) = cond.items()
                matches.append(ActivityMatch(kind, key, frozenset(str(v) for v in values)))
            within = parse_duration(entry.activity.within) if entry.activity.within is not None else None
            activity = ActivityRule(tuple(matches), within, entry.activity.description)

        exit_ = spec.exit
        if exit_.to is not None and exit_.to not in status_keys:
            self.error((*path, "exit", "to"), f"unknown status {exit_.to!r}")
        if exit_.reason is not None and exit_.reason not in reasons:
            self.error((*path, "exit", "reason"), f"unknown reason {exit_.reason!r}")
        if exit_.then == "move" and exit_.to is None:
            self.error((*path, "exit", "to"), "an exit that moves the lead must say where to")
        max_age: timedelta | None = parse_duration(exit_.max_age) if exit_.max_age is not None else None

        return Status(
            key=spec.key,
            label=spec.label,
            definition=spec.definition,
            owner_role=owner_role,
            category=category,
            stages=frozenset(stage_list),
            entry=EntryRule(
                required=tuple(entry.required),
                recommended=tuple(entry.recommended),
                any_of=tuple(tuple(g) for g in entry.any_of),
                reason=reason_rule,
                activity=activity,
                description=entry.description,
            ),
            exit=ExitRule(
                description=exit_.description,
                max_age=max_age,
                business_time=exit_.business_time,
                then=exit_.then,
                to=exit_.to,
                reason=exit_.reason,
                terminal=exit_.terminal,
            ),
            reporting_use=spec.reporting_use or (parent.reporting_use if parent else ""),
            when_to_use=spec.when_to_use,
            automation=spec.automation,
            next_steps=spec.next_steps,
            locked=spec.locked,
            terminal=spec.terminal,
            parent=parent.key if parent else None,
            rank=rank.get(spec.key),
        )

    def _check_statuses(self, keys: list[str], statuses: dict[str, Status], path: Path_) -> frozenset[str]:
        for j, key in enumerate(keys):
            if key not in statuses:
                self.error((*path, j), f"unknown status {key!r}")
        return frozenset(keys)

    def _slas(self, statuses: dict[str, Status]) -> tuple[SlaSpec, ...]:
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

    def _time_rules(
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

    def _segments(
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

    def _automation(
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

    def _transitions(
        self, status_keys: set[str], roles: set[str], statuses: dict[str, Status]
    ) -> dict[tuple[str, str], Transition]:
        out: dict[tuple[str, str], Transition] = {}
        for i, rule in enumerate(self.src.transitions):
            path: Path_ = ("transitions", i)
            for j, role in enumerate(rule.roles):
                if role not in roles:
                    self.error((*path, "roles", j), f"unknown role {role!r}")
            for j, target in enumerate(rule.to):
                if target not in status_keys:
                    self.error((*path, "to", j), f"unknown status {target!r}")
            if rule.from_ == "*":
                origins = [k for k in statuses if not statuses[k].locked]
            else:
                origins = list(rule.from_)
                for j, origin in enumerate(origins):
                    if origin not in status_keys:
                        self.error((*path, "from", j), f"unknown status {origin!r}")
            for origin in origins:
                for target in rule.to:
                    if origin == target:
                        continue
                    if (origin, target) in out and rule.from_ != "*":
                        self.error(path, f"{origin} -> {target} is declared more than once")
                    out[(origin, target)] = Transition(
                        origin, target, frozenset(rule.roles), rule.automatic, rule.description
                    )
        return out


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


def _rank(stages: list[Stage], key: str) -> int:
    for stage in stages:
        if stage.key == key:
            return stage.rank
    return -1
