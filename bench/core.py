"""The core engine's benchmarks, on SQLite: engine validations, service-layer changes, `leadledger demo`.

- engine: `change_status` validations per second in memory (a mix of legal changes and one refusal).
- change-one / change-batch: changes applied and committed through the service layer (`change_lead`, one
  transaction each; `change_leads`, batched), default model and its automation, fresh SQLite file. The
  baseline is a raw sqlite3 `executemany` of the very ledger rows the service wrote, into a copy of the
  ledger table (same columns, indexes and foreign key) in the same database, in transactions of the same
  size (one row each / one batch each); ratio = service rate / raw rate.
- demo: `leadledger demo` as a subprocess: wall time, CPU time and peak memory of its process tree.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.registry import Context, Figure, benchmark
from leadledger.bootstrap import build_app
from leadledger.domain.changes import Activity, Actor, ChangeRequest, LeadState
from leadledger.domain.engine import change_status
from leadledger.model.loader import default_model_text, load_text
from leadledger.services import models, people
from leadledger.services.app import App
from leadledger.services.history import LEDGER_COLUMNS, LeadHistory, write_histories
from leadledger.services.leads import BATCH_SIZE, ChangeSpec, change_lead, change_leads

NOW = datetime.now(UTC).replace(microsecond=0)
REP = Actor("ana", "rep")


# --- engine ----------------------------------------------------------------------------------------


def _engine_cases() -> list[tuple[LeadState, ChangeRequest, tuple[Activity, ...]]]:
    """Typical requests: log-then-connect, disqualify with a reason, an owner change, and a refused qualify."""
    at = NOW - timedelta(minutes=5)
    before = NOW - timedelta(days=2)
    called = (Activity("call_logged", at - timedelta(minutes=1), {"outcome": "connected"}),)

    def lead(status: str, stage: str = "mql", **fields: Any) -> LeadState:
        return LeadState("L1", status, stage, "ana", {"name": "Jo Doe", "email": "jo@example.com", **fields}, 3, before)

    manager = Actor("maria", "manager")
    return [
        (lead("attempting_contact"), ChangeRequest("L1", REP, at, status="connected"), called),
        (lead("attempting_contact"), ChangeRequest("L1", REP, at, status="disqualified", reason="budget"), ()),
        (lead("connected"), ChangeRequest("L1", manager, at, owner="ben"), ()),
        (lead("working", "sql"), ChangeRequest("L1", REP, at, status="qualified", fields={"budget": "50k"}), ()),
    ]


@benchmark("engine", "change_status validations per second, in memory")
def engine(ctx: Context) -> list[Figure]:
    model = load_text(default_model_text(), "default_model.yaml").model
    cases = _engine_cases()
    verdicts = [type(change_status(model, s, r, now=NOW, activities=a)).__name__ for s, r, a in cases]
    if verdicts != ["StatusChange", "StatusChange", "StatusChange", "Refused"]:
        raise AssertionError(f"the engine benchmark's cases no longer mean what they say: {verdicts}")
    n = 2_000 if ctx.quick else 20_000
    work = (cases * (n // len(cases) + 1))[:n]
    runs = []
    for _ in range(ctx.times(7, 3)):
        started = time.perf_counter()
        for state, request, activities in work:
            change_status(model, state, request, now=NOW, activities=activities)
        runs.append(n / (time.perf_counter() - started))
    return [Figure("change_status validations", runs, "/s", target=50_000, notes=f"{n} per run; 3 legal : 1 refused")]


# --- service layer ---------------------------------------------------------------------------------


def _app(folder: Path) -> App:
    app = build_app(db_url=f"sqlite:///{folder / 'bench.db'}")
    models.initialise(app)
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    people.add_user(app, name="ben", role="rep", team="east")
    return app


def _seed_leads(app: App, count: int) -> list[str]:
    """`count` leads in Attempting Contact owned by ana (created, routed, first email), written in bulk."""
    ids = [f"B{n:08d}" for n in range(count)]
    start, hour = NOW - timedelta(days=3), timedelta(hours=1)
    histories = []
    for lead_id in ids:
        histories.append(
            LeadHistory(
                lead={"id": lead_id, "name": "Jo Doe", "email": f"{lead_id.lower()}@example.com", "source": "web"},
                entries=[
                    _entry(start, "created", "integration", None, "new", None, None),
                    _entry(start + hour, "change", "automation", "new", "assigned", "ana", "new:route"),
                    _entry(
                        start + 2 * hour,
                        "change",
                        "automation",
                        "assigned",
                        "attempting_contact",
                        "ana",
                        "first_email_sent",
                    ),
                ],
                activities=[{"type": "email_sent", "at": start + timedelta(hours=2), "actor": "ana"}],
            )
        )
    for first in range(0, count, 5000):
        with app.db.write() as conn:
            write_histories(conn, histories[first : first + 5000], recorded_at=NOW, owner_teams={"ana": "east"},
                            model=app.model)
    return ids


def _entry(
    at: datetime, kind: str, source: str, was: str | None, status: str, owner: str | None, rule: str | None
) -> dict[str, Any]:
    return {
        "at": at, "kind": kind, "actor": "system", "actor_role": "ops", "source": source, "from_status": was,
        "to_status": status, "from_stage": was and "mql", "to_stage": "mql",
        "from_owner": "ana" if was == "assigned" else None, "to_owner": owner, "rule": rule,
    }  # fmt: skip


def _spec(lead_id: str) -> ChangeSpec:
    return ChangeSpec(lead_id, status="disqualified", reason="budget")


def _raw_baseline(path: Path, rows: list[tuple[Any, ...]], per_transaction: int) -> tuple[float, float]:
    """Rows per second (wall, CPU) of a raw executemany into a fresh copy of the ledger table (same DDL and indexes)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536",
                       "temp_store=MEMORY"):  # fmt: skip
            conn.execute(f"PRAGMA {pragma}")  # what store/db.py sets on every connection
        conn.execute("DROP TABLE IF EXISTS ledger_raw")
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'ledger' AND type IN ('table', 'index') AND sql IS NOT "
            "NULL ORDER BY type = 'index'"
        ).fetchall():
            conn.execute(sql.replace("ledger", "ledger_raw", 2).replace("ix_ledger_raw", "ix_ledger_raw_raw"))
        columns = ", ".join(LEDGER_COLUMNS)
        statement = f"INSERT INTO ledger_raw ({columns}) VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})"
        started, started_cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(rows), per_transaction):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(statement, rows[first : first + per_transaction])
            conn.execute("COMMIT")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        conn.execute("DROP TABLE ledger_raw")
        return len(rows) / elapsed, len(rows) / max(cpu, 1e-9)
    finally:
        conn.close()


