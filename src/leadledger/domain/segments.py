"""Marketing segments as data: who to nurture, re-engage, review, or suppress (seed 004).

A segment is a condition in the language automation rules use (`{all|any: [...]}`, `{not: ...}`,
`{attr: lead.<attribute>, op, value}`, and `account.flagged`), plus other segments it includes or excludes. Suppression segments win:
a lead in any of them is never a member of an inclusion segment. Membership is a function of the ledger at a
time T; the analytics store evaluates it set-based (see `leadledger.marketing`), and `members` below is the
same definition in plain Python, the reference the SQL is tested against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leadledger.domain.conditions import Condition

SUPPRESSION = "suppression"
INCLUSION = "inclusion"
KINDS = (SUPPRESSION, INCLUSION)

# What a segment condition may read about a lead, with its type. Every field of the model can be read too
# (`lead.<field>`, typed by the model: bool fields as bool, number fields as number, the rest as text).
# text: compared as text (numbers in text compare as numbers, as in rules); datetime: ISO 8601 text in UTC
# ("2026-11-23T15:00:00Z"), so `gte: "2026-11-01"` works; a date field is "YYYY-MM-DD".
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "id": ("text", "the lead's id"),
    "status": ("status", "the current status (a sub-status is itself: assigned is not new)"),
    "primary_status": ("status", "the status, or the parent of a sub-status (new covers assigned)"),
    "stage": ("stage", "the lifecycle stage"),
    "owner": ("text", "the owner's user name"),
    "team": ("text", "the owner's team"),
    "reason": ("reason", "the reason given when the lead entered its current status"),
    "status_since": ("datetime", "when the lead entered its current status"),
    "days_in_status": ("number", "days (fractional) in the current status"),
    "created_at": ("datetime", "when the lead was created"),
    "days_since_created": ("number", "days (fractional) since the lead was created"),
    "last_activity_at": ("datetime", "the last logged activity (any type); missing when none"),
    "days_since_activity": ("number", "days since the last logged activity; missing when none"),
    "re_evaluation_due": ("bool", "re_evaluate_on is set and is on or before the day (UTC) of the as-of time"),
}
# What a segment condition may read about the lead's account (`account.<name>`), with its type. Only segment
# conditions: they are evaluated from the analytics store as of a time; rule guards run on the write path.
ACCOUNT_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "flagged": (
        "bool",
        "the lead's account had an account-review flag raised, neither cleared nor dismissed, at the as-of time "
        "(the account is the lead's current one: a lead whose company changed counts with its new account "
        "for past times too)",
    ),
}
NUMBER_OPS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "exists", "missing"})
BOOL_OPS = frozenset({"eq", "ne", "exists", "missing"})
# fields the ledger carries that are not the lead's data: never offered to a condition
LEDGER_META_KEYS = frozenset({"caused_by", "approved_by"})


@dataclass(frozen=True)
class SegmentWebhook:
    """Where a segment's on-enter and on-leave messages go (through the outbox), and their event names."""

    endpoint: str
    on_enter: str | None = "segment.entered"
    on_leave: str | None = "segment.left"


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    kind: str = INCLUSION
    description: str = ""
    when: Condition | None = None  # None: members come from `include` only
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    webhook: SegmentWebhook | None = None
    attributes: frozenset[str] = field(default_factory=frozenset)  # what `when` reads ("status", "account.flagged")

    @property
    def suppression(self) -> bool:
        return self.kind == SUPPRESSION


def condition_attributes(source: Any) -> set[str]:
    """The `lead.<name>` attributes a condition's data form reads (other scopes are returned with theirs)."""
    found: set[str] = set()
    if isinstance(source, Mapping):
        if "attr" in source and isinstance(source["attr"], str):
            scope, _, name = source["attr"].partition(".")
            found.add(name if scope == "lead" else source["attr"])
        for key in ("all", "any"):
            for item in source.get(key, ()) or ():
                found |= condition_attributes(item)
        if "not" in source:
            found |= condition_attributes(source["not"])
    return found


def flag_up(flags: Iterable[Mapping[str, Any]], t: Any) -> bool:
    """Whether any of an account's flag rows ({raised_at, cleared_at, dismissed_at}) was up at `t`: raised by
    then, and neither cleared nor dismissed by then (the definition `account.flagged` reads)."""
    return any(
        f["raised_at"] <= t
        and (f.get("cleared_at") is None or f["cleared_at"] > t)
        and (f.get("dismissed_at") is None or f["dismissed_at"] > t)
        for f in flags
    )


def context(row: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The condition context for a lead's attributes: `row` is what `lead.` reads, and its qualified keys
    ("account.flagged") are what other scopes read."""
    scoped: dict[str, dict[str, Any]] = {}
    for name, value in row.items():
        scope, dot, attribute = str(name).partition(".")
        if dot:
            scoped.setdefault(scope, {})[attribute] = value
    return {**scoped, "lead": row}


def dependencies(segments: Mapping[str, Segment], key: str) -> list[str]:
    """Every segment `key`'s membership depends on (included, excluded, and for an inclusion segment every
    suppression segment), in an order where each comes after what it depends on; `key` last."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        segment = segments[name]
        needs = [*segment.include, *segment.exclude]
        if not segment.suppression:
            needs += [s.key for s in segments.values() if s.suppression]
        for other in needs:
            visit(other)
        order.append(name)

    visit(key)
    return order


def members(segments: Mapping[str, Segment], key: str, leads: Iterable[Mapping[str, Any]]) -> set[str]:
    """The ids of the leads (each a mapping of attribute -> value at one time, "account.flagged" for the
    account's) in segment `key`."""
    rows = list(leads)
    cache: dict[str, set[str]] = {}
    for name in dependencies(segments, key):
        segment = segments[name]
        chosen: set[str] = set()
        if segment.when is not None:
            test: Condition = segment.when
            chosen = {str(row["id"]) for row in rows if test(context(row))}
        for other in segment.include:
            chosen |= cache[other]
        for other in segment.exclude:
            chosen -= cache[other]
        if not segment.suppression:
            for candidate in segments.values():
                if candidate.suppression:
                    chosen -= cache[candidate.key]
        cache[name] = chosen
    return cache[key]
