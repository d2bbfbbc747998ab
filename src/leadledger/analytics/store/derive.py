"""The derived tables: instants, stints (with business time per calendar), first touch, lead facts, field
values — recomputed for the leads new rows concern, or for every lead when the model or the day range changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadledger.analytics import benchmarks as seed
from leadledger.analytics.calendar_days import DayTable, build_day_table, day_number
from leadledger.analytics.store.connection import (
    ProgressFn,
    SyncStats,
    count_rows,
    memory_limit,
    read_meta,
    rebuild_memory_limit,
    safe_setting,
    write_meta,
)
from leadledger.domain.segments import LEDGER_META_KEYS
from leadledger.domain.statusmodel import StatusModel

if TYPE_CHECKING:  # duckdb is imported where a store is opened: every CLI call would pay ~0.1 s for it
    import duckdb


DERIVED_VERSION = "7"  # the derived tables: a change recomputes them from the copy
FULL_REBUILD_SHARE = 0.2  # recompute every lead when more than this share of leads is touched at once
FULL_REBUILD_MIN = 10_000  # ... and at least this many (small stores always update in place)
DAYS_BEFORE = 31  # margin of the business-time day table before the earliest entry
DAYS_AFTER = 800  # ... and after the latest entry (or today), so a year of new entries fits without a rebuild


# --- derived tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    """What the derived tables take from the status model; a change to any of it rebuilds them.

    ``nodes`` are what funnels and cohorts ask about: each primary status with its sub-statuses, and each
    sub-status alone. ``pairs`` are the funnel steps the built-in reports use; ``lead_facts`` holds, per lead,
    the first entry into each node and the first entry into B after the first entry into A for each pair.
    """

    calendars: tuple[str, ...]
    initial_family: tuple[str, ...]
    outreach_types: tuple[str, ...]
    families: tuple[tuple[str, str], ...]
    nodes: tuple[tuple[str, tuple[str, ...]], ...]
    pairs: tuple[tuple[str, str], ...]
    final_stage: str
    no_touch: tuple[str, ...] = ()  # statuses entering which is no first touch: data problems (Invalid, Duplicate)

    @classmethod
    def of(cls, model: StatusModel) -> ModelFacts:
        initial = model.initial_status
        family = (initial, *model.children.get(initial, ()))
        families = tuple((s.key, s.parent or s.key) for s in model.statuses.values())
        nodes = tuple((key, seed.family_of(model, key)) for key in model.statuses)
        return cls(
            tuple(model.calendars),
            family,
            outreach_activity_types(model),
            families,
            nodes,
            tuple(seed.standard_pairs(model)),
            model.stages[-1].key,
            tuple(s.key for s in model.statuses.values() if s.category == "data_problem"),
        )

    def node_index(self, key: str) -> int | None:
        for i, (name, _) in enumerate(self.nodes):
            if name == key:
                return i
        return None

    def digest(self) -> str:
        return json.dumps([DERIVED_VERSION, self.calendars, self.initial_family, self.outreach_types, self.families, self.nodes,
                           self.pairs, self.final_stage, self.no_touch])  # fmt: skip


def outreach_activity_types(model: StatusModel) -> tuple[str, ...]:
    """Activity types that count as a touch: those the entry rule of the forward path's first status after
    the initial one (and its sub-statuses) asks for — Attempting Contact's "contact attempt logged"."""
    initial = model.initial_status
    family = {initial, *model.children.get(initial, ())}
    for key in model.forward_path:
        status = model.statuses.get(key)
        if status is None or key in family or status.parent in family:
            continue
        if status.entry.activity is not None:
            return tuple(sorted({match.type for match in status.entry.activity.any_of}))
        break
    return ()