def _raw_projection_update(path: Path, lead_ids: list[str], per_transaction: int) -> float:
    """Rows per second (CPU) of the least projection write a status change needs, raw: the columns a status
    change sets, by id and version, in a copy of `leads` (same DDL and indexes) holding these leads."""
    columns = ("status", "updated_at", "version", "status_since", "status_entry_seq", "status_source",
               "status_rule", "prev_status", "reason")  # fmt: skip
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536", "temp_store=MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("DROP TABLE IF EXISTS leads_raw")
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'leads' AND sql IS NOT NULL ORDER BY type = 'index'"
        ).fetchall():
            conn.execute(sql.replace("leads", "leads_raw", 2).replace("ix_leads_raw", "ix_leads_raw_raw"))
        conn.execute("CREATE TEMP TABLE wanted (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO wanted VALUES (?)", [(i,) for i in lead_ids])
        conn.execute("INSERT INTO leads_raw SELECT leads.* FROM leads JOIN wanted USING (id)")
        rows = conn.execute(f"SELECT {', '.join(columns)}, id, version - 1 FROM leads JOIN wanted USING (id)").fetchall()
        conn.execute("UPDATE leads_raw SET version = version - 1")
        statement = f"UPDATE leads_raw SET {', '.join(c + ' = ?' for c in columns)} WHERE id = ? AND version = ?"
        started_cpu = time.process_time()
        for first in range(0, len(rows), per_transaction):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(statement, rows[first : first + per_transaction])
            conn.execute("COMMIT")
        cpu = time.process_time() - started_cpu
        conn.execute("DROP TABLE leads_raw")
        return len(rows) / max(cpu, 1e-9)
    finally:
        conn.close()


