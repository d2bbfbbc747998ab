"""The read side of manager review: reviewable changes, spot-check candidates, and status accuracy per rep.

Reviewable changes are read from the analytics store (the DuckDB copy of the ledger, `store.py`), like every
other report: a month of a team's changes with the time each lead had spent in its previous status is one
columnar scan there, where the row store would read the whole ledger. Verdicts live in the main database
(`reviews`, written by `services.review`); they are few, so they are read from there when a figure needs them.

Who is accountable for a change (its **rep**): the person who made it when that person is a rep, else the
lead's owner after it (an automation rule's change is judged against the rep who owned the lead). The rep's
team is their team today (`users.team`).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from leadledger.analytics.context import Options, Query, rate
from leadledger.analytics.stats import wilson
from leadledger.analytics.store.connection import open_store
from leadledger.analytics.store.sync import sync
from leadledger.services.app import App
from leadledger.store.tables_governance import review_sample_items, reviews


@contextmanager
def governance_query(
    app: App, *, as_of: datetime | None = None, date_from: date | None = None, date_to: date | None = None
) -> Iterator[Query]:
    """A report Query over a freshly synced store (what `analytics.run_reports` builds for a report)."""
    options = Options.make(now=app.clock.now(), as_of=as_of, date_from=date_from, date_to=date_to)
    model = app.loaded_model().model
    with open_store(app) as conn:
        sync(conn, app)
        yield Query(app, conn, model, options)


# The reviewable changes: status changes (not creations, not approval requests), with the accountable rep,
# their team, and how long the lead had been in the status it left (since its previous status change).
ACCOUNTABLE = "(CASE WHEN c.actor_role = 'rep' THEN c.actor ELSE c.to_owner END)"


def _changes_sql(where: str) -> str:
    return f"""
        WITH touched AS (
            SELECT DISTINCT lead_id FROM ledger_m
            WHERE kind = 'change' AND from_status IS DISTINCT FROM to_status AND ts <= $t
              AND ($start IS NULL OR ts >= $start) AND ($end IS NULL OR ts < $end)),
        c AS (
            SELECT l.id, l.lead_id, l.seq, l.ts, l.kind, l.actor, l.actor_role, l.source, l.from_status, l.to_status,
                   l.to_owner, l.reason, l.rule, l.override_rule,
                   lag(l.ts) OVER (PARTITION BY l.lead_id ORDER BY l.ts, l.seq) AS prev_ts
            FROM ledger_m l JOIN touched USING (lead_id)
            WHERE l.kind = 'created' OR l.from_status IS DISTINCT FROM l.to_status)
        SELECT c.id, c.lead_id, c.seq, c.ts, c.actor, c.actor_role, c.source, c.from_status, c.to_status,
               c.reason, c.rule, c.override_rule, epoch_us(c.ts) - epoch_us(c.prev_ts) AS in_previous_us,
               {ACCOUNTABLE} AS rep, om.team
        FROM c LEFT JOIN omap om ON om.owner = {ACCOUNTABLE}
        WHERE c.kind = 'change' AND c.ts <= $t AND ($start IS NULL OR c.ts >= $start) AND ($end IS NULL OR c.ts < $end)
          {where}"""


CHANGE_COLUMNS = (
    "entry",
    "lead",
    "seq",
    "at",
    "actor",
    "actor_role",
    "source",
    "from_status",
    "to_status",
    "reason",
    "rule",
    "override_rule",
    "hours_in_previous",
    "rep",
    "team",
)


@dataclass(frozen=True)
class ChangeFilter:
    """Which changes a list shows: teams (None: every team, and changes with no team), a rep, statuses..."""

    teams: tuple[str, ...] | None = None
    rep: str | None = None
    statuses: tuple[str, ...] = ()  # changes into or out of one of these
    overrides_only: bool = False
    entry_ids: tuple[int, ...] | None = None

    def sql(self) -> tuple[str, dict[str, Any]]:
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.teams is not None:
            parts.append("AND list_contains($teams, om.team)")
            params["teams"] = list(self.teams) or [""]
        if self.rep is not None:
            parts.append(f"AND {ACCOUNTABLE} = $rep")
            params["rep"] = self.rep
        if self.statuses:
            parts.append("AND (list_contains($statuses, c.to_status) OR list_contains($statuses, c.from_status))")
            params["statuses"] = list(self.statuses)
        if self.overrides_only:
            parts.append("AND c.override_rule IS NOT NULL")
        if self.entry_ids is not None:
            parts.append("AND list_contains($ids, c.id)")
            params["ids"] = list(self.entry_ids) or [-1]
        return " ".join(parts), params


def _as_change(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(CHANGE_COLUMNS, row, strict=True))
    out["at"] = row[3].replace(tzinfo=UTC)  # the store holds naive UTC
    out["hours_in_previous"] = None if row[12] is None else row[12] / 3_600_000_000
    return out


def changes(
    q: Query, selection: ChangeFilter, *, limit: int | None = None, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """(how many changes match, the page of them in time order)."""
    where, params = selection.sql()
    sql = _changes_sql(where)
    q.conn.execute("CREATE OR REPLACE TEMP TABLE review_changes AS " + sql, _bind(q, sql, params))
    total = int(q.conn.execute("SELECT count(*) FROM review_changes").fetchall()[0][0])
    page = "ORDER BY ts, id" + (f" LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else "")
    rows = q.conn.execute(f"SELECT * FROM review_changes {page}").fetchall()
    q.conn.execute("DROP TABLE review_changes")
    return total, [_as_change(r) for r in rows]


def _bind(q: Query, sql: str, extra: dict[str, Any]) -> dict[str, Any]:
    values = q.params(**extra)
    return {k: v for k, v in values.items() if f"${k}" in sql}


# --- spot-check samples -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drawn:
    """One sampled change and the size of its stratum (the rep's changes to that status in the month)."""

    change: dict[str, Any]
    stratum_changes: int


def allocate(strata: dict[str, int], per_rep: int) -> dict[str, int]:
    """How many of `per_rep` draws each stratum (status) gets: every stratum one while draws last (the rarest
    first, so a status used twice in a month is seen), the rest in proportion to size (largest remainder),
    never more than a stratum holds."""
    wanted = min(per_rep, sum(strata.values()))
    out = dict.fromkeys(strata, 0)
    for key in sorted(strata, key=lambda k: (strata[k], k)):
        if sum(out.values()) >= wanted:
            break
        out[key] = 1
    while sum(out.values()) < wanted:
        left = wanted - sum(out.values())
        room = {k: strata[k] - out[k] for k in strata if strata[k] > out[k]}
        total = sum(strata[k] for k in room)
        shares = {k: left * strata[k] / total for k in room}
        floors = {k: min(room[k], math.floor(shares[k])) for k in room}
        if sum(floors.values()) == 0:  # fewer draws left than strata with room: the largest remainders
            for k in sorted(room, key=lambda k: (-shares[k], k))[:left]:
                out[k] += 1
            continue
        for k, n in floors.items():
            out[k] += n
    return out


def draw(q: Query, selection: ChangeFilter, *, per_rep: int, seed: str) -> list[Drawn]:
    """A stratified random sample of each rep's own changes in the period: `per_rep` per rep, spread over the
    statuses they moved leads to (see `allocate`), each stratum's picks the first by md5(seed:entry id) —
    the same seed and the same ledger give the same sample, on any machine and DuckDB version."""
    where, params = selection.sql()
    where += " AND c.actor_role = 'rep' AND c.source = 'manual'"
    sql = _changes_sql(where)
    q.conn.execute("CREATE OR REPLACE TEMP TABLE sample_pool AS " + sql, _bind(q, sql, params))
    strata: dict[str, dict[str, int]] = defaultdict(dict)
    for rep, status, n in q.conn.execute("SELECT rep, to_status, count(*) FROM sample_pool GROUP BY ALL").fetchall():
        strata[rep][status] = int(n)
    quota = [(rep, status, n) for rep, sizes in strata.items() for status, n in allocate(sizes, per_rep).items() if n]
    if not quota:
        q.conn.execute("DROP TABLE sample_pool")
        return []
    q.conn.execute("CREATE OR REPLACE TEMP TABLE sample_quota (rep VARCHAR, status VARCHAR, n INTEGER)")
    q.conn.execute(
        "INSERT INTO sample_quota SELECT unnest($r), unnest($s), unnest($n)",
        {"r": [a for a, _, _ in quota], "s": [b for _, b, _ in quota], "n": [c for _, _, c in quota]},
    )
    rows = q.conn.execute(
        """SELECT p.* FROM (
               SELECT *, row_number() OVER (PARTITION BY rep, to_status ORDER BY md5($seed || ':' || id), id) AS pick
               FROM sample_pool) p
           JOIN sample_quota k ON k.rep = p.rep AND k.status = p.to_status
           WHERE p.pick <= k.n ORDER BY p.rep, p.ts, p.id""",
        {"seed": seed},
    ).fetchall()
    q.conn.execute("DROP TABLE sample_pool")
    q.conn.execute("DROP TABLE sample_quota")
    return [Drawn(_as_change(r[:-1]), strata[r[13]][r[8]]) for r in rows]


def default_seed(month: str, manager: str) -> str:
    """The seed of a month's sample when none is given: the same month and manager draw the same sample."""
    return hashlib.sha256(f"leadledger-spot-check:{month}:{manager}".encode()).hexdigest()[:16]


# --- status accuracy ------------------------------------------------------------------------------------


def latest_verdicts(q: Query) -> list[Any]:
    """The latest verdict per reviewed entry given by the as-of time, for changes made in the period."""
    latest = (
        select(reviews.c.entry_id, func.max(reviews.c.id).label("id"))
        .where(reviews.c.reviewed_at <= q.options.as_of)
        .group_by(reviews.c.entry_id)
        .subquery()
    )
    query = (
        select(
            reviews.c.entry_id,
            reviews.c.rep,
            reviews.c.team,
            reviews.c.to_status,
            reviews.c.verdict,
            review_sample_items.c.stratum_changes,
            review_sample_items.c.sample_id,
        )
        .join(latest, latest.c.id == reviews.c.id)
        .outerjoin(review_sample_items, review_sample_items.c.entry_id == reviews.c.entry_id)
        .where(reviews.c.entry_at <= q.options.as_of)
    )
    if q.options.start is not None:
        query = query.where(reviews.c.entry_at >= q.options.start)
    if q.options.end is not None:
        query = query.where(reviews.c.entry_at < q.options.end)
    with q.app.db.read() as conn:
        rows = list(conn.execute(query))
    seen: set[int] = set()
    out = []
    for row in rows:  # an entry drawn into two samples (two managers) counts once
        if row.entry_id not in seen:
            seen.add(row.entry_id)
            out.append(row)
    return out


def accuracy(q: Query) -> dict[str | None, dict[str, Any]]:
    """Per rep: status accuracy from the spot-checks, and every verdict given (sampled or not).

    `status_accuracy` estimates the share of the rep's own changes that used the status as defined: verdicts on
    sampled changes only (a random sample; changes a manager picked from the list are not), each stratum
    weighted by its size, since rare statuses were over-sampled on purpose. `ok_share` and its Wilson interval
    are the plain share of sampled verdicts that were ok."""
    found: dict[str | None, dict[str, Any]] = q.memoised(("status_accuracy",), lambda: _accuracy(q))
    return found


def _accuracy(q: Query) -> dict[str | None, dict[str, Any]]:
    per_rep: dict[str | None, dict[str, Any]] = {}
    strata: dict[str | None, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for row in latest_verdicts(q):
        entry = per_rep.setdefault(row.rep, {"reviewed": 0, "wrong_usage": 0, "sampled_reviewed": 0, "sampled_ok": 0})
        entry["reviewed"] += 1
        entry["wrong_usage"] += row.verdict == "wrong_usage"
        if row.sample_id is not None:
            entry["sampled_reviewed"] += 1
            entry["sampled_ok"] += row.verdict == "ok"
            cell = strata[row.rep][row.to_status]
            cell[0] += row.verdict == "ok"
            cell[1] += 1
            cell[2] = max(cell[2], int(row.stratum_changes or 0))
    for rep, entry in per_rep.items():
        n, ok = entry["sampled_reviewed"], entry["sampled_ok"]
        low, high = wilson(ok, n)
        weights = {status: cell[2] for status, cell in strata[rep].items() if cell[1]}
        total = sum(weights.values())
        weighted = (
            sum(cell[0] / cell[1] * weights[status] for status, cell in strata[rep].items() if cell[1]) / total
            if total
            else None
        )
        entry.update(
            status_accuracy=weighted,
            ok_share=rate(ok, n),
            ok_share_low=low,
            ok_share_high=high,
            wrong_statuses=sorted(s for s, cell in strata[rep].items() if cell[0] < cell[1]),
        )
    return per_rep


EMPTY_ACCURACY: dict[str, Any] = {"reviewed": 0, "wrong_usage": 0, "sampled_reviewed": 0, "sampled_ok": 0, "status_accuracy": None,
                  "ok_share": None, "ok_share_low": None, "ok_share_high": None, "wrong_statuses": []}  # fmt: skip


def rep_accuracy(q: Query, rep: str | None) -> dict[str, Any]:
    """One rep's figures for `report reps` (zeros and None when nothing of theirs was reviewed)."""
    return dict(accuracy(q).get(rep, EMPTY_ACCURACY))


def accuracy_summary(q: Query) -> dict[str, Any]:
    """Every rep's figures and the team's (all reps' sampled verdicts pooled), for `report governance`."""
    per_rep = accuracy(q)
    ok = sum(e["sampled_ok"] for e in per_rep.values())
    n = sum(e["sampled_reviewed"] for e in per_rep.values())
    low, high = wilson(ok, n)
    return {
        "sampled_reviewed": n,
        "sampled_ok": ok,
        "ok_share": rate(ok, n),
        "ok_share_low": low,
        "ok_share_high": high,
        "reviewed": sum(e["reviewed"] for e in per_rep.values()),
        "wrong_usage": sum(e["wrong_usage"] for e in per_rep.values()),
        "reps": [{"rep": rep, **figures} for rep, figures in sorted(per_rep.items(), key=lambda kv: str(kv[0]))],
    }
