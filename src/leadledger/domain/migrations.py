"""Status migrations: how the keys of an older model read in the current one (rename, merge, split).

A model file's `migrations:` map says, for each status key it drops, where that key's history and leads go:
a *rename* or a *merge* names one status; a *split* divides by something every ledger entry records — the
stage the lead was in, or the reason the status was entered with — and says where everything else goes, so
no entry is left without a status. The ledger is never edited: reports read recorded keys through the map,
and leads still in an old key are moved by an appended `migration` entry (`migration_change`), which
*relabels* the status (the lead has been in it since it entered the old key; see `domain.timeline`).

Maps compose across model versions (`compose`): version 2 renames a -> b, version 3 renames b -> c, so an
entry recorded as `a` reads as `c`. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from leadledger.domain.changes import Actor, LeadState, Refused, StatusChange, Violation

if TYPE_CHECKING:  # the model holds its migrations: a runtime import would be circular
    from leadledger.domain.statusmodel import StatusModel

MIGRATION_SOURCE = "migration"  # the ledger source of an entry that moves a lead out of a migrated key
KINDS = ("rename", "merge", "split")
SPLIT_BY = ("stage", "reason")
MIGRATING_ROLES = frozenset({"ops"})


@dataclass(frozen=True)
class Split:
    """Divide by the entry's stage or by the reason the status was entered with; `otherwise` takes the rest."""

    by: str  # stage | reason
    cases: tuple[tuple[frozenset[str], Target], ...]
    otherwise: Target

    def pick(self, stage: str | None, reason: str | None) -> Target:
        value = stage if self.by == "stage" else reason
        for values, target in self.cases:
            if value is not None and value in values:
                return target
        return self.otherwise


Target = str | Split  # a status key, or a split that decides one per entry


@dataclass(frozen=True)
class Migration:
    """One entry of a model file's `migrations:` map."""

    old: str
    target: Target
    kind: str  # rename | merge | split
    reason: str = ""

    def describe(self) -> str:
        text = f"{self.old} → {describe_target(self.target)} ({self.kind})"
        return f"{text}: {self.reason}" if self.reason else text


def describe_target(target: Target) -> str:
    if isinstance(target, str):
        return target
    cases = "; ".join(f"{', '.join(sorted(values))} → {describe_target(t)}" for values, t in target.cases)
    return f"by {target.by}: {cases}; else → {describe_target(target.otherwise)}"


def resolve(target: Target, stage: str | None, reason: str | None) -> str:
    """The status key an entry with this stage and entry reason reads as."""
    while not isinstance(target, str):
        target = target.pick(stage, reason)
    return target


def leaves(target: Target) -> set[str]:
    """Every status key a target can end in."""
    if isinstance(target, str):
        return {target}
    out: set[str] = set()
    for _, t in target.cases:
        out |= leaves(t)
    return out | leaves(target.otherwise)


def _substitute(target: Target, later: Mapping[str, Migration]) -> Target:
    """`target` with every leaf that a later version migrates replaced by that migration's target."""
    if isinstance(target, str):
        return later[target].target if target in later else target
    return Split(
        target.by,
        tuple((values, _substitute(t, later)) for values, t in target.cases),
        _substitute(target.otherwise, later),
    )


def compose(versions: Iterable[Mapping[str, Migration]]) -> dict[str, Target]:
    """Every recorded key that reads as something else under the newest model, given each version's map in
    the order the versions were applied."""
    effective: dict[str, Target] = {}
    for migrations in versions:
        effective = extend(effective, migrations)
    return effective


def extend(effective: Mapping[str, Target], migrations: Mapping[str, Migration]) -> dict[str, Target]:
    """A composed map followed by one more version's migrations. A key the new version states again takes
    its new target (the newer decision); a chain that comes back to its own key drops out."""
    if not migrations:
        return dict(effective)
    out = {old: _substitute(target, migrations) for old, target in effective.items()}
    for old, migration in migrations.items():
        out[old] = migration.target
    return {old: target for old, target in out.items() if target != old}


