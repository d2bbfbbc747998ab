"""Benchmarks of automation: batched event apply with the default rules, the sweep, and the rule backtest."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.core import NOW, _app, _seed_leads
from bench.registry import Context, Figure, benchmark
from leadledger.domain.clock import FixedClock
from leadledger.model.loader import default_model_text
from leadledger.services import demo as demo_service
from leadledger.services.backtest import backtest
from leadledger.services.events import apply_events
from leadledger.services.history import LeadHistory, write_histories
from leadledger.services.sweep import candidates, sweep
from leadledger.store.tables import leads


def _raw_copy_insert(path: Path, table: str, columns: list[str], rows: list[tuple[Any, ...]], per_tx: int) -> float:
    """Rows per second of a raw executemany into a fresh copy of `table` (same DDL and indexes)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        copy = f"{table}_raw"
        conn.execute(f"DROP TABLE IF EXISTS {copy}")
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index'", (table,)
        ).fetchall():
            conn.execute(
                sql.replace(f" {table}", f" {copy}", 2)
                .replace(f"ix_{table}", f"ix_{copy}")
                .replace(f"uq_{table}", f"uq_{copy}")
            )
        statement = f"INSERT INTO {copy} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        started = time.perf_counter()
        for first in range(0, len(rows), per_tx):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(statement, rows[first : first + per_tx])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.execute(f"DROP TABLE {copy}")
        return len(rows) / elapsed
    finally:
        conn.close()


@benchmark("events", "batched event apply with the default rules evaluated, vs raw insert of the same rows")
def events(ctx: Context) -> list[Figure]:
    per_run = 2_000 if ctx.quick else 20_000
    repeats = ctx.times(3, 1)
    runs, baseline_runs = [], []
    with ctx.folder("bench-events") as folder:
        app = _app(folder)
        app.clock = FixedClock(NOW)
        ids = _seed_leads(app, per_run * repeats)
        path = folder / "bench.db"
        for r in range(repeats):
            chosen = ids[r * per_run : (r + 1) * per_run]
            at = (NOW - timedelta(hours=1)).isoformat()
            lines = [
                json.dumps(
                    {
                        "id": f"r{r}-{lead}",
                        "type": "email_replied",
                        "lead": lead,
                        "at": at,
                        "data": {"classification": "positive"},
                    }
                )
                for lead in chosen
            ]
            started = time.perf_counter()
            summary = apply_events(app, lines, actor="admin")
            runs.append(per_run / (time.perf_counter() - started))
            if summary.applied != per_run or summary.counts["rule_changes"] != per_run:
                raise AssertionError(f"expected {per_run} events and changes, got {summary.as_dict()}")
            conn = sqlite3.connect(path)
            columns = ["key", "lead_id", "type", "at", "recorded_at", "actor", "source", "data"]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM activities WHERE key LIKE 'r{r}-%'").fetchall()
            conn.close()
            baseline_runs.append(_raw_copy_insert(path, "activities", columns, rows, 2000))
        app.db.dispose()
    return [
        Figure(
            "apply_events, default rules",
            runs,
            "events/s",
            target=20_000,
            baseline_runs=baseline_runs,
            baseline="raw executemany of the same activity rows, 2000 per transaction",
            notes=f"{per_run} email_replied events per run: each stores the event, moves the lead to "
            "Connected by rule, queues the calendar-link e-mail and a qualification task",
        )
    ]


