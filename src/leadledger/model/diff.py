"""What changed between two versions of the status model: section by section, item by item, field by field.

Seed 000 asks for a "quarterly review and refinement of status definitions": a reviewer needs to see what a
new model file changes before it is applied, and the council needs what changed during a quarter. Items are
matched by their natural key (a status by its key, a rule or an SLA by its name, a transition by its pair of
statuses as the engine compiles them, `*` expanded), so reordering a file is not a change. Pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leadledger.domain.migrations import describe_target
from leadledger.model.loader import LoadedModel
from leadledger.model.schema import StatusIn

CHANGE_KINDS = ("added", "removed", "changed")
# the sections in the order a reader wants them: what a rep sees first, plumbing last
SECTIONS = (
    "model",
    "roles",
    "stages",
    "statuses",
    "reasons",
    "fields",
    "transitions",
    "stage_coupling",
    "rules",
    "on_enter",
    "approvals",
    "routing",
    "slas",
    "time_rules",
    "calendars",
    "event_types",
    "templates",
    "migrations",
)


@dataclass(frozen=True)
class FieldChange:
    """One leaf that differs inside a changed item (`path` is dotted: `entry.reason.codes`)."""

    path: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ItemChange:
    section: str
    key: str
    change: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()
    note: str = ""  # what an added or removed item is, when its key does not say (a migration's target)

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "key": self.key,
            "change": self.change,
            "fields": [f.as_dict() for f in self.fields],
            "note": self.note,
        }

    def describe(self) -> str:
        """One line for a table or a Markdown list."""
        if self.change != "changed":
            return self.note
        parts = []
        for f in self.fields:
            if f.old is None:
                parts.append(f"{f.path}: set to {_short(f.new)}")
            elif f.new is None:
                parts.append(f"{f.path}: {_short(f.old)} removed")
            else:
                parts.append(f"{f.path}: {_short(f.old)} → {_short(f.new)}")
        return "; ".join(parts)


@dataclass
class ModelDiff:
    old_label: str
    new_label: str
    changes: list[ItemChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for c in self.changes:
            counts = out.setdefault(c.section, dict.fromkeys(CHANGE_KINDS, 0))
            counts[c.change] += 1
        return out

    def in_section(self, section: str, change: str | None = None) -> list[str]:
        return [c.key for c in self.changes if c.section == section and (change is None or c.change == change)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.old_label,
            "to": self.new_label,
            "identical": self.empty,
            "summary": self.summary(),
            "changes": [c.as_dict() for c in self.changes],
        }


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dotted paths; lists are leaves (their order means something in a model)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        if not value and prefix:
            out[prefix] = {}
        return out
    return {prefix: value}


def _item_fields(old: Any, new: Any) -> tuple[FieldChange, ...]:
    a, b = _leaves(old), _leaves(new)
    return tuple(FieldChange(path or "value", a.get(path), b.get(path)) for path in sorted(set(a) | set(b))
                 if a.get(path) != b.get(path))  # fmt: skip


def _compare(section: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ItemChange]:
    out = []
    for key in old:
        if key not in new:
            out.append(ItemChange(section, key, "removed"))
        elif old[key] != new[key]:
            out.append(ItemChange(section, key, "changed", _item_fields(old[key], new[key])))
    out.extend(ItemChange(section, key, "added") for key in new if key not in old)
    return out


def _dump(item: Any) -> Any:
    return item.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def _by(items: Iterable[Any], key: str) -> dict[str, Any]:
    return {str(getattr(item, key)): _dump(item) for item in items}


def _statuses(loaded: LoadedModel) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def add(status: StatusIn, parent: str | None) -> None:
        data = _dump(status)
        data.pop("sub_statuses", None)
        if parent:
            data["parent"] = parent
        out[status.key] = data
        for child in status.sub_statuses:
            add(child, status.key)

    for status in loaded.source.statuses:
        add(status, None)
    return out


def _transitions(loaded: LoadedModel) -> dict[str, Any]:
    return {
        f"{a} → {b}": {"roles": sorted(t.roles), "automatic": t.automatic}
        for (a, b), t in sorted(loaded.model.transitions.items())
    }


def _coupling(loaded: LoadedModel) -> dict[str, Any]:
    src = loaded.source
    out: dict[str, Any] = {}
    for status_key, stage_key in src.status_sets_stage.items():
        out[f"status {status_key} sets stage"] = stage_key
    for status_key, target in src.assignment_sets_status.items():
        out[f"assignment in {status_key} sets status"] = target
    for stage in src.stages:
        if stage.sets_status:
            out[f"stage {stage.key} sets status"] = stage.sets_status
    for move in src.backward_moves:
        for origin in move.from_:
            out[f"back {origin} → {move.to} sets status"] = move.sets_status
    return out


def _model_level(loaded: LoadedModel) -> dict[str, Any]:
    src = loaded.source
    return {
        "name": src.name,
        "version": src.version,
        "initial_status": src.initial_status,
        "initial_stage": src.initial_stage,
        "forward_path": list(src.forward_path),
        "default_calendar": src.default_calendar,
        "phone_region": src.phone_region,
    }


def _routing(loaded: LoadedModel) -> dict[str, Any]:
    routing = loaded.source.routing
    out: dict[str, Any] = {f"pool {name}": _dump(pool) for name, pool in routing.pools.items()}
    out["routing rules"] = [_dump(rule) for rule in routing.rules]
    out["seed"] = routing.seed
    return out


def _migrations(loaded: LoadedModel) -> dict[str, Any]:
    return {key: _dump(value) for key, value in loaded.source.migrations.items()}


def _migration_notes(old: LoadedModel, new: LoadedModel, changes: list[ItemChange]) -> list[ItemChange]:
    """An added migration says where the key goes and what kind it is: `→ contacting (rename)`."""
    from leadledger.model.migration_lint import kind_of

    out = []
    for c in changes:
        migration = new.model.migrations.get(c.key)
        if c.change == "added" and migration is not None:
            kind = kind_of(migration, old.model, new.model.migrations)
            note = f"{c.key} → {describe_target(migration.target)} ({kind})"
            c = ItemChange(c.section, c.key, c.change, c.fields, note + (f": {migration.reason}" if migration.reason else ""))
        out.append(c)
    return out


def diff_models(old: LoadedModel, new: LoadedModel, *, old_label: str = "old", new_label: str = "new") -> ModelDiff:
    """Every difference between two models, section by section (`SECTIONS` order), items in file order."""
    so, sn = old.source, new.source
    pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "model": (_model_level(old), _model_level(new)),
        "roles": ({r: r for r in so.roles}, {r: r for r in sn.roles}),
        "stages": (_by(so.stages, "key"), _by(sn.stages, "key")),
        "statuses": (_statuses(old), _statuses(new)),
        "reasons": ({k: _dump(v) for k, v in so.reasons.items()}, {k: _dump(v) for k, v in sn.reasons.items()}),
        "fields": ({k: _dump(v) for k, v in so.fields.items()}, {k: _dump(v) for k, v in sn.fields.items()}),
        "transitions": (_transitions(old), _transitions(new)),
        "stage_coupling": (_coupling(old), _coupling(new)),
        "rules": (_by(so.rules, "name"), _by(sn.rules, "name")),
        "on_enter": (
            {k: [_dump(a) for a in v] for k, v in so.on_enter.items()},
            {k: [_dump(a) for a in v] for k, v in sn.on_enter.items()},
        ),
        "approvals": (_by(so.approvals, "name"), _by(sn.approvals, "name")),
        "routing": (_routing(old), _routing(new)),
        "slas": (_by(so.slas, "name"), _by(sn.slas, "name")),
        "time_rules": (_by(so.time_rules, "name"), _by(sn.time_rules, "name")),
        "calendars": ({k: _dump(v) for k, v in so.calendars.items()}, {k: _dump(v) for k, v in sn.calendars.items()}),
        "event_types": (
            {k: _dump(v) for k, v in so.event_types.items()},
            {k: _dump(v) for k, v in sn.event_types.items()},
        ),
        "templates": ({k: _dump(v) for k, v in so.templates.items()}, {k: _dump(v) for k, v in sn.templates.items()}),
        "migrations": (_migrations(old), _migrations(new)),
    }
    result = ModelDiff(old_label, new_label)
    for section in SECTIONS:
        before, after = pairs[section]
        found = _compare(section, before, after)
        result.changes.extend(_migration_notes(old, new, found) if section == "migrations" else found)
    return result


def diff_markdown(diff: ModelDiff) -> str:
    """The diff as a Markdown document (for a pull request, the council pack, or a change log)."""
    lines = [f"# Status model changes: {diff.old_label} → {diff.new_label}", ""]
    if diff.empty:
        lines.append("No differences.")
        return "\n".join(lines) + "\n"
    for section in SECTIONS:
        items = [c for c in diff.changes if c.section == section]
        if not items:
            continue
        lines.append(f"## {section.replace('_', ' ')}")
        lines.append("")
        for c in items:
            detail = c.describe()
            lines.append(f"- **{c.change}** `{c.key}`" + (f": {detail}" if detail else ""))
        lines.append("")
    return "\n".join(lines)
