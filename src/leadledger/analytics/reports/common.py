"""What several reports share: argument checks, the model's data-problem statuses, a presence test."""

from __future__ import annotations

from leadledger.analytics.context import Query
from leadledger.services.errors import Invalid


def require_no_grouping(q: Query, name: str) -> None:
    if q.options.by is not None:
        raise Invalid(f"the {name} report does not take --by")


def require_no_period(q: Query, name: str) -> None:
    if q.options.start is not None or q.options.end is not None:
        raise Invalid(f"the {name} report is a point in time: give --as-of, not --from/--to")


def present(q: Query, *keys: str) -> bool:
    """The model has every one of these statuses (a report skips a figure about a status it lacks)."""
    return all(key in q.model.statuses for key in keys)


def data_problem_statuses(q: Query) -> tuple[list[str], list[str]]:
    """(invalid-like, duplicate-like) statuses: the data_problem category, split on the duplicate_of field."""
    invalid, duplicate = [], []
    for status in q.model.statuses.values():
        if status.category != "data_problem":
            continue
        if "duplicate_of" in status.entry.required or status.key == "duplicate":
            duplicate.append(status.key)
        else:
            invalid.append(status.key)
    return invalid, duplicate
