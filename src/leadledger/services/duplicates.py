"""Duplicate records: what `duplicate_of` may name, checked wherever a change or a creation sets it.

A Duplicate points at the record that survives (seed 004: "Duplicate - record should be merged or linked").
The pointer must lead somewhere real: an existing lead, not the lead itself, and not a lead that is itself a
duplicate (a chain, or two leads naming each other, would leave no survivor). The check runs in the write
transaction (`WriteBatch`), so every writer gets it: the CLI, the API, bulk changes and event rules alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from leadledger.domain.changes import LeadState, Violation
from leadledger.domain.statusmodel import StatusModel

FIELD = "duplicate_of"


def duplicate_statuses(model: StatusModel) -> frozenset[str]:
    """The statuses that mean "this record duplicates another": data-problem statuses that require
    `duplicate_of` (the default model's Duplicate)."""
    return frozenset(
        s.key
        for s in model.statuses.values()
        if s.category == "data_problem" and (FIELD in s.entry.required or s.key == "duplicate")
    )


def check_duplicate_of(
    model: StatusModel,
    lead_id: str,
    fields: Mapping[str, Any],
    lookup: Callable[[str], LeadState | None],
) -> Violation | None:
    """The problem with the `duplicate_of` a change sets on `lead_id`, if any (`lookup` finds a lead's state)."""
    if FIELD not in fields or fields[FIELD] in (None, ""):
        return None
    target = str(fields[FIELD]).strip()
    if target == lead_id:
        return Violation(FIELD, "self", "a lead cannot be a duplicate of itself")
    found = lookup(target)
    if found is None:
        return Violation(FIELD, "not_found", f"no lead {target!r} to be a duplicate of")
    if found.status in duplicate_statuses(model):
        survivor = found.fields.get(FIELD)
        if survivor == lead_id:
            return Violation(FIELD, "cycle", f"lead {target} is itself a duplicate of this lead")
        hint = f": name the lead it duplicates ({survivor})" if survivor else ""
        return Violation(FIELD, "is_duplicate", f"lead {target} is itself a duplicate{hint}")
    return None
