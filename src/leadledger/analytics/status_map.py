"""Reports read recorded status keys through the model's migrations — here, in one place.

A model version may rename, merge or split statuses (`domain.migrations`); the ledger keeps the keys that
were recorded. So that a quarter spanning the change is comparable, the analytics copy of the ledger
(`ledger_m`) holds each entry's `from_status` / `to_status` *as the newest model names them*, composed across
every stored version; `ledger_rec` keeps the recorded keys of the entries that were mapped. Everything that
reads `ledger_m` — the stints, the funnels, the per-entry reports (off-model moves, overrides, per-rep status
usage), governance and the council pack — therefore sees one vocabulary, and nothing else has to know.

How an entry maps: by its recorded key; a split decides by the entry's stage, or by the reason its status was
entered with (the reason of the last status-changing entry up to it, as `domain.timeline` folds it), and
`from_status` reads as the previous entry's mapped status when that entry recorded it. When the composed map
changes (a new model version), every mapped entry is restored and mapped again; otherwise only the leads with
new entries are (re)mapped.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from leadledger.domain.migrations import MapRule, flatten

if TYPE_CHECKING:
    import duckdb

META_KEY = "status_map"


def rules_for(source_conn: Connection) -> list[MapRule]:
    """The composed map of the database's stored model versions, flattened for SQL."""
    from leadledger.services.status_migrations import effective_map

    return flatten(effective_map(source_conn))


def digest(rules: list[MapRule]) -> str:
    return json.dumps([[r.rank, r.recorded, r.stages, r.reasons, r.mapped] for r in rules])


def apply(conn: duckdb.DuckDBPyConnection, rules: list[MapRule], new_leads: str | None) -> None:
    """Map `ledger_m`: every entry when the map changed (or was never applied to this store), otherwise the
    entries of the leads in the temp table `new_leads` (those whose ledger grew)."""
    stored = dict(conn.execute("SELECT key, value FROM meta WHERE key = $k", {"k": META_KEY}).fetchall())
    wanted = digest(rules)
    if META_KEY not in stored:
        # a new or reset store: ledger_m holds recorded keys only, whatever an older ledger_rec says
        conn.execute("DROP TABLE IF EXISTS ledger_rec")
    conn.execute("CREATE TABLE IF NOT EXISTS ledger_rec (id BIGINT, from_status VARCHAR, to_status VARCHAR)")
    full = stored.get(META_KEY) != wanted
    if not full and not rules:
        return
    scope = "" if full or new_leads is None else f"lead_id IN (SELECT lead_id FROM {new_leads})"
    if not full and new_leads is None:
        return
    _restore(conn, scope)
    if rules:
        _map(conn, rules, scope)
    conn.execute(
        "INSERT INTO meta VALUES ($k, $v) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        {"k": META_KEY, "v": wanted},
    )


def _restore(conn: duckdb.DuckDBPyConnection, scope: str) -> None:
    """Put the recorded keys back (all entries, or those of the leads in scope)."""
    where = f"AND l.{scope}" if scope else ""
    conn.execute(
        f"""UPDATE ledger_m AS l SET from_status = r.from_status, to_status = r.to_status
            FROM ledger_rec r WHERE l.id = r.id {where}"""
    )
    if scope:
        conn.execute(f"DELETE FROM ledger_rec WHERE id IN (SELECT id FROM ledger_m WHERE {scope})")
    else:
        conn.execute("DELETE FROM ledger_rec")


def _map(conn: duckdb.DuckDBPyConnection, rules: list[MapRule], scope: str) -> None:
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE smap (rank INTEGER, recorded VARCHAR, stages VARCHAR[], reasons VARCHAR[], "
        "mapped VARCHAR)"
    )
    columns: dict[str, list[Any]] = {
        "rank": [r.rank for r in rules],
        "recorded": [r.recorded for r in rules],
        "stages": [list(r.stages) if r.stages is not None else None for r in rules],
        "reasons": [list(r.reasons) if r.reasons is not None else None for r in rules],
        "mapped": [r.mapped for r in rules],
    }
    conn.execute(
        "INSERT INTO smap SELECT unnest($rank), unnest($recorded), unnest($stages), unnest($reasons), "
        "unnest($mapped)",
        columns,
    )
    keys = "(SELECT recorded FROM smap)"
    in_scope = f"AND {scope}" if scope else ""

    def lookup(status: str, stage: str, reason: str) -> str:
        return f"""(SELECT m.mapped FROM smap m WHERE m.recorded = {status}
                     AND (m.stages IS NULL OR list_contains(m.stages, {stage}))
                     AND (m.reasons IS NULL OR coalesce(list_contains(m.reasons, {reason}), false))
                     ORDER BY m.rank LIMIT 1)"""

    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE x_map AS
        WITH l AS (
            SELECT id, lead_id, seq, ts, from_status, to_status, to_stage, reason FROM ledger_m
            WHERE lead_id IN (SELECT lead_id FROM ledger_m WHERE to_status IN {keys} OR from_status IN {keys})
            {in_scope}),
        e AS (
            SELECT *, (last_value(CASE WHEN from_status IS DISTINCT FROM to_status THEN {{'r': reason}} END
                                  IGNORE NULLS) OVER w).r AS entry_reason
            FROM l WINDOW w AS (PARTITION BY lead_id ORDER BY ts, seq
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)),
        t AS (
            SELECT e.*, coalesce({lookup("e.to_status", "e.to_stage", "e.entry_reason")}, e.to_status) AS m_to
            FROM e),
        p AS (
            SELECT t.*, lag(to_status) OVER w AS prev_to, lag(m_to) OVER w AS prev_m_to,
                   lag(entry_reason) OVER w AS prev_reason
            FROM t WINDOW w AS (PARTITION BY lead_id ORDER BY ts, seq))
        SELECT id, from_status, to_status, m_to,
               CASE WHEN from_status IS NULL OR from_status NOT IN {keys} THEN from_status
                    WHEN prev_to = from_status THEN prev_m_to
                    ELSE coalesce({lookup("p.from_status", "p.to_stage", "p.prev_reason")}, from_status) END AS m_from
        FROM p"""
    )
    conn.execute(
        """INSERT INTO ledger_rec SELECT id, from_status, to_status FROM x_map
           WHERE m_to IS DISTINCT FROM to_status OR m_from IS DISTINCT FROM from_status"""
    )
    conn.execute(
        """UPDATE ledger_m AS l SET from_status = x.m_from, to_status = x.m_to FROM x_map x
           WHERE l.id = x.id AND (x.m_to IS DISTINCT FROM x.to_status OR x.m_from IS DISTINCT FROM x.from_status)"""
    )
    conn.execute("DROP TABLE IF EXISTS x_map")
    conn.execute("DROP TABLE IF EXISTS smap")
