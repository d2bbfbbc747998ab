"""Realistic demo data: people, teams, sources and lead histories drawn from the seeds' rates and durations.

Each lead's story is simulated in `demo_story` (seed 000's rates and durations, moves the default model
allows); this module creates the people and writes the stories. The same seed gives the same data.

Speed (`leadledger demo --leads 1000000`): the simulation records table rows directly (times as epoch
seconds, turned into stored text once; JSON encoded once; the `leads` row folded as entries are
recorded, as `history.history_rows` folds a history). Leads are simulated in blocks with their own
random stream, so worker processes can simulate and pack chunks into SQLite images
(`history.sqlite_image`) while this process copies finished images in with `INSERT … SELECT`, one
transaction per chunk, in order. The data is the same with or without workers (a test checks it), and
memory stays flat: a few chunks in flight.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.demo_story import (
    AES,
    COMPANY,
    DAY,
    ENCODE,
    FIRST,
    LAST,
    MANAGERS,
    REPS,
    SOURCES,
    SUFFIX,
    TEAMS,
    TERRITORIES,
    Out,
    StoryRules,
    pick,
    simulate,
)
from leadledger.services.errors import Invalid
from leadledger.services.history import (
    SQLITE_NULL,
    HistoryRows,
    insert_image,
    insert_rows,
    sqlite_image,
    stored_time,
)
from leadledger.store import due
from leadledger.store import repository as repo
from leadledger.store.tables import LEDGER_COLUMNS
from leadledger.store.tables import leads as leads_table

BLOCK = 1000  # leads per random stream: the unit of work, so any split across workers gives the same data
WORKERS_FROM = 20_000  # fewer leads than this are written in this process (starting workers costs ~1 s)

# columns that are the same in every demo row: written once per statement (HistoryRows.constants)
_LEDGER_CONSTANTS = ("recorded_at", "note", "idempotency_key", "off_model")
_ACTIVITY_CONSTANTS = ("key", "recorded_at", "source")
_DATA = tuple(c for c in LEDGER_COLUMNS if c not in _LEDGER_CONSTANTS).index("data")  # in an entry tuple
_ENTRY_COLUMNS = tuple(c for c in LEDGER_COLUMNS if c not in (*_LEDGER_CONSTANTS, "hash"))  # a story entry's


def ensure_people(app: App) -> dict[str, str | None]:
    """The demo's teams and users (created once); returns owner -> team."""
    existing = {u["name"]: u for u in people.list_users(app)}
    for name, role, team in MANAGERS:
        if name not in existing:
            people.add_user(app, name=name, role=role, team=team)
    teams = {t["name"] for t in people.list_teams(app)}
    for team, calendar, manager in TEAMS:
        if team not in teams:
            people.add_team(app, name=team, calendar=calendar, manager=manager)
    for name, team in REPS + AES:
        if name not in existing:
            people.add_user(app, name=name, role="rep", team=team, email=f"{name}@example.com",
                            booking_url=f"https://calendar.example.com/{name}")  # fmt: skip
    return {u["name"]: u["team"] for u in people.list_users(app)}


