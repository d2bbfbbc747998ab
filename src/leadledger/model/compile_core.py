"""Compile the core of a validated model file: stages, statuses, fields, reasons, transitions, calendars.

The rules that act over time or on events (automation, SLAs, time rules, segments) compile in
`compile_automation`; both collect every broken cross-reference in one `IssueLog`.
"""

from __future__ import annotations

from datetime import timedelta

from leadledger.domain.durations import parse_duration
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
from leadledger.model.calendars import build_calendar
from leadledger.model.compile_automation import AutomationCompiler
from leadledger.model.fieldtypes import parser_for
from leadledger.model.migration_rules import compile_migrations
from leadledger.model.schema import ModelFile, StatusIn
from leadledger.model.source import IssueLog, Path_

# Fields every lead has as columns; a model may retype them but need not declare them.
BUILTIN_FIELDS = ("name", "email", "phone", "company", "source", "campaign", "owner")


class CoreCompiler:
    """Turns the validated file into the domain model, collecting every broken cross-reference."""

    def __init__(self, source: ModelFile, log: IssueLog, check_holidays: bool):
        self.check_holidays = check_holidays
        self.src = source
        self.log = log
        self.rules = AutomationCompiler(source, log)

    def error(self, path: Path_, message: str) -> None:
        self.log.error(path, message)

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
            automation=self.rules.automation(statuses, {s.key for s in stages}, reasons, fields, roles),
            slas=self.rules.slas(statuses),
            time_rules=self.rules.time_rules(statuses, reasons, fields, roles),
            segments=self.rules.segments(statuses, stage_keys, reasons, fields),
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


def _rank(stages: list[Stage], key: str) -> int:
    for stage in stages:
        if stage.key == key:
            return stage.rank
    return -1