def _sweep_population(app: Any, count: int, seed: int = 5) -> None:
    """`count` open leads spread over the statuses time rules watch, entered at times that make a few fire."""
    rng = random.Random(seed)
    histories = []
    for n in range(count):
        lead_id = f"S{n:08d}"
        roll = rng.random()
        created = NOW - timedelta(days=rng.uniform(0.2, 90))
        entries = [
            {
                "at": created,
                "kind": "created",
                "actor": "system",
                "actor_role": "ops",
                "source": "integration",
                "to_status": "new",
                "to_stage": "mql",
            }
        ]
        fields: dict[str, Any] = {"estimated_value": 1000}
        acts: list[dict[str, Any]] = []

        def move(status: str, at: Any, stage: str = "mql", entries: list[Any] = entries, **extra: Any) -> None:
            previous = entries[-1]
            entries.append(
                {
                    "at": at,
                    "actor": "system",
                    "actor_role": "ops",
                    "source": "automation",
                    "from_status": previous["to_status"],
                    "to_status": status,
                    "from_stage": previous["to_stage"],
                    "to_stage": stage,
                    "from_owner": previous.get("to_owner"),
                    "to_owner": "ana",
                    **extra,
                }
            )

        if roll < 0.1:
            pass  # still New
        elif roll < 0.5:
            move("assigned", created + timedelta(minutes=30))
            move("attempting_contact", created + timedelta(hours=1))
            for k in range(rng.randint(1, 9)):
                acts.append(
                    {"type": "call_logged", "at": created + timedelta(hours=1 + k), "data": {"outcome": "no_answer"}}
                )
        elif roll < 0.8:
            move("assigned", created + timedelta(minutes=30))
            move("working", created + timedelta(days=0.5), stage="sal")
            last = min(NOW, created + timedelta(days=rng.uniform(0.5, 95)))
            acts.append({"type": "meeting_held", "at": last})
        else:
            move("assigned", created + timedelta(minutes=30))
            move("nurture", created + timedelta(days=1), reason="bad_timing")
            fields["re_evaluate_on"] = (NOW + timedelta(days=rng.uniform(-5, 120))).date().isoformat()
        histories.append(
            LeadHistory(
                lead={
                    "id": lead_id,
                    "name": f"S {n}",
                    "email": f"s{n}@example.com",
                    "company": f"Company {n % 5000}",
                    "fields": fields,
                },
                entries=entries,
                activities=acts,
            )
        )
        if len(histories) == 10_000:
            with app.db.write() as conn:
                write_histories(conn, histories, recorded_at=NOW, owner_teams={"ana": "east"}, model=app.model)
            histories = []
    if histories:
        with app.db.write() as conn:
            write_histories(conn, histories, recorded_at=NOW, owner_teams={"ana": "east"}, model=app.model)


def _raw_selection(path: Path, now: Any) -> float:
    """Seconds for the hand-written SQL a user would write to find what the default time rules fire on."""
    ts = lambda d: d.replace(tzinfo=None).isoformat(" ", "microseconds")  # noqa: E731
    queries = [
        (
            "SELECT id FROM leads WHERE status IN ('new','assigned') AND created_at <= ?",
            (ts(now - timedelta(hours=24)),),
        ),
        (
            "SELECT id FROM leads WHERE status = 'attempting_contact' AND status_since <= ?",
            (ts(now - timedelta(days=7)),),
        ),
        (
            "SELECT id FROM leads WHERE status = 'attempting_contact' AND status_since <= ?",
            (ts(now - timedelta(days=7)),),
        ),
        (
            "SELECT id FROM leads l WHERE status = 'attempting_contact' AND (SELECT count(*) FROM activities a WHERE "
            "a.lead_id = l.id AND a.at >= l.status_since) >= 8",
            (),
        ),
        (
            "SELECT id FROM leads l WHERE status = 'working' AND status_since <= ? AND NOT EXISTS (SELECT 1 FROM "
            "activities a WHERE a.lead_id = l.id AND a.at > ?)",
            (ts(now - timedelta(days=14)),) * 2,
        ),
        (
            "SELECT id FROM leads l WHERE status = 'working' AND status_since <= ? AND NOT EXISTS (SELECT 1 FROM "
            "activities a WHERE a.lead_id = l.id AND a.at > ?)",
            (ts(now - timedelta(days=30)),) * 2,
        ),
        ("SELECT id FROM leads l WHERE status = 'stale_review' AND status_since <= ?", (ts(now - timedelta(days=14)),)),
        (
            "SELECT id FROM leads WHERE status = 'nurture' AND json_extract(fields, '$.re_evaluate_on') <= ?",
            (now.date().isoformat(),),
        ),
        (
            "SELECT company FROM leads WHERE company IS NOT NULL GROUP BY company HAVING count(*) >= 2 AND "
            "sum(status <> 'nurture') = 0",
            (),
        ),
        ("SELECT id FROM sla_clocks WHERE status = 'open' AND due_at <= ?", (ts(now),)),
    ]
    conn = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        for sql, params in queries:
            conn.execute(sql, params).fetchall()
        return time.perf_counter() - started
    finally:
        conn.close()