def rebuild_derived(
    conn: duckdb.DuckDBPyConnection,
    model: StatusModel,
    model_id: str,
    meta: dict[str, str],
    stats: SyncStats,
    progress: ProgressFn | None,
) -> None:
    facts = ModelFacts.of(model)
    bounds = conn.execute("SELECT min(ts), max(ts) FROM ledger_m").fetchall()[0]
    if bounds[0] is None:
        # no ledger yet: the tables exist (empty) so reports answer with zeros
        now_day = day_number(datetime.now(UTC))
        calendars = [model.calendars[name] for name in facts.calendars]
        _write_day_table(conn, build_day_table(calendars, now_day - DAYS_BEFORE, now_day + DAYS_AFTER))
        write_meta(conn, {"day_first": now_day - DAYS_BEFORE, "day_end": now_day + DAYS_AFTER})
        _derive(conn, facts, None)
        write_meta(conn, {"facts": facts.digest()})
        return
    first_seen = day_number(bounds[0].replace(tzinfo=UTC))
    last_seen = day_number(max(bounds[1].replace(tzinfo=UTC), datetime.now(UTC)))
    day_first = int(meta.get("day_first", 0) or 0)
    day_end = int(meta.get("day_end", 0) or 0)
    tables_exist = bool(conn.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'stints'").fetchall())
    full = (
        not tables_exist
        or meta.get("facts") != facts.digest()
        or meta.get("model_id") != model_id
        or not (day_first <= first_seen and last_seen < day_end)
    )
    affected = count_rows(conn, "affected")
    total_leads = max(1, count_rows(conn, "leads_m"))
    if not full and affected > max(FULL_REBUILD_MIN, FULL_REBUILD_SHARE * total_leads):
        full = True  # recomputing everything beats deleting and re-inserting most of it
    if full:
        if not (day_first <= first_seen and last_seen < day_end) or meta.get("model_id") != model_id:
            day_first, day_end = first_seen - DAYS_BEFORE, last_seen + DAYS_AFTER
        calendars = [model.calendars[name] for name in facts.calendars]
        _write_day_table(conn, build_day_table(calendars, day_first, day_end))
        write_meta(conn, {"day_first": day_first, "day_end": day_end})
    if progress:
        progress("derive", 0, 1)
    if full:
        stats.full_rebuild = True
        stats.derived_leads = total_leads
        conn.execute(f"SET memory_limit = '{safe_setting(rebuild_memory_limit())}'")
        try:
            _derive(conn, facts, None)
        finally:
            conn.execute(f"SET memory_limit = '{safe_setting(memory_limit())}'")
    elif affected:
        stats.derived_leads = int(conn.execute("SELECT count(DISTINCT lead_id) FROM affected").fetchall()[0][0])
        _derive(conn, facts, "affected")
    write_meta(conn, {"facts": facts.digest()})
    if progress:
        progress("derive", 1, 1)


def _write_day_table(conn: duckdb.DuckDBPyConnection, table: DayTable) -> None:
    slots = ", ".join(f"s{i} BIGINT, l{i} BIGINT" for i in range(table.slots))
    conn.execute("DROP TABLE IF EXISTS calday")
    conn.execute(f"CREATE TABLE calday (cal INTEGER, day INTEGER, cum0 BIGINT, {slots})")
    # one statement with a list per column: executemany would cost a round trip per row
    columns = list(zip(*table.rows, strict=True))
    names = [f"c{i}" for i in range(len(columns))]
    unnests = ", ".join(f"unnest(${name})" for name in names)
    conn.execute(f"INSERT INTO calday SELECT {unnests}", {n: list(c) for n, c in zip(names, columns, strict=True)})
    write_meta(conn, {"day_slots": table.slots})


def cum_sql(alias: str, instant_us: str, slots: int) -> str:
    """Business microseconds since the day table's origin at `instant_us`, read from calday row `alias`."""
    parts = " + ".join(f"least(greatest({instant_us} - {alias}.s{i}, 0), {alias}.l{i})" for i in range(slots))
    return f"({alias}.cum0 + {parts})"


def _cum_list(conn: duckdb.DuckDBPyConnection, calendars: int, ts_column: str, alias: str) -> tuple[str, str]:
    """A list expression [cum for calendar 0, 1, ...] for `ts_column` plus the joins it needs."""
    slots = int(read_meta(conn).get("day_slots", 1))
    joins = []
    parts = []
    for k in range(calendars):
        join_alias = f"{alias}{k}"
        joins.append(
            f"LEFT JOIN calday {join_alias} ON {join_alias}.cal = {k} "
            f"AND {join_alias}.day = CAST(epoch_us({ts_column}) // 86400000000 AS INTEGER)"
        )
        parts.append(cum_sql(join_alias, f"epoch_us({ts_column})", slots))
    return f"CASE WHEN {ts_column} IS NULL THEN NULL ELSE [{', '.join(parts)}] END", " ".join(joins)


def _derive(conn: duckdb.DuckDBPyConnection, facts: ModelFacts, affected: str | None) -> None:
    """(Re)compute inst, stints, first_touch and lead_facts for the affected leads, or every lead when None."""
    lead_filter = f"WHERE lead_id IN (SELECT lead_id FROM {affected})" if affected else ""
    conn.execute("CREATE OR REPLACE TEMP TABLE fam (status VARCHAR, family VARCHAR)")
    if facts.families:
        conn.execute(
            "INSERT INTO fam SELECT unnest($s), unnest($f)",
            {"s": [a for a, _ in facts.families], "f": [b for _, b in facts.families]},
        )
    # one instant per (lead, at): the highest seq holds the state; the last status-changing entry at that
    # instant says how the status was entered (source, actor, reason, rule...)
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE x_keys AS
        SELECT lead_id, ts, max(seq) AS seq,
               max(seq) FILTER (WHERE from_status IS DISTINCT FROM to_status) AS set_seq
        FROM ledger_m {lead_filter} GROUP BY lead_id, ts"""
    )
    ec, ec_joins = _cum_list(conn, len(facts.calendars), "x.ts", "ce")
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE x_inst AS
        WITH w AS (
            SELECT k.lead_id, k.ts, w.to_status AS status, w.to_stage AS stage, w.to_owner AS owner,
                   coalesce(f.family, w.to_status) AS family,
                   e.source, e.actor, e.actor_role, e.reason, e.rule, e.off_model, e.re_eval
            FROM x_keys k
            JOIN ledger_m w ON w.lead_id = k.lead_id AND w.seq = k.seq
            JOIN ledger_m e ON e.lead_id = k.lead_id AND e.seq = coalesce(k.set_seq, k.seq)
            LEFT JOIN fam f ON f.status = w.to_status),
        x AS (
            SELECT w.*,
                   lead(ts) OVER lw AS next_ts,
                   lag(status) OVER lw AS prev_status,
                   lag(owner) OVER lw AS prev_owner,
                   lag(family) OVER lw AS prev_family,
                   row_number() OVER lw AS k
            FROM w WINDOW lw AS (PARTITION BY lead_id ORDER BY ts))
        SELECT x.*, x.prev_status IS DISTINCT FROM x.status AS starts_stint,
               CASE WHEN x.prev_status IS DISTINCT FROM x.status THEN {ec} END AS ec
        FROM x {ec_joins}"""
    )
    # each instant carries its stint (start, owner, business counters, re-evaluation date) and the start of
    # the current run of its status family, so "the state at T" needs no join
    inst_sql = """
        SELECT lead_id, ts, status, stage, owner, next_ts,
               max(CASE WHEN starts_stint THEN ts END) OVER fw AS stint_at,
               last_value(CASE WHEN starts_stint THEN {'owner': owner, 'ec': ec, 're_eval': re_eval, 'reason': reason} END IGNORE NULLS)
                   OVER fw AS stint,
               max(CASE WHEN prev_family IS DISTINCT FROM family THEN ts END) OVER fw AS run_at
        FROM x_inst
        WINDOW fw AS (PARTITION BY lead_id ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"""
    inst_sql = f"""SELECT lead_id, ts, status, stage, owner, next_ts, stint_at, stint.owner AS stint_owner,
                          stint.ec AS stint_ec, stint.re_eval AS re_eval, stint.reason AS stint_reason, run_at
                   FROM ({inst_sql})"""
    stints_sql = """
        SELECT lead_id, status, ts AS entered_at,
               lead(ts) OVER sw AS left_at, lead(status) OVER sw AS next_status,
               lag(status) OVER sw AS prev_status, lag(reason) OVER sw AS prev_reason,
               source AS entry_source, actor AS entry_actor, actor_role AS entry_role, reason AS entry_reason,
               rule AS entry_rule, owner AS entry_owner, stage AS entry_stage, off_model AS entry_off_model,
               re_eval, ec, lead(ec) OVER sw AS lc
        FROM x_inst WHERE starts_stint
        WINDOW sw AS (PARTITION BY lead_id ORDER BY ts)"""
    # a closed stint's activities (logged from entering to leaving), counted once here rather than by a range
    # join in every governance report (1.2 s of it at 1 M leads); a late activity re-derives its lead's stints
    act_filter = f"WHERE lead_id IN (SELECT lead_id FROM {affected})" if affected else ""
    stints_sql = f"""
        WITH s AS ({stints_sql}),
        c AS (
            SELECT s.lead_id, s.entered_at, count(*) AS n
            FROM s JOIN (SELECT lead_id, ts FROM act_m {act_filter}) a
                 ON a.lead_id = s.lead_id AND a.ts >= s.entered_at AND a.ts < s.left_at
            GROUP BY s.lead_id, s.entered_at)
        SELECT s.*, CASE WHEN s.left_at IS NOT NULL THEN coalesce(c.n, 0) END AS acts
        FROM s LEFT JOIN c ON c.lead_id = s.lead_id AND c.entered_at = s.entered_at"""
    since_c, since_joins = _cum_list(conn, len(facts.calendars), "t.owner_since", "cs")
    touch_c, touch_joins = _cum_list(conn, len(facts.calendars), "t.touch_at", "ct")
    touch_sql = f"""
        WITH moves AS (
            SELECT lead_id, min(ts) AS moved_at FROM x_inst
            WHERE NOT list_contains($initial, status) AND NOT list_contains($no_touch::VARCHAR[], status) GROUP BY lead_id),
        outreach AS (
            SELECT lead_id, min(first_ts) AS touched_at FROM act_first
            WHERE list_contains($outreach, type) {"AND lead_id IN (SELECT lead_id FROM " + affected + ")" if affected else ""}
            GROUP BY lead_id),
        touches AS (
            SELECT coalesce(m.lead_id, o.lead_id) AS lead_id,
                   least(coalesce(m.moved_at, o.touched_at), coalesce(o.touched_at, m.moved_at)) AS touch_at
            FROM moves m FULL OUTER JOIN outreach o ON o.lead_id = m.lead_id),
        t AS (
            SELECT h.lead_id, h.touch_at,
                   arg_max_null(i.owner, i.ts) AS owner,
                   max(i.ts) FILTER (WHERE i.k = 1 OR i.owner IS DISTINCT FROM i.prev_owner) AS owner_since
            FROM touches h JOIN x_inst i ON i.lead_id = h.lead_id AND i.ts <= h.touch_at
            GROUP BY h.lead_id, h.touch_at)
        SELECT t.lead_id, t.touch_at, t.owner, CASE WHEN t.owner IS NULL THEN NULL ELSE t.owner_since END AS owner_since,
               CASE WHEN t.owner IS NULL THEN NULL ELSE {since_c} END AS since_c, {touch_c} AS touch_c
        FROM t {since_joins} {touch_joins}"""
    params = {
        "initial": list(facts.initial_family),
        "outreach": list(facts.outreach_types),
        "no_touch": list(facts.no_touch),
    }
    # when each person first owned each lead: "handled by T" is first_at <= T
    owners_sql = (
        "SELECT lead_id, owner, min(ts) AS first_at FROM x_inst WHERE owner IS NOT NULL GROUP BY lead_id, owner"
    )
    fvals_sql = _field_values_sql(lead_filter)
    if affected is None:
        # stored by field so a question about a few fields (a segment's) reads only their row groups
        conn.execute(f"CREATE OR REPLACE TABLE fvals AS {fvals_sql} ORDER BY key, lead_id")
        conn.execute(f"CREATE OR REPLACE TABLE lead_owners AS {owners_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE inst AS {inst_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE stints AS {stints_sql}")
        conn.execute(f"CREATE OR REPLACE TABLE first_touch AS {touch_sql}", params)
        conn.execute(f"CREATE OR REPLACE TABLE lead_facts AS {_lead_facts_sql(facts, None)}", _lead_facts_params(facts))
    else:
        for table in ("inst", "stints", "first_touch", "lead_facts", "lead_owners", "fvals"):
            conn.execute(f"DELETE FROM {table} WHERE lead_id IN (SELECT lead_id FROM {affected})")
        conn.execute(f"INSERT INTO fvals {fvals_sql}")
        conn.execute(f"INSERT INTO lead_owners {owners_sql}")
        conn.execute(f"INSERT INTO inst {inst_sql}")
        conn.execute(f"INSERT INTO stints {stints_sql}")
        conn.execute(f"INSERT INTO first_touch {touch_sql}", params)
        conn.execute(f"INSERT INTO lead_facts {_lead_facts_sql(facts, affected)}", _lead_facts_params(facts))
    for temp in ("x_keys", "x_inst", "fam"):
        conn.execute(f"DROP TABLE IF EXISTS {temp}")