def generate(
    app: App,
    *,
    leads: int,
    seed: int = 7,
    days: int = 180,
    chunk: int = 5000,
    progress: Callable[[int], None] | None = None,
    if_empty: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write `leads` demo leads with histories spread over the last `days` days; returns counts and wall time.

    `workers`: processes that simulate while this one writes (None: two when there are at least
    WORKERS_FROM leads and two CPUs, else none). Each `chunk` (rounded to whole blocks of BLOCK leads)
    is one transaction. The data depends on the seed only, never on `workers` or `chunk`.
    """
    if leads < 0 or days < 1:
        raise Invalid("--leads must be >= 0 and --days >= 1")
    started = time.perf_counter()
    # fail early with a clear message when `init` was not run, or the model lacks what the story needs
    model = app.loaded_model().model
    rules = StoryRules.of(model)
    if if_empty:
        with app.db.read() as conn:
            if conn.execute(select(func.count()).select_from(leads_table)).scalar():
                return {"leads": 0, "entries": 0, "activities": 0, "seconds": 0.0, "skipped": True}
    owner_teams = ensure_people(app)
    prefix = f"D{seed}-"
    with app.db.read() as conn:
        if repo.lead_row(conn, f"{prefix}{0:07d}") is not None:
            raise Invalid(f"demo data with seed {seed} is already in this database; use another --seed")
    now = app.clock.now()
    plan = _Plan(seed, now.timestamp(), days, now, owner_teams, app.db.is_sqlite, rules)
    per_chunk = max(1, round(chunk / BLOCK)) * BLOCK
    chunks = [(first, min(leads, first + per_chunk)) for first in range(0, leads, per_chunk)]
    if workers is None:
        workers = 2 if leads >= WORKERS_FROM and (os.cpu_count() or 1) >= 2 else 0
    total_entries = total_activities = 0
    for (first, end), payload in zip(chunks, _payloads(plan, chunks, workers), strict=True):
        with app.db.write() as conn:
            if isinstance(payload, bytes):
                written, logged = insert_image(conn, payload)
            else:
                written, logged = insert_rows(conn, payload)
            # when the model's time rules next fire for them, from what was written (`domain.due`)
            due.refresh(conn, model, [f"{prefix}{n:07d}" for n in range(first, end)], now)
        total_entries += written
        total_activities += logged
        if progress:
            progress(end - first)
    return {
        "leads": leads,
        "entries": total_entries,
        "activities": total_activities,
        "seconds": time.perf_counter() - started,
        "skipped": False,
    }


@dataclass(frozen=True)
class _Plan:
    """What every block needs to know (small and picklable: it travels to the workers)."""

    seed: int
    now: float  # epoch seconds
    days: int
    recorded_at: datetime
    owner_teams: dict[str, str | None]
    sqlite: bool
    rules: StoryRules


def _payloads(plan: _Plan, chunks: list[tuple[int, int]], workers: int) -> Iterator[HistoryRows | bytes]:
    """Each chunk's rows, in order: built here, or by `workers` processes a few chunks ahead of the writer."""
    if workers <= 0:
        for first, end in chunks:
            yield _rows(plan, first, end)
        return
    # Linux: fork, so workers start at once and need no importable __main__; they only compute and never
    # touch the database connections they inherit. Elsewhere fork is unsafe or missing: spawn.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[HistoryRows | bytes]] = deque()
        ahead = iter(chunks)
        try:
            for first, end in ahead:
                pending.append(pool.submit(_chunk_payload, plan, first, end))
                if len(pending) > workers + 1:  # bounded: memory stays flat however many leads
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _chunk_payload(plan: _Plan, first: int, end: int) -> HistoryRows | bytes:
    """In a worker: the chunk's rows, packed as a SQLite image when the database is SQLite."""
    rows = _rows(plan, first, end)
    return sqlite_image(rows) if plan.sqlite else rows


def _rows(plan: _Plan, first: int, end: int) -> HistoryRows:
    """Leads first..end-1 as the rows of the three tables, block by block."""
    sqlite = plan.sqlite
    recorded = stored_time(plan.recorded_at, sqlite)
    out = Out(owner_teams=plan.owner_teams, null=SQLITE_NULL if sqlite else None, rules=plan.rules, recorded=recorded)
    constants = {
        "leads": {"incomplete": False},
        "ledger": dict(zip(_LEDGER_CONSTANTS, (recorded, None, None, False), strict=True)),
        "activities": dict(zip(_ACTIVITY_CONSTANTS, (None, recorded, "manual"), strict=True)),
    }
    rows = HistoryRows([], [], [], sqlite, constants)
    for block in range(first // BLOCK, (end + BLOCK - 1) // BLOCK):
        _block(plan, out, block, max(first, block * BLOCK), min(end, (block + 1) * BLOCK), rows)
    return rows


def _block(plan: _Plan, out: Out, block: int, low: int, high: int, rows: HistoryRows) -> None:
    """Leads low..high-1 of a block: its own random stream, so it is the same wherever it is simulated."""
    rng = random.Random(f"leadledger-demo/{plan.seed}/{block}")
    now = plan.now
    start = now - plan.days * DAY
    names = list(SOURCES)
    cumulative = list(itertools.accumulate(SOURCES[s][0] for s in names))
    prefix = f"D{plan.seed}-"
    null = out.null
    for n in range(block * BLOCK, high):
        lead_id = f"{prefix}{n:07d}"
        source = rng.choices(names, cum_weights=cumulative)[0]
        created = start + (now - start) * (rng.random() ** 0.8)  # more recent leads than old ones
        sim = simulate(rng, lead_id, created, now, source, out)
        first, last = pick(rng, FIRST), pick(rng, LAST)
        company = f"{pick(rng, COMPANY)} {pick(rng, SUFFIX)}"
        phone = f"+1202555{n % 10000:04d}" if rng.random() < 0.5 else null
        campaign = pick(rng, SOURCES[source][3])
        territory = pick(rng, TERRITORIES)
        value = round(rng.lognormvariate(9.5, 0.8), 2)
        if n < low:  # simulated only to advance the stream to where this chunk starts
            continue
        email = f"{first}.{last}{n}@{company.split()[0].lower()}.example".lower()
        lead = (lead_id, f"{first} {last}", email, phone, company, source, campaign)
        fields = f'{{"territory": "{territory}", "estimated_value": {value!r}}}'  # JSON, as ENCODE would write it
        # the creation entry captures the lead's data, as the service's does (the ledger folds to the fields)
        captured = {"name": lead[1], "email": email, "phone": phone, "company": company, "source": source,
                    "campaign": campaign, "territory": territory, "estimated_value": value}  # fmt: skip
        if phone is null:
            del captured["phone"]
        first_entry = sim.entries[0]
        sim.entries[0] = (*first_entry[:_DATA], ENCODE(captured), *first_entry[_DATA + 1 :])
        sim.seal(_ENTRY_COLUMNS)
        rows.leads.append(sim.lead_row(lead, fields))
        rows.ledger.extend(sim.entries)
        rows.activities.extend(sim.activities)