def _written_rows(path: Path, lead_ids: list[str]) -> list[tuple[Any, ...]]:
    """The ledger rows the service just wrote for these leads (the disqualifications), as stored."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TEMP TABLE wanted (id TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO wanted VALUES (?)", [(i,) for i in lead_ids])
        return conn.execute(
            f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger JOIN wanted ON wanted.id = ledger.lead_id "
            "WHERE to_status = 'disqualified' ORDER BY ledger.id"
        ).fetchall()
    finally:
        conn.close()


def _service_bench(ctx: Context, *, batched: bool) -> list[Figure]:
    per_run = (5_000 if ctx.quick else 50_000) if batched else (200 if ctx.quick else 2_000)
    repeats = ctx.times(3, 2)
    with ctx.folder("bench-service") as folder:
        app = _app(folder)
        ids = _seed_leads(app, per_run * repeats)
        path = folder / "bench.db"
        runs, baseline_runs, cpu_runs, cpu_baseline_runs, floor_runs = [], [], [], [], []
        model = load_text(default_model_text(), "default_model.yaml").model
        for r in range(repeats):
            chosen = ids[r * per_run : (r + 1) * per_run]
            started, started_cpu = time.perf_counter(), time.process_time()
            if batched:
                results = change_leads(app, [_spec(i) for i in chosen], actor="ana")
                refused = [x for x in results if not hasattr(x, "seq")]
                if refused:
                    raise AssertionError(f"{len(refused)} changes refused, e.g. {refused[0]}")
            else:
                for lead_id in chosen:
                    change_lead(app, actor="ana", spec=_spec(lead_id))
            runs.append(per_run / (time.perf_counter() - started))
            cpu_runs.append(per_run / (time.process_time() - started_cpu))
            rows = _written_rows(path, chosen)
            if len(rows) != per_run:
                raise AssertionError(f"expected {per_run} ledger rows, found {len(rows)}")
            wall_rate, cpu_rate = _raw_baseline(path, rows, BATCH_SIZE if batched else 1)
            baseline_runs.append(wall_rate)
            cpu_baseline_runs.append(cpu_rate)
            if batched:  # the floor: judging each change, appending its entry, updating its projection, raw
                judge = _engine_rate(model, len(chosen))
                update = _raw_projection_update(path, chosen, BATCH_SIZE)
                floor_runs.append(1 / (1 / judge + 1 / cpu_rate + 1 / update))
        app.db.dispose()
    name = "change_leads, batched" if batched else "change_lead, one transaction each"
    figures = [
        Figure(
            name,
            runs,
            "/s",
            target=50_000 if batched else 2_000,
            baseline_runs=baseline_runs,
            baseline="raw executemany of the same ledger rows, "
            + (f"{BATCH_SIZE} per transaction" if batched else "one per transaction"),
            notes=f"{per_run} changes per run: attempting_contact -> disqualified (budget), automation on",
        ),
        Figure(f"{name}, CPU time", cpu_runs, "/s", baseline_runs=cpu_baseline_runs,
               baseline="the same raw executemany, CPU time", notes="process CPU time: steadier than wall time on a "
               "shared box (both sides in the same run)"),
    ]  # fmt: skip
    if floor_runs:
        figures.append(
            Figure(f"{name}: the floor, CPU time", floor_runs, "/s", notes="what no service layer can beat on this "
                   "box: change_status alone + the raw ledger insert + the raw update of the columns a status change "
                   "sets, one after the other, measured in the same run (CPU time)")
        )
    return figures


def _engine_rate(model: Any, n: int) -> float:
    """change_status validations per CPU second for the benchmark's change (attempting_contact -> disqualified)."""
    before = NOW - timedelta(days=1)
    state = LeadState("B1", "attempting_contact", "mql", "ana", {"name": "Jo Doe", "email": "b@example.com"}, 3, before)
    request = ChangeRequest("B1", REP, NOW - timedelta(minutes=1), status="disqualified", reason="budget")
    started = time.process_time()
    for _ in range(n):
        change_status(model, state, request, now=NOW)
    return n / max(time.process_time() - started, 1e-9)


@benchmark("change-one", "changes through the service layer, one transaction each, vs raw executemany")
def change_one(ctx: Context) -> list[Figure]:
    return _service_bench(ctx, batched=False)


@benchmark("change-batch", "changes through the service layer, batched, vs raw executemany")
def change_batch(ctx: Context) -> list[Figure]:
    return _service_bench(ctx, batched=True)


# --- chain ------------------------------------------------------------------------------------------


@contextmanager
def _unsealed() -> Iterator[None]:
    """The write path with `chain.seal` hashing nothing (bench only): what the batched path costs without it.

    What stays: reading `leads.chain_head` with the lead and writing it back, a few bytes per row."""
    from leadledger.store import chain

    sealing = chain.seal

    def no_hash(rows: list[dict[str, Any]], head_of: Any) -> dict[str, bytes]:
        for row in rows:
            row["hash"] = None
        return {}

    chain.seal = no_hash  # type: ignore[assignment]
    try:
        yield
    finally:
        chain.seal = sealing  # type: ignore[assignment]


@contextmanager
def _timed_seal(seconds: list[float]) -> Iterator[None]:
    """`chain.seal` as it is, its time added to `seconds`: the share of the run spent hashing, less noisy than
    the difference of two rates on a shared machine."""
    from leadledger.store import chain

    sealing = chain.seal

    def timed(rows: list[dict[str, Any]], head_of: Any) -> dict[str, bytes]:
        started = time.perf_counter()
        try:
            return sealing(rows, head_of)
        finally:
            seconds.append(time.perf_counter() - started)

    chain.seal = timed  # type: ignore[assignment]
    try:
        yield
    finally:
        chain.seal = sealing  # type: ignore[assignment]


