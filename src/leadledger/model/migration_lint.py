"""Lint a model's `migrations:` against the versions stored before it.

The loader checks what one file says about itself; this checks what only the history can tell: a status
removed with no migration, a merge into a status that already existed (a merge states its reason), a key that
earlier versions migrated away coming back as a new status (its old history would read as the new one), chains
across versions (a -> b in version 2, b -> c now: `a` reads as `c`), and splits or targets that do not fit the
stages and reasons the old status had.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from leadledger.domain.migrations import Migration, Split, compose, describe_target, leaves
from leadledger.domain.statusmodel import Status, StatusModel
from leadledger.model.lint import Finding
from leadledger.model.loader import LoadedModel


@dataclass(frozen=True)
class Earlier:
    """A stored model version, as the lint sees it."""

    label: str  # "version 3"
    model: StatusModel


def kind_of(migration: Migration, previous: StatusModel | None, migrations: dict[str, Migration]) -> str:
    """rename, merge or split, knowing the version before: a target that already existed makes a merge."""
    if isinstance(migration.target, Split):
        return "split"
    if previous is not None and migration.target in previous.statuses:
        return "merge"
    if sum(1 for m in migrations.values() if m.target == migration.target) > 1:
        return "merge"
    return "rename"


def lint_migrations(loaded: LoadedModel, history: Sequence[Earlier]) -> list[Finding]:
    """Findings for the migrations of `loaded`, given the versions stored before it (oldest first)."""
    model = loaded.model
    findings: list[Finding] = []

    def add(level: str, check: str, subject: str, message: str, *path: str | int) -> None:
        findings.append(Finding(level, check, subject, message, loaded.line_of(*path) if path else None))

    previous = history[-1].model if history else None
    own = model.migrations
    effective = compose([*(e.model.migrations for e in history), own])

    for key, target in sorted(effective.items()):
        if key in model.statuses:
            add("error", "migration_reused_key", key,
                f"earlier versions migrate {key} to {describe_target(target)}: a status cannot take the key back "
                "(its old history reads as the new status, and so would the new one's)", "statuses")  # fmt: skip

    for old, migration in own.items():
        path = ("migrations", old)
        kind = kind_of(migration, previous, own)
        if kind == "merge" and not migration.reason:
            add("error", "migration_reason", old,
                f"{old} merges into {migration.target}, which already exists: a merge states its reason (reason:)",
                *path)  # fmt: skip
        was = _last_definition(old, history)
        if was is None:
            known = any(old in e.model.migrations for e in history)
            if not known:
                add("warning", "migration_unknown_key", old,
                    "no earlier version had this status: a typo, or a key only imported history holds?", *path)  # fmt: skip
            continue
        _check_fit(add, old, was, migration, model, path)

    if previous is not None:
        for key in previous.statuses:
            if key not in model.statuses and key not in effective:
                add("warning", "migration_missing", key,
                    f"{key} is removed with no migration: its history keeps the key, and `model apply` refuses "
                    "while leads are in it (add `migrations: {key}: <status>` to say where they go)", "migrations")  # fmt: skip

    earlier = compose(e.model.migrations for e in history)
    for key, before in sorted(earlier.items()):
        now = effective.get(key)
        if key in own or now is None or now == before:
            continue
        add("warning", "migration_chain", key,
            f"history recorded as {key} read as {describe_target(before)}; with this file it reads as "
            f"{describe_target(now)}", "migrations")  # fmt: skip
    return findings


def _last_definition(key: str, history: Sequence[Earlier]) -> Status | None:
    for earlier in reversed(history):
        status = earlier.model.statuses.get(key)
        if status is not None:
            return status
    return None


AddFn = Callable[..., None]


def _check_fit(
    report: AddFn, old: str, was: Status, migration: Migration, model: StatusModel, path: tuple[str, ...]
) -> None:
    """Targets valid where the old status was; split values the old status could have."""
    target = migration.target
    if isinstance(target, Split):
        possible = set(was.stages) if target.by == "stage" else set(was.entry.reason.codes if was.entry.reason else ())
        for values, _ in target.cases:
            for value in sorted(values - possible):
                what = "stage" if target.by == "stage" else "reason"
                report("warning", "migration_split", old,
                       f"{what} {value}: {old} never had it ({', '.join(sorted(possible)) or 'none'})", *path)  # fmt: skip
        if target.by == "reason" and (was.entry.reason is None or not was.entry.reason.required):
            report("warning", "migration_split", old,
                   f"{old} did not require a reason: entries without one go to {describe_target(target.otherwise)}",
                   *path)  # fmt: skip
    for key in sorted(leaves(target)):
        status = model.statuses.get(key)
        if status is None:
            continue
        stuck = sorted(set(was.stages) - set(status.stages))
        if stuck and not isinstance(target, Split):
            report("warning", "migration_stage", old,
                   f"{old} was valid in {', '.join(stuck)}, where {key} is not: leads of {old} there cannot be "
                   "moved, and `model apply` refuses while there are any", *path)  # fmt: skip
