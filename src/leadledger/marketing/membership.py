"""Segment membership at a time T, set-based, from the analytics store's copy of the ledger.

Every lead that exists at T gets the attributes a segment condition may read, as the ledger says they were
then: its state from `inst` (status, stage, owner, the reason it entered its status, since when), its fields
from `fvals` (the data its entries captured, folded up to T), its last activity from `act_m`, its team
from today's users, and whether its account was flagged for review at T from `flags_m` (every flag with its
raised, cleared and dismissed times). The account is the lead's current one (`leads_m.account_key`): a lead
whose company changed counts with its new account for past times too, an approximation the key's
normalisation (Python, `domain.contacts.account_key`) makes cheaper than folding it from `fvals` at T. The conditions, compiled to SQL, then mark each lead in or out of each segment the
asked-for segment depends on; suppression segments are subtracted from every inclusion segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from leadledger.analytics.context import naive
from leadledger.domain.segments import ACCOUNT_ATTRIBUTES, ATTRIBUTES, Segment, dependencies
from leadledger.domain.statusmodel import FieldSpec
from leadledger.marketing.conditions_sql import Params, condition_sql
from leadledger.model.compile_automation import segment_attribute_type
from leadledger.services.csvcells import FORMULA_STARTS, GUARD
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
        for name in names:
            if name == "id":
                continue
            expression = self._attribute(name, t, params, tag, joins)
            columns.append(f'{expression} AS "{name}"')
        return (
            f"SELECT {', '.join(columns)} FROM inst {i} {' '.join(joins.values())} "
            f"WHERE {i}.ts <= {t} AND ({i}.next_ts IS NULL OR {i}.next_ts > {t})"
        )

    @staticmethod
    def _field(key: str, t: str, params: Params, tag: str, joins: dict[str, str]) -> str:
        """SQL: the lead's field `key` at `t`. One join per field: at most one value of a field is valid at a
        time, so this is a lookup, and far cheaper than pivoting text values with an aggregate (fvals is stored
        by field, so each join reads only its field's rows)."""
        joined = f"field:{key}"
        fields = [name for name in joins if name.startswith("field:")]
        alias = f"fv{tag}_{fields.index(joined) if joined in fields else len(fields)}"
        if joined not in joins:
            joins[joined] = (
                f"LEFT JOIN (SELECT lead_id, value FROM fvals WHERE key = {params.add(key)} AND ts <= {t} "
                f"AND (next_ts IS NULL OR next_ts > {t})) {alias} ON {alias}.lead_id = i{tag}.lead_id"
            )
        return f"{alias}.value"

    def _attribute(self, name: str, t: str, params: Params, tag: str, joins: dict[str, str]) -> str:
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
            value = self._field("re_evaluate_on", t, params, tag, joins)
            return f"coalesce(TRY_CAST({value} AS DATE) <= CAST({t}::TIMESTAMP AS DATE), false)"
        if name == "account.flagged":
            # the few leads of accounts flagged at t, not every lead's account: a semi-join on a small set
            return (
                f"({i}.lead_id IN (SELECT lm.id FROM leads_m lm WHERE lm.account_key IN ("
                f"SELECT account FROM flags_m WHERE raised_at <= {t} AND (cleared_at IS NULL OR cleared_at > {t}) "
                f"AND (dismissed_at IS NULL OR dismissed_at > {t}))))"
            )
        if name in ATTRIBUTES or name.partition(".")[2] in ACCOUNT_ATTRIBUTES:
            raise AssertionError(f"attribute {name} has no SQL")
        kind = self.kind_of(name)
        value = self._field(name, t, params, tag, joins)
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

    def _member_rows(self, key: str, t: str, params: Params, columns: Sequence[str]) -> str:
        """SQL: the members of `key` at `t` with `columns`. A field no condition of the segment reads (an
        export's e-mail, name, company) is looked up for the members only, after the conditions have chosen
        them, rather than for every lead."""
        read = set().union(*(self.segments[name].attributes for name in self.order([key])))
        late = [c for c in columns if c not in read and c not in ATTRIBUTES and "." not in c]
        inner = self.flagged([key], t, params, "", [c for c in columns if c not in late])
        joins: dict[str, str] = {}
        selected = [f'il."{c}"' if c not in late else f'{self._attribute(c, t, params, "l", joins)} AS "{c}"'
                    for c in columns]  # fmt: skip
        return (
            f"SELECT {', '.join(selected)} FROM (SELECT *, \"id\" AS lead_id FROM ({inner}) WHERE \"m_{key}\") il "
            + " ".join(joins.values())
        )

    def members(
        self, key: str, as_of: datetime, columns: Sequence[str] = ("id",), *, ordered: bool = True
    ) -> MembershipSql:
        """SQL listing the members of `key` at `as_of` (the `columns` asked for), by lead id if `ordered`."""
        params = Params("p")
        t = params.add(naive(as_of))
        rows = self._member_rows(key, t, params, columns)
        return MembershipSql(f'SELECT * FROM ({rows})' + (' ORDER BY "id"' if ordered else ""), params.values)

    def export_lines(self, key: str, as_of: datetime, fmt: str) -> MembershipSql:
        """SQL: one line of export text per member of `key` at `as_of`, in lead id order: a CSV line of
        `EXPORT_ATTRIBUTES` and the segment (cells guarded as `services.csvcells.safe_cell` guards them, quoted as
        the csv module quotes, and a carriage return quoted too), or a JSON object. The store writes the text,
        so an export costs Python one string per lead."""
        params = Params("p")
        t = params.add(naive(as_of))
        rows = self._member_rows(key, t, params, EXPORT_ATTRIBUTES)
        segment = f"{params.add(key)}::VARCHAR"
        if fmt == "csv":
            cells = [_csv_cell(f'"{name}"') for name in EXPORT_ATTRIBUTES]
            line = "concat(" + ", ',', ".join([*cells, _csv_cell(segment)]) + ")"  # one string per line, not 17
        elif fmt == "json":
            fields = ", ".join(f'"{name}" := "{name}"' for name in EXPORT_ATTRIBUTES)
            line = f'CAST(to_json(struct_pack({fields}, "segment" := {segment})) AS VARCHAR)'
        else:
            raise ValueError(f"export format {fmt!r}")
        return MembershipSql(f'SELECT {line} FROM ({rows}) ORDER BY "id"', params.values)

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
        if len(keys) == 1:  # a filter the store pushes into the conditions' joins, not a test on every lead
            inner, counts = f'SELECT * FROM ({inner}) WHERE "m_{keys[0]}"', "count(*)"
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


def _sql_text(text: str) -> str:
    """A constant as an SQL string literal (only for the fixed characters below, never for data)."""
    return "(" + " || ".join(f"chr({ord(c)})" for c in text) + ")" if text else "''"


# the guard's test and the characters that make a cell need quotes, as SQL (from `services.csvcells`)
_FORMULA_SQL = " OR ".join(f"starts_with({{x}}, {_sql_text(c)})" for c in FORMULA_STARTS)  # not IN: a join
_QUOTED_SQL = " OR ".join(f"contains({{x}}, {_sql_text(c)})" for c in (",", '"', "\n", "\r"))


def _csv_cell(x: str) -> str:
    """SQL: the text `x` as one CSV cell: empty for NULL, the formula guard before a formula character (as
    `services.csvcells.safe_cell`), and in double quotes (quotes doubled) when it holds a comma, a quote or a
    line break (as the csv module quotes, a carriage return included)."""
    guarded = f"(CASE WHEN {_FORMULA_SQL.format(x=x)} THEN {_sql_text(GUARD)} || {x} ELSE {x} END)"
    quoted = f"""'"' || replace({guarded}, '"', '""') || '"'"""
    return f"coalesce(CASE WHEN {_QUOTED_SQL.format(x=x)} THEN {quoted} ELSE {guarded} END, '')"