@benchmark("sweep", "sweep over open leads with the default rules (SQLite), vs the raw SQL of the same selection")
def sweep_bench(ctx: Context) -> list[Figure]:
    # LEADLEDGER_BENCH_SWEEP_LEADS: another population size (100 k is a middle ground on a shared box)
    count = int(os.environ.get("LEADLEDGER_BENCH_SWEEP_LEADS") or (50_000 if ctx.quick else 1_000_000))
    repeats = ctx.times(3, 1)
    with ctx.folder("bench-sweep") as folder:
        app = _app(folder)
        app.clock = FixedClock(NOW)
        started = time.perf_counter()
        _sweep_population(app, count)
        ctx.log(f"sweep: {count} leads written in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        first = sweep(app, now=NOW)
        first_seconds = time.perf_counter() - started
        selection_runs, steady_runs, baseline_runs = [], [], []
        model = app.model
        for _ in range(repeats):
            started = time.perf_counter()
            with app.db.read() as conn:
                for rule in model.time_rules:
                    if rule.group_by is None:
                        conn.execute(
                            leads.select().with_only_columns(leads.c.id).where(candidates(model, rule, NOW))
                        ).all()
            selection_runs.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = sweep(app, now=NOW)
            steady_runs.append(time.perf_counter() - started)
            if again.fired:
                raise AssertionError(f"a second sweep at the same time fired {again.fired}")
            baseline_runs.append(_raw_selection(folder / "bench.db", NOW))
        app.db.dispose()
    notes = f"{count} open leads; the first sweep fired {first.fired} and moved {first.moved} in {first_seconds:.1f} s"
    return [
        Figure(
            f"sweep, {count // 1000} k open leads, nothing due",
            steady_runs,
            "s",
            target=5.0,
            better="lower",
            baseline_runs=baseline_runs,
            baseline="hand-written SQL selecting the same leads for every rule",
            notes=notes,
        ),
        Figure(
            "time-rule selection only",
            selection_runs,
            "s",
            target=5.0,
            better="lower",
            baseline_runs=baseline_runs,
            baseline="hand-written SQL selecting the same leads",
        ),
        Figure("first sweep (fires and moves)", [first_seconds], "s", notes=notes),
    ]


@benchmark("backtest", "rule backtest of the default rules over demo history (extrapolated to 1 M leads)")
def backtest_bench(ctx: Context) -> list[Figure]:
    count = 300 if ctx.quick else 3_000
    repeats = ctx.times(2, 1)
    runs = []
    with ctx.folder("bench-backtest") as folder:
        app = _app(folder)
        demo_service.generate(app, leads=count, seed=11, days=90)
        for _ in range(repeats):
            started = time.perf_counter()
            report = backtest(app, default_model_text())
            runs.append(count / (time.perf_counter() - started))
        app.db.dispose()
    seconds_for_million = 1_000_000 / min(runs) if runs else float("inf")
    return [
        Figure(
            "backtest throughput",
            runs,
            "leads/s",
            target=1_000_000 / 60,
            notes=f"{count} demo leads over 90 days, daily sweeps; 1 M leads would take about "
            f"{seconds_for_million:,.0f} s at this rate; {sum(report['inputs'].values())} inputs",
        )
    ]
