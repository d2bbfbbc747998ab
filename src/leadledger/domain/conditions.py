"""Conditions as data: a small typed interpreter for rule guards, never `eval`.

A condition is a tree: `{all: [...]}`, `{any: [...]}`, `{not: {...}}`, or a test
`{attr: "event.classification", op: "in", value: ["positive", "neutral"]}`. Attributes name what a rule may
look at: the event (`event.type`, `event.<data key>`), the lead (`lead.status`, `lead.<field>`), and the
change being made (`change.to_status`, `change.reason`...). Conditions are compiled once, when the model loads.
Segment conditions may also read the lead's account (`account.flagged`): that is evaluated from the analytics
store as of a time, so rule guards, which run on the write path, may not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "missing", "contains")
SCOPES = ("event", "lead", "change")
SEGMENT_SCOPES = (*SCOPES, "account")  # what a segment's condition may name (the model checks it reads lead/account)
# scopes only some conditions may read, and which
RESTRICTED_SCOPES = {"account": "segment conditions"}


class ConditionError(ValueError):
    """A condition that cannot be compiled; `path` says where inside it."""

    def __init__(self, path: tuple[str | int, ...], message: str):
        self.path = path
        super().__init__(message)


Context = Mapping[str, Mapping[str, Any]]
Test = Callable[[Context], bool]


@dataclass(frozen=True)
class Condition:
    """A compiled condition; `source` keeps the data it came from (for guides and error messages)."""

    test: Test
    source: Any

    def __call__(self, context: Context) -> bool:
        return self.test(context)


ALWAYS = Condition(lambda _ctx: True, None)


def compile_condition(data: Any, path: tuple[str | int, ...] = (), scopes: tuple[str, ...] = SCOPES) -> Condition:
    """Compile the data form of a condition whose attributes start with one of `scopes`; raises ConditionError
    naming the bad part."""
    if data is None:
        return ALWAYS
    return Condition(_compile(data, path, scopes), data)


def _compile(data: Any, path: tuple[str | int, ...], scopes: tuple[str, ...]) -> Test:
    if not isinstance(data, Mapping):
        raise ConditionError(
            path, "a condition is a mapping: {all: [...]}, {any: [...]}, {not: ...} or {attr, op, value}"
        )
    keys = set(data)
    if keys == {"all"} or keys == {"any"}:
        kind = "all" if "all" in keys else "any"
        items = data[kind]
        if not isinstance(items, list) or not items:
            raise ConditionError((*path, kind), f"{kind} needs a non-empty list of conditions")
        parts = [_compile(item, (*path, kind, i), scopes) for i, item in enumerate(items)]
        if kind == "all":
            return lambda ctx: all(p(ctx) for p in parts)
        return lambda ctx: any(p(ctx) for p in parts)
    if keys == {"not"}:
        inner = _compile(data["not"], (*path, "not"), scopes)
        return lambda ctx: not inner(ctx)
    if "attr" in keys:
        unknown = keys - {"attr", "op", "value"}
        if unknown:
            raise ConditionError(path, f"unknown key(s) in a test: {', '.join(sorted(unknown))}")
        return _test(data, path, scopes)
    raise ConditionError(path, f"cannot read condition keys {sorted(keys)}: use all, any, not, or attr/op/value")


def _test(data: Mapping[str, Any], path: tuple[str | int, ...], scopes: tuple[str, ...]) -> Test:
    attr = data["attr"]
    op = data.get("op", "eq")
    if isinstance(attr, str) and attr.partition(".")[0] in RESTRICTED_SCOPES and attr.partition(".")[0] not in scopes:
        where = RESTRICTED_SCOPES[attr.partition(".")[0]]
        raise ConditionError(
            (*path, "attr"),
            f"{attr} is only valid in {where}: it is evaluated from the analytics store as of a time, "
            "and this condition runs on the write path",
        )
    if not isinstance(attr, str) or "." not in attr or attr.split(".", 1)[0] not in scopes:
        raise ConditionError((*path, "attr"), f"attr {attr!r} must start with one of: {', '.join(scopes)}")
    if op not in OPS:
        raise ConditionError((*path, "op"), f"unknown op {op!r} (one of: {', '.join(OPS)})")
    scope, key = attr.split(".", 1)
    has_value = "value" in data
    value = data.get("value")
    if op in ("exists", "missing"):
        if has_value:
            raise ConditionError((*path, "value"), f"{op} takes no value")
    elif not has_value:
        raise ConditionError(path, f"{op} needs a value")
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise ConditionError((*path, "value"), f"{op} needs a list")
        members = frozenset(str(v) for v in value)
    else:
        members = frozenset()

    def read(ctx: Context) -> Any:
        return ctx.get(scope, {}).get(key)

    if op == "exists":
        return lambda ctx: _present(read(ctx))
    if op == "missing":
        return lambda ctx: not _present(read(ctx))
    if op == "in":
        return lambda ctx: _member(read(ctx), members)
    if op == "not_in":
        return lambda ctx: not _member(read(ctx), members)
    number = _number(value)  # the value is a constant: read as a number once, here
    if op == "eq":
        return lambda ctx: _equal(read(ctx), value, number)
    if op == "ne":
        return lambda ctx: not _equal(read(ctx), value, number)
    if op == "contains":
        return lambda ctx: _present(read(ctx)) and str(value).lower() in str(read(ctx)).lower()
    compare = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }[op]
    return lambda ctx: _ordered(read(ctx), value, compare)


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _member(value: Any, members: frozenset[str]) -> bool:
    return _present(value) and str(value) in members


def _equal(left: Any, right: Any, number_right: float | None) -> bool:
    if left is None or right is None:
        return left is right
    if isinstance(right, bool) or isinstance(left, bool):
        return str(left).lower() == str(right).lower()
    if number_right is not None:
        number_left = _number(left)
        if number_left is not None:
            return number_left == number_right
    return str(left) == str(right)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _ordered(left: Any, right: Any, compare: Callable[[Any, Any], bool]) -> bool:
    """Numbers compare as numbers, dates and times as ISO text; anything missing or mixed is false."""
    if not _present(left):
        return False
    number_left, number_right = _number(left), _number(right)
    if number_left is not None and number_right is not None:
        return compare(number_left, number_right)
    if isinstance(left, (date, datetime)):
        left = left.isoformat()
    return compare(str(left), str(right))
