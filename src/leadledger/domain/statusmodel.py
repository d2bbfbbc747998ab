"""The compiled status model: stages, statuses, reasons, transitions and stage/status coupling.

Built by `leadledger.model.loader` from the YAML file; the transition engine only reads it.
Lookups are precomputed so a check costs a few dictionary hits.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from leadledger.domain.automation import Automation
from leadledger.domain.calendar import BusinessCalendar
from leadledger.domain.migrations import Migration
from leadledger.domain.segments import Segment
from leadledger.domain.timerules import SlaSpec, TimeRule

SOURCES = ("manual", "automation", "time_rule", "integration", "import")
AUTOMATED_SOURCES = frozenset({"automation", "time_rule", "integration"})
ROLES = ("rep", "manager", "ops", "integration")

# A field validator returns (normalised value, None) or (None, "why it is invalid").
FieldParser = Callable[[Any], tuple[Any, str | None]]


@dataclass(frozen=True)
class Stage:
    key: str
    label: str
    rank: int
    definition: str = ""
    sets_status: str | None = None  # entering this stage (forward) sets this status
    roles: frozenset[str] = frozenset(ROLES)


@dataclass(frozen=True)
class FieldSpec:
    """One lead field from the model's catalogue: its type and how to validate it."""

    name: str
    type: str
    label: str
    help: str = ""
    choices: tuple[str, ...] = ()
    parse: FieldParser = field(default=lambda v: (v, None), compare=False, repr=False)
    after_change: bool = False  # a date/time that must lie after the change (a follow-up, a re-evaluation)


@dataclass(frozen=True)
class ActivityMatch:
    """An activity type, optionally restricted to values of one of its data keys."""

    type: str
    key: str | None = None
    values: frozenset[str] = frozenset()

    def matches(self, activity_type: str, data: Mapping[str, Any]) -> bool:
        if activity_type != self.type:
            return False
        if self.key is None:
            return True
        return str(data.get(self.key, "")) in self.values

    def describe(self) -> str:
        if self.key is None:
            return self.type
        return f"{self.type} ({self.key}: {', '.join(sorted(self.values))})"


@dataclass(frozen=True)
class ActivityRule:
    any_of: tuple[ActivityMatch, ...]
    within: timedelta | None = None
    description: str = ""


@dataclass(frozen=True)
class ReasonRule:
    required: bool
    codes: tuple[str, ...]


@dataclass(frozen=True)
class EntryRule:
    required: tuple[str, ...] = ()
    recommended: tuple[str, ...] = ()
    any_of: tuple[tuple[str, ...], ...] = ()
    reason: ReasonRule | None = None
    activity: ActivityRule | None = None
    description: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.required or self.recommended or self.any_of or self.reason or self.activity)


@dataclass(frozen=True)
class ExitRule:
    """What moves a lead out of a status, and what happens when it overstays."""

    description: str = ""
    max_age: timedelta | None = None
    business_time: bool = False
    then: str | None = None  # alert | escalate | move | review
    to: str | None = None
    reason: str | None = None
    terminal: bool = False


@dataclass(frozen=True)
class Status:
    key: str
    label: str
    definition: str
    owner_role: str
    category: str
    stages: frozenset[str]
    entry: EntryRule
    exit: ExitRule
    reporting_use: str
    when_to_use: str = ""
    automation: str = ""
    next_steps: str = ""
    locked: bool = False
    terminal: bool = False
    parent: str | None = None
    rank: int | None = None  # position on the forward path, None when off it


@dataclass(frozen=True)
class Transition:
    from_status: str
    to_status: str
    roles: frozenset[str]
    automatic: bool
    description: str = ""


@dataclass(frozen=True)
class Reason:
    code: str
    label: str
    description: str = ""


@dataclass(frozen=True)
class BackwardMove:
    from_stage: str
    to_stage: str
    sets_status: str


