"""The `migrations:` section of a model file, checked and compiled (`domain.migrations.Migration`).

What one file can say about itself is checked here, with file:line errors through the loader: an old key must
be gone from the model, every target must be one of its statuses, a merge states its reason, a split divides
by stage or reason and says where everything else goes (`else:`), and a split by stage sends each stage to a
status valid in it. What needs the earlier versions (a key reused, a merge into a status that already existed,
chains across versions) is `model.migration_lint`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from leadledger.domain.migrations import Migration, Split
from leadledger.domain.statusmodel import Status
from leadledger.model.schema import MigrationIn

ErrorFn = Callable[[tuple[str | int, ...], str], None]


def compile_migrations(
    section: Mapping[str, MigrationIn], statuses: Mapping[str, Status], stage_keys: set[str], error: ErrorFn
) -> dict[str, Migration]:
    simple_targets = Counter(spec.to for spec in section.values() if spec.to is not None and spec.split is None)
    out: dict[str, Migration] = {}
    for old, spec in section.items():
        path: tuple[str | int, ...] = ("migrations", old)
        if old in statuses:
            error(path, f"{old} is still a status of this model: a migration is for a key the model no longer has")
            continue
        if (spec.to is None) == (spec.split is None):
            error(path, "say where the key goes: `to:` a status (rename or merge) or `split:` (by stage or reason)")
            continue
        if spec.to is not None:
            if spec.to not in statuses:
                error((*path, "to"), f"unknown status {spec.to!r}: a migration's target must be a status of this model")
                continue
            merge = simple_targets[spec.to] > 1
            if merge and not spec.reason.strip():
                others = sorted(k for k, s in section.items() if s.to == spec.to and k != old)
                error(path, f"{old} and {', '.join(others)} merge into {spec.to}: a merge states its reason (reason:)")
            out[old] = Migration(old, spec.to, "merge" if merge else "rename", spec.reason.strip())
            continue
        split = spec.split
        assert split is not None
        broken = False
        grouped: dict[str, set[str]] = {}
        for value, target in split.cases.items():
            where = (*path, "split", "cases", value)
            if target not in statuses:
                error(where, f"unknown status {target!r}: a split's targets must be statuses of this model")
                broken = True
                continue
            if split.by == "stage":
                if value not in stage_keys:
                    error(where, f"unknown stage {value!r}")
                    broken = True
                    continue
                if value not in statuses[target].stages:
                    error(where, f"{target} is not valid in stage {value}: leads split there could not be in it")
                    broken = True
                    continue
            grouped.setdefault(target, set()).add(value)
        if split.else_ is None:
            error(
                (*path, "split"),
                f"ambiguous split: say where entries with any other {split.by} go (else:), or those entries "
                "(and leads) would have no status",
            )
            continue
        if split.else_ not in statuses:
            error((*path, "split", "else"), f"unknown status {split.else_!r}")
            continue
        if broken:
            continue
        cases = tuple((frozenset(values), target) for target, values in grouped.items())
        out[old] = Migration(old, Split(split.by, cases, split.else_), "split", spec.reason.strip())
    return out


def migrations_of_text(text: str) -> dict[str, Migration]:
    """The `migrations:` of a stored model version, without compiling the rest of it (it was validated when it
    was stored); how the analytics store and the write path compose the map across versions cheaply."""
    from pydantic import TypeAdapter

    from leadledger.model.schema import _migration_shorthand
    from leadledger.model.source import read_yaml

    data = read_yaml(text)
    section = data.get("migrations") if isinstance(data, dict) else None
    if not section:
        return {}
    specs = TypeAdapter(dict[str, MigrationIn]).validate_python(_migration_shorthand(section))
    targets = Counter(spec.to for spec in specs.values() if spec.to is not None)
    out: dict[str, Migration] = {}
    for old, spec in specs.items():
        if spec.to is not None:
            out[old] = Migration(old, spec.to, "merge" if targets[spec.to] > 1 else "rename", spec.reason.strip())
        elif spec.split is not None and spec.split.else_ is not None:
            grouped: dict[str, set[str]] = {}
            for value, target in spec.split.cases.items():
                grouped.setdefault(target, set()).add(value)
            cases = tuple((frozenset(values), target) for target, values in grouped.items())
            out[old] = Migration(old, Split(spec.split.by, cases, spec.split.else_), "split", spec.reason.strip())
    return out