@benchmark("chain-cost", "batched changes with the ledger's hash chain vs the same path without hashing, same run")
def chain_cost(ctx: Context) -> list[Figure]:
    """Runs alternate with and without the chain (on, off, off, on, ...) so the machine's drift hits both."""
    per_run = 5_000 if ctx.quick else 20_000
    pairs = ctx.times(4, 2)
    with ctx.folder("bench-chain") as folder:
        app = _app(folder)
        ids = _seed_leads(app, per_run * pairs * 2)
        runs: list[float] = []
        baseline_runs: list[float] = []
        shares: list[float] = []  # of each run with the chain: the time spent in chain.seal, over the run's
        for r in range(pairs * 2):
            chosen = ids[r * per_run : (r + 1) * per_run]
            off = r % 4 in (1, 2)
            sealing: list[float] = []
            with _unsealed() if off else _timed_seal(sealing):
                started = time.perf_counter()
                results = change_leads(app, [_spec(i) for i in chosen], actor="ana")
                elapsed = time.perf_counter() - started
            if any(not hasattr(x, "seq") for x in results):
                raise AssertionError("a change was refused")
            (baseline_runs if off else runs).append(per_run / elapsed)
            if not off:
                shares.append(sum(sealing) / elapsed)
        app.db.dispose()
    return [
        Figure(
            "change_leads, batched, with the hash chain",
            runs,
            "/s",
            baseline_runs=baseline_runs,
            baseline="the same batched path with chain.seal hashing nothing",
            notes=f"{per_run} changes per run, runs alternating; target: ratio >= 0.90 (the chain costs <= 10 %); time in "
            f"chain.seal: {statistics.median(shares):.1%} of a run (median)",
            extra={"target_ratio": 0.90, "seal_share_median": statistics.median(shares), "seal_shares": shares},
        )
    ]


# --- demo ------------------------------------------------------------------------------------------


def _tree_rss(root: int) -> int:
    """Resident bytes of a process and its descendants (forked workers' shared pages count twice: an upper bound)."""
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):  # it ended meanwhile
            continue
    return total


def _leadledger() -> str:
    found = Path(sys.executable).with_name("leadledger")
    return str(found) if found.exists() else (shutil.which("leadledger") or "leadledger")


def _demo_once(folder: Path, leads: int) -> tuple[float, int]:
    """(wall seconds, peak resident bytes of the process tree) of one `leadledger demo` on a fresh database."""
    env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{folder / 'demo.db'}"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [_leadledger(), "demo", "--leads", str(leads), "--seed", "1"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    peak = 0
    while process.poll() is None:  # the child is reaped here, so its CPU time lands in RUSAGE_CHILDREN
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - started
    _, err = process.communicate()
    if process.returncode:
        raise RuntimeError(f"leadledger demo failed: {err.decode()[-2000:]}")
    return wall, peak


@benchmark("demo", "`leadledger demo --leads 1000000`: wall time and peak memory (SQLite)")
def demo(ctx: Context) -> list[Figure]:
    leads = 20_000 if ctx.quick else 1_000_000
    walls, peaks, cpus = [], [], []
    for _ in range(ctx.times(3, 1)):
        with ctx.folder("bench-demo") as folder:
            env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{folder / 'demo.db'}"}
            subprocess.run([_leadledger(), "init"], env=env, check=True, capture_output=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, peak = _demo_once(folder, leads)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(wall)
        peaks.append(peak / 2**20)
        cpus.append((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
        ctx.log(f"  demo {leads}: {wall:.1f} s, {peak / 2**20:.0f} MB, cpu {cpus[-1]:.1f} s")
    scale = f"{leads:,} leads" + ("" if leads == 1_000_000 else " (no target below 1M)")
    applies = leads == 1_000_000
    return [
        Figure(f"demo wall time, {scale}", walls, "s", target=60 if applies else None, better="lower",
               notes="process start to exit (`init` before it, not timed); 2 workers simulate, the main process "
                     "writes"),
        Figure(f"demo CPU time, all processes, {scale}", cpus, "s",
               notes="user + system, main and workers: on a busy shared machine, wall time follows CPU time "
                     "rather than CPU time / 2"),
        Figure(f"demo peak memory, {scale}", peaks, "MB", target=1024 if applies else None, better="lower",
               notes="sum of RSS over the process tree (main + workers), sampled every 0.1 s"),
    ]  # fmt: skip
