"""Segment membership at a time T, set-based, from the analytics store's copy of the ledger.

Every lead that exists at T gets the attributes a segment condition may read, as the ledger says they were
then: its state from `inst` (status, stage, owner, the reason it entered its status, since when), its fields
from `fvals` (the data its entries captured, folded up to T), its last activity from `act_m`, its team
from today's users. The conditions, compiled to SQL, then mark each lead in or out of each segment the
asked-for segment depends on; suppression segments are subtracted from every inclusion segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from leadledger.analytics.context import naive
from leadledger.domain.segments import ATTRIBUTES, Segment, dependencies
from leadledger.domain.statusmodel import FieldSpec
from leadledger.marketing.conditions_sql import Params, condition_sql
from leadledger.model.compile_automation import segment_attribute_type
from leadledger.services.errors import Invalid

# what a marketing tool imports, in this order (`segment` is added by the export)
EXPORT_ATTRIBUTES = ("id", "email", "name", "company", "status", "reason", "stage", "owner")
DAY_US = 86_400_000_000.0
ISO = "'%Y-%m-%dT%H:%M:%SZ'"


@dataclass
class MembershipSql:
    """The SQL of one membership question, with its parameters."""

    sql: str
    params: dict[str, object] = field(default_factory=dict)


class Builder:
    """Writes membership SQL for one model: its segments and fields (the attribute types)."""

    def __init__(self, segments: Mapping[str, Segment], fields: Mapping[str, FieldSpec]):
        self.segments = segments
        self.fields = fields

    def segment(self, key: str) -> Segment:
        found = self.segments.get(key)
        if found is None:
            known = ", ".join(self.segments) or "none"
            raise Invalid(f"segment: unknown segment {key!r} (segments of the active model: {known})")
        return found

    def kind_of(self, name: str) -> str:
        kind = segment_attribute_type(name, self.fields)
        if kind is None:
            raise Invalid(f"unknown attribute lead.{name}")
        return "text" if kind in ("status", "stage", "reason", "datetime") else kind

    # --- the attributes of every lead at T ---------------------------------------------------------

    def attributes(self, needed: Iterable[str], t: str, params: Params, tag: str) -> str:
        """SQL: one row per lead existing at `t` (a `$param` holding a naive UTC timestamp) with the columns
        `needed` (quoted attribute names) and "id". `tag` keeps table aliases apart when two times meet."""
        names = sorted(set(needed) | {"id"})
        i = f"i{tag}"
        columns = [f'{i}.lead_id AS "id"']
        joins: dict[str, str] = {}
        wanted_fields: set[str] = set()
        for name in names:
            if name == "id":
                continue
            expression = self._attribute(name, t, tag, joins, wanted_fields)
            columns.append(f'{expression} AS "{name}"')
        if wanted_fields:
            keys = sorted(wanted_fields)
            pivots = ", ".join(f'max(value) FILTER (WHERE key = {params.add(key)}) AS "f_{key}"' for key in keys)
            joins["fv"] = (
                f"LEFT JOIN (SELECT lead_id, {pivots} FROM fvals "
                f"WHERE list_contains({params.add(keys)}::VARCHAR[], key) AND ts <= {t} "
                f"AND (next_ts IS NULL OR next_ts > {t}) GROUP BY lead_id) fv{tag} ON fv{tag}.lead_id = {i}.lead_id"
            )
        return (
            f"SELECT {', '.join(columns)} FROM inst {i} {' '.join(joins.values())} "
            f"WHERE {i}.ts <= {t} AND ({i}.next_ts IS NULL OR {i}.next_ts > {t})"
        )

    def _attribute(self, name: str, t: str, tag: str, joins: dict[str, str], wanted: set[str]) -> str:
        i = f"i{tag}"
        if name == "status":
            return f"{i}.status"
        if name == "primary_status":
            joins["sm"] = f"LEFT JOIN smap sm{tag} ON sm{tag}.status = {i}.status"
            return f"coalesce(sm{tag}.family, {i}.status)"
        if name in ("stage", "owner"):
            return f"{i}.{name}"
        if name == "team":
            joins["om"] = f"LEFT JOIN omap om{tag} ON om{tag}.owner = {i}.owner"
            return f"om{tag}.team"
        if name == "reason":
            return f"{i}.stint_reason"
        if name == "status_since":
            return f"strftime({i}.stint_at, {ISO})"
        if name == "days_in_status":
            return f"((epoch_us({t}::TIMESTAMP) - epoch_us({i}.stint_at)) / {DAY_US})"
        if name in ("created_at", "days_since_created"):
            joins["lf"] = f"LEFT JOIN lead_facts lf{tag} ON lf{tag}.lead_id = {i}.lead_id"
            if name == "created_at":
                return f"strftime(lf{tag}.created, {ISO})"
            return f"((epoch_us({t}::TIMESTAMP) - epoch_us(lf{tag}.created)) / {DAY_US})"
        if name in ("last_activity_at", "days_since_activity"):
            joins["la"] = (
                f"LEFT JOIN (SELECT lead_id, max(ts) AS last_at FROM act_m WHERE ts <= {t} GROUP BY lead_id) "
                f"la{tag} ON la{tag}.lead_id = {i}.lead_id"
            )
            if name == "last_activity_at":
                return f"strftime(la{tag}.last_at, {ISO})"
            return f"((epoch_us({t}::TIMESTAMP) - epoch_us(la{tag}.last_at)) / {DAY_US})"
        if name == "re_evaluation_due":
            wanted.add("re_evaluate_on")
            return f'coalesce(TRY_CAST(fv{tag}."f_re_evaluate_on" AS DATE) <= CAST({t}::TIMESTAMP AS DATE), false)'
        if name in ATTRIBUTES:
            raise AssertionError(f"attribute {name} has no SQL")
        kind = self.kind_of(name)
        wanted.add(name)
        value = f'fv{tag}."f_{name}"'
        if kind == "bool":
            return f"(CASE lower({value}) WHEN 'true' THEN true WHEN 'false' THEN false END)"
        if kind == "number":
            return f"TRY_CAST({value} AS DOUBLE)"
        return value

    # --- membership --------------------------------------------------------------------------------

    def order(self, keys: Iterable[str]) -> list[str]:
        """`keys` and every segment they depend on, each after its dependencies."""
        order: list[str] = []
        for key in keys:
            self.segment(key)
            order += [name for name in dependencies(self.segments, key) if name not in order]
        return order

    def flagged(self, keys: Sequence[str], t: str, params: Params, tag: str, extra: Iterable[str] = ()) -> str:
        """SQL: the attributes at `t` of every lead, with a boolean column "m_<segment>" for each of `keys` and
        every segment they depend on."""
        order = self.order(keys)
        needed = set(extra)
        for name in order:
            needed |= set(self.segments[name].attributes)
        suppressions = [s.key for s in self.segments.values() if s.suppression]
        ctes = [f"a{tag} AS ({self.attributes(needed, t, params, tag)})"]
        previous = f"a{tag}"

        def column(name: str) -> tuple[str, str]:
            return f'"{name}"', self.kind_of(name)

        for index, name in enumerate(order):
            segment = self.segments[name]
            chosen = [condition_sql(segment.when.source, column, params) if segment.when is not None else "false"]
            chosen += [f'"m_{other}"' for other in segment.include]
            removed = [f'"m_{other}"' for other in segment.exclude]
            if not segment.suppression:
                removed += [f'"m_{other}"' for other in suppressions]
            expression = "(" + " OR ".join(chosen) + ")"
            if removed:
                expression += " AND NOT (" + " OR ".join(removed) + ")"
            step = f"s{tag}_{index}"
            ctes.append(f'{step} AS (SELECT *, {expression} AS "m_{name}" FROM {previous})')
            previous = step
        return "WITH " + ", ".join(ctes) + f" SELECT * FROM {previous}"

    def members(self, key: str, as_of: datetime, columns: Sequence[str] = ("id",)) -> MembershipSql:
        """SQL listing the members of `key` at `as_of` (the `columns` asked for), ordered by lead id."""
        params = Params("p")
        t = params.add(naive(as_of))
        inner = self.flagged([key], t, params, "", columns)
        selected = ", ".join(f'"{c}"' for c in columns)
        return MembershipSql(f'SELECT {selected} FROM ({inner}) WHERE "m_{key}" ORDER BY "id"', params.values)

    def flags(self, keys: Sequence[str], as_of: datetime) -> MembershipSql:
        """SQL: every lead at `as_of` with one boolean column per segment of `keys` (in that order)."""
        params = Params("p")
        t = params.add(naive(as_of))
        inner = self.flagged(keys, t, params, "")
        columns = ", ".join(f'"m_{key}"' for key in keys)
        return MembershipSql(f'SELECT "id", {columns} FROM ({inner})', params.values)

    def counts(self, keys: Sequence[str], as_of: datetime, by: str | None = None) -> MembershipSql:
        """SQL: the number of members of each of `keys` at `as_of` (columns in the order of `keys`), per value of
        the attribute `by` when given (first column)."""
        params = Params("p")
        t = params.add(naive(as_of))
        inner = self.flagged(keys, t, params, "", [by] if by else [])
        counts = ", ".join(f'count(*) FILTER (WHERE "m_{key}")' for key in keys)
        if by is None:
            return MembershipSql(f"SELECT {counts} FROM ({inner})", params.values)
        return MembershipSql(f'SELECT "{by}", {counts} FROM ({inner}) GROUP BY 1 ORDER BY 1 NULLS LAST', params.values)

    def changes(self, key: str, since: datetime, until: datetime, columns: Sequence[str]) -> MembershipSql:
        """SQL: the leads in `key` at `until` and not at `since` (entered) or the other way round (left), each
        with the `columns` as they were at `until`."""
        params = Params("p")
        t1, t2 = params.add(naive(since)), params.add(naive(until))
        before = self.flagged([key], t1, params, "b")
        after = self.flagged([key], t2, params, "c", columns)
        selected = ", ".join(f'n."{c}"' for c in columns)
        sql = f"""
            SELECT CASE WHEN o.id IS NULL THEN 'entered' ELSE 'left' END AS change, coalesce(n."id", o.id) AS lead,
                   {selected}
            FROM (SELECT id FROM ({before}) WHERE "m_{key}") o
            FULL OUTER JOIN (SELECT *, "m_{key}" AS member FROM ({after})) n ON n."id" = o.id
            WHERE (o.id IS NULL AND n.member) OR (o.id IS NOT NULL AND NOT coalesce(n.member, false))
            ORDER BY 1, 2"""
        return MembershipSql(sql, params.values)