def _field_values_sql(lead_filter: str) -> str:
    """Every field value each entry set, the last one per (lead, field, instant), valid until the next one.

    The ledger's `data` is what the entry captured (the lead's fields it set; null clears one); folded in
    (at, seq) order it gives the lead's fields at any time, as the projection holds them now."""
    meta = ", ".join(f"'{key}'" for key in sorted(LEDGER_META_KEYS))
    where = f"{lead_filter} AND data IS NOT NULL" if lead_filter else "WHERE data IS NOT NULL"
    return f"""
        WITH kv AS (
            SELECT lead_id, ts, seq, unnest(map_entries(CAST(CAST(data AS JSON) AS MAP(VARCHAR, JSON)))) AS e
            FROM ledger_m {where}),
        one AS (
            SELECT lead_id, e.key AS key, ts, arg_max_null(json_extract_string(e.value, '$'), seq) AS value
            FROM kv WHERE e.key NOT IN ({meta}) GROUP BY ALL)
        SELECT lead_id, key, ts, value, lead(ts) OVER (PARTITION BY lead_id, key ORDER BY ts) AS next_ts FROM one"""


def _lead_facts_params(facts: ModelFacts) -> dict[str, Any]:
    params: dict[str, Any] = {"final_stage": facts.final_stage}
    for i, (_, members) in enumerate(facts.nodes):
        params[f"n{i}"] = list(members)
    return params