@dataclass
class StatusModel:
    """Everything the engine needs to judge a change, with lookups precomputed."""

    name: str
    version: str
    stages: tuple[Stage, ...]
    statuses: dict[str, Status]
    reasons: dict[str, Reason]
    fields: dict[str, FieldSpec]
    transitions: dict[tuple[str, str], Transition]
    backward_moves: dict[tuple[str, str], BackwardMove]
    status_sets_stage: dict[str, str]
    assignment_sets_status: dict[str, str]
    initial_status: str
    initial_stage: str
    forward_path: tuple[str, ...]
    calendars: dict[str, BusinessCalendar]
    default_calendar: str
    automation: Automation = field(default_factory=Automation)
    slas: tuple[SlaSpec, ...] = ()
    time_rules: tuple[TimeRule, ...] = ()
    segments: dict[str, Segment] = field(default_factory=dict)
    duplicate_on_create: str = "refuse"  # refuse | link: a new lead with an existing lead's e-mail or phone
    migrations: dict[str, Migration] = field(default_factory=dict)  # keys of earlier versions -> this one's
    stage_by_key: dict[str, Stage] = field(init=False)
    children: dict[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self.stage_by_key = {s.key: s for s in self.stages}
        kids: dict[str, list[str]] = {}
        for status in self.statuses.values():
            if status.parent:
                kids.setdefault(status.parent, []).append(status.key)
        self.children = {k: tuple(v) for k, v in kids.items()}

    def stage_rank(self, stage: str) -> int:
        return self.stage_by_key[stage].rank

    def primary_statuses(self) -> list[Status]:
        return [s for s in self.statuses.values() if s.parent is None]

    def transition(self, from_status: str, to_status: str) -> Transition | None:
        """The rule allowing from -> to; a sub-status inherits its parent's ways out."""
        found = self.transitions.get((from_status, to_status))
        if found is None:
            parent = self.statuses[from_status].parent if from_status in self.statuses else None
            if parent is not None and parent != to_status:
                found = self.transitions.get((parent, to_status))
        return found

    def allowed_targets(self, from_status: str, role: str | None = None) -> list[str]:
        """Statuses a person with `role` may move a lead to from `from_status` (for UIs and guides)."""
        targets = []
        for key in self.statuses:
            if key == from_status:
                continue
            rule = self.transition(from_status, key)
            if rule is not None and (role is None or role in rule.roles):
                targets.append(key)
        return targets

    def resolve_status(self, text: str) -> str | None:
        """The status key `text` names: a key, or a label in any case ("Attempting Contact", "connected /
        engaged", or one side of a "New / Uncontacted" label); None when it names none."""
        return _resolve(text, self.statuses, ((s.key, s.label) for s in self.statuses.values()))

    def resolve_stage(self, text: str) -> str | None:
        """The stage key `text` names (a key or a label, in any case); None when it names none."""
        return _resolve(text, self.stage_by_key, ((s.key, s.label) for s in self.stages))

    def unknown_status(self, text: str) -> str:
        """The message for a status that names none: the closest keys, then every key."""
        return _unknown("status", text, list(self.statuses), [s.label for s in self.statuses.values()])

    def unknown_stage(self, text: str) -> str:
        return _unknown("stage", text, [s.key for s in self.stages], [s.label for s in self.stages])

    def ended(self, key: str) -> bool:
        """A status the lead's journey ends in (Converted, Disqualified, Invalid...): nothing more to work."""
        status = self.statuses.get(key)
        return status is not None and (status.terminal or status.locked or status.exit.terminal)

    def within(self, key: str, keys: frozenset[str] | set[str]) -> bool:
        """`key` is one of `keys`, or a sub-status of one of them."""
        status = self.statuses.get(key)
        return key in keys or (status is not None and status.parent in keys)

    def calendar(self, name: str | None) -> BusinessCalendar:
        return self.calendars.get(name or self.default_calendar) or self.calendars[self.default_calendar]


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def _resolve(text: str, keys: Mapping[str, object], labelled: Iterable[tuple[str, str]]) -> str | None:
    if text in keys:
        return text
    wanted = _normal(text)
    names: dict[str, set[str]] = {}
    for key, label in labelled:
        for name in (key, label, *label.split("/")):
            names.setdefault(_normal(name), set()).add(key)
    found = names.get(wanted, set())
    return next(iter(found)) if len(found) == 1 else None


def _unknown(kind: str, text: str, keys: list[str], labels: list[str]) -> str:
    wanted = _normal(text)
    close = [k for k in keys if wanted and k.startswith(wanted)]
    close += difflib.get_close_matches(wanted, keys, n=3, cutoff=0.6)
    by_label = {_normal(label): key for key, label in zip(keys, labels, strict=True)}
    close += [by_label[m] for m in difflib.get_close_matches(wanted, list(by_label), n=3, cutoff=0.75)]
    suggested = list(dict.fromkeys(close))[:3]
    hint = f"did you mean {' or '.join(suggested)}? " if suggested else ""
    return f"unknown {kind} {text!r}: {hint}{kind} keys are {', '.join(keys)}"
