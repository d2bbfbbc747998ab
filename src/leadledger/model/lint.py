"""Quality checks for a status model: seed 004's five tests, seed 000's 8-12 rule, reachability and dead ends.

A model that loads can still be a bad model; lint says where and why. Errors block (exit 1), warnings inform.
Each check is a function of its own in CHECKS; adding one is writing it and listing it there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leadledger.domain.statusmodel import StatusModel
from leadledger.model.loader import LoadedModel

REASON_STATUSES = ("rejected", "recycled", "disqualified", "invalid", "duplicate")
REASON_CATEGORIES = ("lost", "data_problem")
MIN_PRIMARY, MAX_PRIMARY = 8, 12
PEOPLE_ROLES = frozenset({"rep", "manager"})  # ops may do anything; integrations are judged as automation


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning
    check: str
    subject: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "level": self.level,
            "check": self.check,
            "subject": self.subject,
            "message": self.message,
            "line": self.line,
        }


@dataclass(frozen=True)
class LintEnvironment:
    """What only the database knows: the webhook endpoints registered, and the active reps with no booking link
    (neither their own nor their team's). Without it, lint checks the file alone."""

    endpoints: frozenset[str] = frozenset()
    without_booking_url: tuple[str, ...] = ()


class _Linting:
    """What every check reads: the model, where each status is written in the file, and `add` for a finding."""

    def __init__(self, loaded: LoadedModel, findings: list[Finding]):
        self.loaded = loaded
        self.model = loaded.model
        self.paths = _status_paths(loaded)
        self._findings = findings

    def add(self, level: str, check: str, subject: str, message: str, *path: str | int) -> None:
        self._findings.append(Finding(level, check, subject, message, self.loaded.line_of(*path) if path else None))

    def at(self, key: str) -> tuple[str | int, ...]:
        return self.paths.get(key, ())


def lint(loaded: LoadedModel, environment: LintEnvironment | None = None) -> list[Finding]:
    """Every finding for the model, errors first: each of CHECKS in turn, then what the database knows."""
    findings: list[Finding] = []
    linting = _Linting(loaded, findings)
    for check in CHECKS:
        check(linting)
    if environment is not None:
        _lint_environment(linting.model, environment, linting.add)
    findings.sort(key=lambda f: (f.level != "error", f.line or 0))
    return findings


def five_tests(linting: _Linting) -> None:
    """Seed 004's five tests of a status: a meaning of its own, an owner, an entry rule, an exit rule, a use."""
    definitions: dict[str, str] = {}
    for key, status in linting.model.statuses.items():
        path = linting.at(key)
        if not status.definition.strip():
            linting.add("error", "meaning", key, "has no definition: what does it mean?", *path)
        else:
            other = definitions.get(status.definition.strip().lower())
            if other:
                linting.add("warning", "meaning", key, f"has the same definition as {other}: meanings overlap", *path)
            definitions[status.definition.strip().lower()] = key
        if not status.owner_role:
            linting.add("error", "owner", key, "has no owner role: who is responsible while it is active?", *path)
        if status.entry.is_empty and not status.entry.description.strip():
            linting.add("error", "entry_rule", key, "has no entry rule: what must be true before it is applied?", *path)
        exit_ = status.exit
        if not (exit_.description.strip() or exit_.max_age or exit_.terminal or status.terminal):
            linting.add("error", "exit_rule", key, "has no exit rule: what moves a lead out of it?", *path)
        if not status.reporting_use.strip():
            linting.add("error", "reporting_use", key, "has no reporting use: what decision does it support?", *path)


def status_count(linting: _Linting) -> None:
    """Seed 000: 8-12 primary statuses."""
    primary = linting.model.primary_statuses()
    if not MIN_PRIMARY <= len(primary) <= MAX_PRIMARY:
        linting.add(
            "error",
            "status_count",
            "statuses",
            f"{len(primary)} primary statuses; keep 8-12 and put extra detail in sub-statuses or fields",
            "statuses",
        )


def reason_required(linting: _Linting) -> None:
    """Seed 004: rejected, recycled, disqualified, invalid and duplicate need a reason from a controlled list."""
    for key, status in linting.model.statuses.items():
        needs_reason = key in REASON_STATUSES or (status.category in REASON_CATEGORIES and not status.parent)
        rule = status.entry.reason
        if needs_reason and (rule is None or not rule.required or not rule.codes):
            linting.add(
                "error", "reason_required", key, "must require a reason from a controlled list", *linting.at(key)
            )


def locked(linting: _Linting) -> None:
    """Locked statuses: nothing leads back out of them."""
    for (origin, target), _rule in linting.model.transitions.items():
        if linting.model.statuses[origin].locked:
            linting.add(
                "error",
                "locked",
                f"{origin}->{target}",
                f"{origin} is locked; a transition back to {target} would rewrite its past",
                "transitions",
            )


def dead_ends(linting: _Linting) -> None:
    """An open status nobody can leave, or whose exit rule moves leads where no automatic transition goes."""
    model = linting.model
    for key, status in model.statuses.items():
        terminal = status.terminal or status.locked or status.exit.terminal
        if terminal:
            continue
        if not model.allowed_targets(key):
            linting.add("error", "no_way_out", key, "is not terminal but has no transition out of it", *linting.at(key))
        if status.exit.then == "move" and status.exit.to:
            exit_rule = model.transition(key, status.exit.to)
            if exit_rule is None or not exit_rule.automatic:
                linting.add(
                    "error",
                    "exit_rule",
                    key,
                    f"its exit moves leads to {status.exit.to}, but no automatic transition allows it",
                    *linting.at(key),
                )


def reachability(linting: _Linting) -> None:
    """Every status, and every stage a status is declared valid in, is reached by some sequence of changes."""
    model = linting.model
    reachable = _reachable_pairs(model)
    reached_statuses = {status for status, _stage in reachable}
    for key in model.statuses:
        if key not in reached_statuses:
            linting.add("error", "unreachable", key, "no transition or stage rule ever leads to it", *linting.at(key))
    for key, status in model.statuses.items():
        for stage in sorted(status.stages, key=model.stage_rank):
            if (key, stage) not in reachable and key in reached_statuses:
                linting.add(
                    "warning",
                    "unreachable_combination",
                    f"{key}@{stage}",
                    f"{status.label} is declared valid in stage {stage}, but no sequence of changes reaches it",
                    *linting.at(key),
                )


def stage_status(linting: _Linting) -> None:
    """Stage rules (entering a stage, moving back, a status pulling its stage) land on valid combinations."""
    model = linting.model
    for stage_def in model.stages:
        if stage_def.sets_status and stage_def.sets_status in model.statuses:
            if stage_def.key not in model.statuses[stage_def.sets_status].stages:
                linting.add(
                    "error",
                    "stage_status",
                    stage_def.key,
                    f"sets {stage_def.sets_status}, not valid in {stage_def.key}",
                )
    for move in model.backward_moves.values():
        if move.sets_status in model.statuses and move.to_stage not in model.statuses[move.sets_status].stages:
            linting.add(
                "error",
                "stage_status",
                move.to_stage,
                f"moving back sets {move.sets_status}, not valid in {move.to_stage}",
            )
    for status_key, stage_key in model.status_sets_stage.items():
        if status_key in model.statuses and stage_key not in model.statuses[status_key].stages:
            linting.add("error", "stage_status", status_key, f"pulls the stage to {stage_key}, where it is not valid")


def automatic_moves(linting: _Linting) -> None:
    """Automation can only make automatic moves: a rule whose move no automatic transition allows never works."""
    model = linting.model
    for time_rule in model.time_rules:
        moves_to = time_rule.action.status
        if time_rule.action.kind == "move" and moves_to in model.statuses:
            for origin in sorted(time_rule.statuses):
                allowed = model.transition(origin, moves_to)
                if allowed is None or not allowed.automatic:
                    message = f"moves {origin} -> {moves_to}, which no automatic transition allows"
                    linting.add("error", "automation", time_rule.name, message, "time_rules")
    for event_rule in model.automation.rules:
        sets = event_rule.set_status
        if sets is not None and not any(t.automatic for (_, to), t in model.transitions.items() if to == sets):
            linting.add(
                "warning",
                "automation",
                event_rule.name,
                f"sets {sets}, but no transition into it is automatic",
                "rules",
            )


def event_roles(linting: _Linting) -> None:
    """An event sets rules off in its sender's name: a person who may send it must not thereby make moves their
    role may not make by hand (a rep posting a form to recycle their own lead)."""
    model = linting.model
    events = model.automation.event_types
    for event_rule in model.automation.rules:
        sets = event_rule.set_status
        if sets is None:
            continue
        senders = {role for on in event_rule.on if on in events for role in events[on].roles} & PEOPLE_ROLES
        for (origin, to), transition in sorted(model.transitions.items()):
            if to != sets or not transition.automatic:
                continue
            barred = sorted(senders - transition.roles)
            if barred:
                linting.add(
                    "warning",
                    "event_roles",
                    event_rule.name,
                    f"a {', '.join(barred)} may send {'/'.join(sorted(event_rule.on))} and so move {origin} -> {sets}, "
                    "a move that role may not make by hand (narrow the event type's roles or the rule's `when`)",
                    "rules",
                )


def nobody_moves(linting: _Linting) -> None:
    """A transition no role may make and no automation makes is dead weight."""
    for (origin, target), transition in linting.model.transitions.items():
        if not transition.roles and not transition.automatic:
            linting.add("warning", "transition", f"{origin}->{target}", "no role may make it and it is not automatic")


def forward_path(linting: _Linting) -> None:
    """Each status of the forward path can reach the next one."""
    model = linting.model
    for i in range(len(model.forward_path) - 1):
        a, b = model.forward_path[i], model.forward_path[i + 1]
        if a in model.statuses and b in model.statuses and not _path_exists(model, a, b):
            linting.add("warning", "forward_path", f"{a}->{b}", "the forward path has no way from one to the next")


CHECKS: tuple[Callable[[_Linting], None], ...] = (
    five_tests,
    status_count,
    reason_required,
    locked,
    dead_ends,
    reachability,
    stage_status,
    automatic_moves,
    event_roles,
    nobody_moves,
    forward_path,
)
"""The checks of the file alone, in the order their findings are listed (errors first, then by line)."""


def _lint_environment(model: StatusModel, env: LintEnvironment, add: Any) -> None:
    """Automation that would go nowhere in this database: webhooks to unregistered endpoints, booking links."""
    for status_key, actions in model.automation.on_enter.items():
        for action in actions:
            endpoint = getattr(action.spec, "endpoint", None)
            if endpoint is not None and endpoint not in env.endpoints:
                add("warning", "webhook_endpoint", action.name,
                    f"sends to endpoint {endpoint!r}, which is not registered here: its deliveries are skipped "
                    f"(leadledger endpoint add {endpoint} URL --secret SECRET)", "on_enter", status_key)  # fmt: skip
    for name, template in model.automation.templates.items():
        if template.uses("owner", "booking_url") and env.without_booking_url:
            people = ", ".join(env.without_booking_url[:10]) + (
                " and more" if len(env.without_booking_url) > 10 else ""
            )
            add("warning", "booking_url", name,
                f"uses {{owner.booking_url}}, but {people} have no booking link: that e-mail is not sent to their "
                "leads (leadledger user set NAME --booking-url URL, or team add --booking-url)", "templates", name)  # fmt: skip


def _status_paths(loaded: LoadedModel) -> dict[str, tuple[str | int, ...]]:
    paths: dict[str, tuple[str | int, ...]] = {}
    for i, status in enumerate(loaded.source.statuses):
        paths[status.key] = ("statuses", i, "key")
        for j, sub in enumerate(status.sub_statuses):
            paths[sub.key] = ("statuses", i, "sub_statuses", j, "key")
    return paths


def _path_exists(model: StatusModel, a: str, b: str) -> bool:
    seen, queue = {a}, deque([a])
    while queue:
        current = queue.popleft()
        if current == b:
            return True
        for nxt in model.allowed_targets(current):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return False


def _reachable_pairs(model: StatusModel) -> set[tuple[str, str]]:
    """Every (status, stage) a lead can be in, following the same rules as the engine."""
    start = [
        (model.initial_status, s.key) for s in model.stages if s.key in model.statuses[model.initial_status].stages
    ]
    seen = set(start)
    queue = deque(start)
    while queue:
        status, stage = queue.popleft()
        rank = model.stage_rank(stage)
        nxt: list[tuple[str, str]] = []
        for target in model.allowed_targets(status):
            target_stage = stage
            implied = model.status_sets_stage.get(target)
            if implied is not None and model.stage_rank(implied) > rank:
                target_stage = implied
            if target_stage in model.statuses[target].stages:
                nxt.append((target, target_stage))
        assigned = model.assignment_sets_status.get(status)
        if assigned and stage in model.statuses[assigned].stages:
            nxt.append((assigned, stage))
        for other in model.stages:
            if other.rank > rank:
                target = status
                if other.sets_status and other.sets_status != status:
                    current, goal = model.statuses[status], model.statuses[other.sets_status]
                    beyond = (
                        current.rank is not None
                        and goal.rank is not None
                        and current.rank >= goal.rank
                        and other.key in current.stages
                    )
                    if not beyond:
                        if model.transition(status, other.sets_status) is None:
                            continue
                        target = other.sets_status
                if other.key in model.statuses[target].stages:
                    nxt.append((target, other.key))
            else:
                move = model.backward_moves.get((stage, other.key))
                if move is not None and (move.sets_status == status or model.transition(status, move.sets_status)):
                    if other.key in model.statuses[move.sets_status].stages:
                        nxt.append((move.sets_status, other.key))
        for pair in nxt:
            if pair not in seen:
                seen.add(pair)
                queue.append(pair)
    return seen