def _lead_facts_sql(facts: ModelFacts, affected: str | None) -> str:
    """One row per lead of facts that never change with the as-of time, because each is a *first* time:
    created, first owned, first touched, reached the final stage, first entry into each node (and the owner
    then), and for each standard pair the first entry into B after the first entry into A. "Had it happened
    by T" is then `column <= T`."""
    firsts = []
    for i, _ in enumerate(facts.nodes):
        firsts.append(f"min(s.entered_at) FILTER (WHERE list_contains($n{i}, s.status)) AS f{i}")
        firsts.append(
            f"arg_min_null(s.entry_owner, s.entered_at) FILTER (WHERE list_contains($n{i}, s.status)) AS o{i}"
        )
        firsts.append(
            f"arg_min_null(s.entry_reason, s.entered_at) FILTER (WHERE list_contains($n{i}, s.status)) AS why{i}"
        )
    reaches = []
    for j, (a, b) in enumerate(facts.pairs):
        ia, ib = facts.node_index(a), facts.node_index(b)
        reaches.append(
            f"min(s.entered_at) FILTER (WHERE list_contains($n{ib}, s.status) AND s.entered_at > f.f{ia}) AS r{j}"
        )
    scope = f"WHERE lead_id IN (SELECT lead_id FROM {affected})" if affected else ""
    stints = f"(SELECT * FROM stints {scope})"
    reach_sql = ", ".join(reaches) if reaches else "NULL AS r_none"
    return f"""
        WITH f AS (
            SELECT s.lead_id, min(s.entered_at) AS created, {", ".join(firsts)}
            FROM {stints} s GROUP BY s.lead_id),
        r AS (
            SELECT s.lead_id, {reach_sql}
            FROM {stints} s JOIN f ON f.lead_id = s.lead_id GROUP BY s.lead_id),
        i AS (
            SELECT lead_id, min(ts) FILTER (WHERE owner IS NOT NULL) AS assigned_at,
                   min(ts) FILTER (WHERE stage = $final_stage) AS closed_at
            FROM (SELECT * FROM inst {scope}) GROUP BY lead_id)
        SELECT f.*, r.* EXCLUDE (lead_id), i.assigned_at, i.closed_at, t.touch_at, lm.source, lm.campaign,
               lm.incomplete
        FROM f JOIN r USING (lead_id) JOIN i USING (lead_id)
        LEFT JOIN (SELECT lead_id, touch_at FROM first_touch {scope}) t USING (lead_id)
        LEFT JOIN leads_m lm ON lm.id = f.lead_id"""


def day_table_origin(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The instant stored business counters start from (None before the first sync with data)."""
    first = read_meta(conn).get("day_first")
    if not first:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(first))