@dataclass(frozen=True)
class MapRule:
    """One row of a composed map flattened for SQL: `recorded` reads as `mapped` when the entry's stage is in
    `stages` and its entry reason in `reasons` (None: any). Rules of a key are tried in `rank` order; the
    first that matches decides (so a split's `else` comes after its cases)."""

    rank: int
    recorded: str
    stages: tuple[str, ...] | None
    reasons: tuple[str, ...] | None
    mapped: str


def flatten(effective: Mapping[str, Target]) -> list[MapRule]:
    rules: list[MapRule] = []

    def walk(old: str, target: Target, stages: frozenset[str] | None, reasons: frozenset[str] | None) -> None:
        if isinstance(target, str):
            rules.append(MapRule(len(rules), old, _tuple(stages), _tuple(reasons), target))
            return
        for values, sub in target.cases:
            s, r = stages, reasons
            if target.by == "stage":
                s = values if s is None else s & values
            else:
                r = values if r is None else r & values
            if (s is not None and not s) or (r is not None and not r):
                continue  # a case no entry can reach (nested splits on the same attribute)
            walk(old, sub, s, r)
        walk(old, target.otherwise, stages, reasons)

    for old in sorted(effective):
        walk(old, effective[old], None, None)
    return rules


def _tuple(values: frozenset[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(sorted(values))


def map_status(effective: Mapping[str, Target], status: str | None, stage: str | None, reason: str | None) -> str | None:
    """A recorded status as the newest model names it (unmapped keys stay as they are)."""
    if status is None or status not in effective:
        return status
    return resolve(effective[status], stage, reason)


def migration_change(
    model: StatusModel,
    effective: Mapping[str, Target],
    lead: LeadState,
    *,
    entry_reason: str | None,
    actor: Actor,
    at: datetime,
    note: str | None = None,
) -> StatusChange | Refused:
    """The entry that moves a lead out of a key the model no longer has, to where its migration says.

    Not a transition: the model has no rules for a key it dropped. What is checked instead: only ops migrate;
    the lead's status really is an old key with a migration; the target is valid in the lead's stage (a lead
    the map would put into an impossible stage/status pair is refused and listed, not moved).
    """
    violations: list[Violation] = []
    if actor.role not in MIGRATING_ROLES:
        violations.append(Violation("actor", "role_not_allowed", "only ops may move leads by a model migration"))
    if lead.status in model.statuses:
        violations.append(Violation("status", "not_migrated", f"{lead.status} is a status of the model: nothing to migrate"))
    elif lead.status not in effective:
        violations.append(
            Violation("status", "no_migration", f"{lead.status} is not a status of the model and no migration names it")
        )
    if at < lead.last_at:
        violations.append(Violation("at", "before_last_change", "the move is dated before the lead's last change"))
    if violations:
        return Refused(tuple(violations))
    target_key = resolve(effective[lead.status], lead.stage, entry_reason)
    target = model.statuses.get(target_key)
    if target is None:
        return Refused((Violation("status", "unknown", f"the migration of {lead.status} names no status ({target_key})"),))
    if lead.stage not in target.stages:
        return Refused(
            (
                Violation(
                    "stage",
                    "incompatible",
                    f"{lead.status} migrates to {target.label}, which is not valid in stage {lead.stage}"
                    f" (valid in: {', '.join(sorted(target.stages))})",
                ),
            )
        )
    return StatusChange(
        lead_id=lead.id,
        at=at,
        actor=actor.name,
        actor_role=actor.role,
        source=MIGRATION_SOURCE,
        from_status=lead.status,
        to_status=target_key,
        from_stage=lead.stage,
        to_stage=lead.stage,
        from_owner=lead.owner,
        to_owner=lead.owner,
        note=note,
    )
