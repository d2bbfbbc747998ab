"""Edit the default model as a status council would: rename a status, merge one into another, add one.

The tests of status migrations build their "next version" of the model with these (a model file is data; the
edits touch every place a status key appears: statuses, transitions, forward path, stage coupling, rules,
conditions, SLAs, time rules).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from leadledger.model.loader import default_model_text
from leadledger.model.source import read_yaml


def default() -> dict[str, Any]:
    return read_yaml(default_model_text())


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _statuses(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for status in data["statuses"]:
        out.append(status)
        out.extend(status.get("sub_statuses", []))
    return out


def _replace(value: Any, old: str, new: str) -> Any:
    """Every string equal to `old` (list items, values, mapping keys) becomes `new`; lists lose duplicates."""
    if isinstance(value, str):
        return new if value == old else value
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            item = _replace(item, old, new)
            if not (isinstance(item, str) and item in out):
                out.append(item)
        return out
    if isinstance(value, dict):
        result: dict[Any, Any] = {}
        for key, item in value.items():
            key = new if key == old else key
            item = _replace(item, old, new)
            if key in result and isinstance(item, list) and isinstance(result[key], list):
                result[key] = _replace(result[key] + item, new, new)
            else:
                result[key] = item
        return result
    return value


def rename(data: dict[str, Any], old: str, new: str, *, label: str | None = None) -> dict[str, Any]:
    """The model with status `old` called `new` everywhere (its definition unchanged)."""
    data = copy.deepcopy(data)
    migrations = data.pop("migrations", None)
    for status in _statuses(data):
        if status["key"] == old:
            status["key"] = new
            if label:
                status["label"] = label
    data = _replace(data, old, new)
    if migrations is not None:
        data["migrations"] = migrations
    return data


def merge(data: dict[str, Any], old: str, into: str) -> dict[str, Any]:
    """The model without `old`: every rule about it now about `into`; `into` takes its reason codes and stages."""
    data = copy.deepcopy(data)
    migrations = data.pop("migrations", None)
    gone = next(s for s in _statuses(data) if s["key"] == old)
    keep = next(s for s in _statuses(data) if s["key"] == into)
    keep["stages"] = sorted(set(keep.get("stages", [])) | set(gone.get("stages", [])), key=_stage_order(data))
    old_codes = ((gone.get("entry") or {}).get("reason") or {}).get("codes", [])
    reason = keep.setdefault("entry", {}).setdefault("reason", {"required": True, "codes": []})
    reason["codes"] = list(dict.fromkeys([*reason.get("codes", []), *old_codes]))
    data["statuses"] = [s for s in data["statuses"] if s["key"] != old]
    for status in data["statuses"]:
        status["sub_statuses"] = [s for s in status.get("sub_statuses", []) if s["key"] != old]
        if not status["sub_statuses"]:
            status.pop("sub_statuses")
    data = _replace(data, old, into)
    declared: set[tuple[str, str]] = set()
    kept = []
    for transition in data["transitions"]:
        if transition["from"] != "*":
            transition["from"] = [
                s for s in transition["from"]
                if s not in transition["to"] and not all((s, t) in declared for t in transition["to"])
            ]  # fmt: skip
            if not transition["from"]:
                continue
            declared |= {(s, t) for s in transition["from"] for t in transition["to"]}
        kept.append(transition)
    data["transitions"] = kept
    if migrations is not None:
        data["migrations"] = migrations
    return data


def _stage_order(data: dict[str, Any]) -> Any:
    order = [s["key"] for s in data["stages"]]
    return order.index


def with_migrations(data: dict[str, Any], migrations: dict[str, Any], version: str = "2") -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["migrations"] = migrations
    data["version"] = version
    return data
