"""The condition language (`leadledger.domain.conditions`) as DuckDB SQL, for set-based segment membership.

The same data form, the same meaning: every test below is written to give exactly what the Python
interpreter gives for the values it would read (a property test holds the two together). Each test is a
non-NULL boolean, so `not` never meets SQL's unknown. Literal values are bound as parameters, never pasted.

Attribute types (see `leadledger.domain.segments.ATTRIBUTES`): `text` (VARCHAR; numbers in text compare as
numbers, as the interpreter's do), `number` (DOUBLE) and `bool` (BOOLEAN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Params:
    """Parameters collected while compiling: `add` returns the `$name` to write in the SQL."""

    prefix: str = "c"
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"${name}"


SHORT_LIST = 32  # an `in` test with at most this many values is written as equalities
Column = Callable[[str], tuple[str, str]]  # attribute name -> (SQL expression, type)


def condition_sql(data: Any, column: Column, params: Params) -> str:
    """SQL for a condition's data form (already validated by `compile_condition`); None is always true."""
    if data is None:
        return "true"
    if "all" in data or "any" in data:
        kind = "all" if "all" in data else "any"
        joiner = " AND " if kind == "all" else " OR "
        return "(" + joiner.join(condition_sql(item, column, params) for item in data[kind]) + ")"
    if "not" in data:
        return f"(NOT {condition_sql(data['not'], column, params)})"
    scope, _, name = str(data["attr"]).partition(".")
    expression, kind = column(name if scope == "lead" else str(data["attr"]))
    return _test(expression, kind, data.get("op", "eq"), data.get("value"), params)


def _number(value: Any) -> float | None:
    """As the interpreter reads a number: anything float() takes, but never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _test(x: str, kind: str, op: str, value: Any, params: Params) -> str:
    if kind == "number":
        return _number_test(x, op, value, params)
    if kind == "bool":
        return _bool_test(x, op, value, params)
    return _text_test(x, op, value, params)


def _text_test(x: str, op: str, value: Any, params: Params) -> str:
    present = f"({x} IS NOT NULL AND {x} <> '')"
    if op == "exists":
        return present
    if op == "missing":
        return f"(NOT {present})"
    if op in ("in", "not_in"):
        found = f"({present} AND {_one_of(x, sorted({str(v) for v in value}), params)})"
        return found if op == "in" else f"(NOT {found})"
    if op == "contains":
        return f"({present} AND contains(lower({x}), {params.add(str(value).lower())}))"
    if op in ("eq", "ne"):
        if value is None:
            equal = f"({x} IS NULL)"
        elif isinstance(value, bool):
            equal = f"({x} IS NOT NULL AND lower({x}) = {params.add(str(value).lower())})"
        else:
            number = _number(value)
            text = params.add(str(value))
            if number is None:
                equal = f"({x} IS NOT NULL AND {x} = {text})"
            else:
                equal = (
                    f"({x} IS NOT NULL AND CASE WHEN TRY_CAST({x} AS DOUBLE) IS NOT NULL "
                    f"THEN TRY_CAST({x} AS DOUBLE) = {params.add(number)} ELSE {x} = {text} END)"
                )
        return equal if op == "eq" else f"(NOT {equal})"
    compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    number = _number(value)
    text = params.add(str(value))
    if number is None:
        return f"({present} AND {x} {compare} {text})"
    return (
        f"({present} AND CASE WHEN TRY_CAST({x} AS DOUBLE) IS NOT NULL "
        f"THEN TRY_CAST({x} AS DOUBLE) {compare} {params.add(number)} ELSE {x} {compare} {text} END)"
    )


def _one_of(x: str, values: list[str], params: Params) -> str:
    """SQL: `x` (not NULL) is one of `values`. A short list is written as equalities: DuckDB plans a list
    membership as a join against the list, which costs a pass over every lead per test."""
    if len(values) > SHORT_LIST:
        return f"list_contains({params.add(values)}::VARCHAR[], {x})"
    return "(" + " OR ".join(f"{x} = {params.add(v)}" for v in values) + ")" if values else "false"


def _number_test(x: str, op: str, value: Any, params: Params) -> str:
    if op == "exists":
        return f"({x} IS NOT NULL)"
    if op == "missing":
        return f"({x} IS NULL)"
    if op in ("eq", "ne"):
        number = _number(value)
        if value is None:
            equal = f"({x} IS NULL)"
        elif number is None:  # a float never equals a non-number (the model loader refuses such tests)
            equal = "false"
        else:
            equal = f"({x} IS NOT NULL AND {x} = {params.add(number)})"
        return equal if op == "eq" else f"(NOT {equal})"
    compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}.get(op)
    number = _number(value)
    if compare is None or number is None:
        raise ValueError(f"cannot compile {op} {value!r} on a number")
    return f"({x} IS NOT NULL AND {x} {compare} {params.add(number)})"


def _bool_test(x: str, op: str, value: Any, params: Params) -> str:
    if op == "exists":
        return f"({x} IS NOT NULL)"
    if op == "missing":
        return f"({x} IS NULL)"
    if op in ("eq", "ne"):
        if value is None:
            equal = f"({x} IS NULL)"
        else:
            wanted = str(value).lower()
            equal = (
                f"({x} IS NOT NULL AND {x} = {params.add(wanted == 'true')})"
                if wanted in ("true", "false")
                else "false"
            )
        return equal if op == "eq" else f"(NOT {equal})"
    raise ValueError(f"cannot compile {op} on a yes/no attribute")
