"""Marketing and data quality benchmarks (issue 15's targets), on `leadledger demo` data and a synthetic lead list.

- segment membership as of a past date, target <= 1 s at 1 M leads: each built-in segment on its own (the
  figure is the slowest one); every segment's count at once (`segment list --as-of`) and every segment's ids
  at once are reported beside it;
- segment export streamed (the CSV `segment export -o FILE` writes, spreadsheet-safe cells), target
  >= 200 k rows/s, with the process's peak memory (flat: the export is streamed);
- the duplicate scan (exact + fuzzy with blocking) over a synthetic list with realistic names and 3 %
  injected duplicates (the demo's few names and companies are not realistic for it), target <= 30 s and peak
  memory < 1 GB at 1 M leads, in a subprocess so only the scan is counted;
- the create-time duplicate check: the look-ups `changes.create` makes, per lead, target <= 1 ms.

`python -m bench.run --only marketing` (1 M leads; `--quick`: 20 k). LEADLEDGER_BENCH_DEMO_DB=FILE (with
LEADLEDGER_BENCH_DEMO_LEADS=N) copies a demo database made earlier instead of generating one.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.registry import Context, Figure, benchmark

FULL_LEADS = 1_000_000
QUICK_LEADS = 20_000
FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "José",
         "María", "Jürgen", "Søren", "Zoë", "Yuki", "Wei", "Olga", "Ivan", "Fatima", "Ahmed", "Priya", "Raj", "Chloé"]  # fmt: skip
SYLLABLES = ["ka", "lo", "mi", "ra", "ne", "to", "shi", "ber", "son", "ven", "dor", "ith", "mann", "ez", "ova", "ski"]


def _leadledger() -> str:
    return shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"


def _word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def synthetic_leads(n: int, seed: int = 15) -> list[tuple[str, str, str | None, str | None, str]]:
    """(id, name, email, phone, company): realistic spread, with ~3 % duplicates written another way."""
    rng = random.Random(seed)
    companies = [f"{_word(rng, 2)} {rng.choice(['Inc', 'GmbH', 'Ltd', 'LLC', 'SA', ''])}".strip() for _ in range(n // 20 + 1)]
    out = []
    for i in range(n):
        if out and rng.random() < 0.03:
            _, name, email, phone, company = out[rng.randrange(len(out))]
            name = name.upper() if rng.random() < 0.5 else name.replace("é", "e").replace("ü", "ue")
            email = email.replace("@", f"+{i}@") if email and rng.random() < 0.5 else email
            out.append((f"S{i:08d}", name, email, phone, company + (" Inc" if rng.random() < 0.3 else "")))
            continue
        name = f"{rng.choice(FIRST)} {_word(rng, rng.randint(2, 3))}"
        company = rng.choice(companies)
        email = f"{name.split()[0].lower()}.{i}@{company.split()[0].lower()}.example" if rng.random() < 0.9 else None
        phone = f"+1{rng.randint(2_000_000_000, 9_999_999_999)}" if rng.random() < 0.4 else None
        out.append((f"S{i:08d}", name, email, phone, company))
    return out


def _write_synthetic(db: Path, n: int) -> None:
    """The list as imported leads would be: bulk rows through write_histories (the importer's fast path)."""
    from leadledger.bootstrap import build_app
    from leadledger.services import models
    from leadledger.services.history import LeadHistory, write_histories

    app = build_app(db_url=f"sqlite:///{db}")
    models.initialise(app)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    batch = []
    with app.db.write() as conn:
        for lead_id, name, email, phone, company in synthetic_leads(n):
            lead = {"id": lead_id, "name": name, "email": email, "phone": phone, "company": company}
            entry = {"at": created, "kind": "created", "actor": "system", "actor_role": "ops", "source": "import",
                     "from_status": None, "to_status": "new", "from_stage": None, "to_stage": "lead",
                     "from_owner": None, "to_owner": None}  # fmt: skip
            batch.append(LeadHistory(lead=lead, entries=[entry]))
            if len(batch) >= 20_000:
                write_histories(conn, batch, recorded_at=created, owner_teams={}, model=app.model)
                batch = []
        if batch:
            write_histories(conn, batch, recorded_at=created, owner_teams={}, model=app.model)
    app.db.dispose()


def _child(args: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.marketing", *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_child(kind: str, db: str, extra: str | None) -> dict[str, Any]:
    from leadledger.bootstrap import build_app

    app = build_app(db_url=f"sqlite:///{db}")
    started = time.perf_counter()
    result: dict[str, Any] = {}
    if kind == "scan":
        from leadledger.services.duplicates import find_duplicates

        scan = find_duplicates(app)
        result = {"pairs": len(scan.pairs), "groups": len(scan.groups), "skipped": len(scan.skipped_blocks)}
    elif kind == "export":
        from leadledger.marketing.segments import Export, list_segments

        list_segments(app)  # brings the store up to date first: not counted in the export
        started = time.perf_counter()
        rows = 0
        with open(os.devnull, "w", encoding="utf-8") as sink:  # what `segment export -o FILE` writes
            for key in ("suppress", "nurture_not_now"):
                export = Export(app, key, "csv")
                sink.writelines(export)
                rows += export.rows
        result = {"rows": rows}
    elif kind == "asof":
        from leadledger.marketing.segments import list_segments, memberships

        list_segments(app)
        started = time.perf_counter()
        past = datetime.fromisoformat(extra or "") if extra else app.clock.now() - timedelta(days=30)
        found = memberships(app, as_of=past)
        result = {"members": sum(len(v) for v in found.values())}
        result["seconds"] = time.perf_counter() - started
        each = {}  # one segment's members (what `segment export --as-of` and the lead list's filter read)
        for key in found:
            started = time.perf_counter()
            memberships(app, [key], as_of=past)
            each[key] = time.perf_counter() - started
        result["each"] = each
        started = time.perf_counter()
        list_segments(app, as_of=past)  # `segment list --as-of`: every segment's member count at once
        result["list_seconds"] = time.perf_counter() - started
        return {**result, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    elif kind == "check":
        from leadledger.services.duplicates import existing_contact
        from leadledger.services.unit_of_work import UnitOfWork
        from leadledger.store.session import SqlWriteSession

        model = app.loaded_model().model
        probes = [(f"nobody{i}@example.com", f"+1555{i:07d}") for i in range(2000)]
        with app.db.write() as conn:  # as in a creation: the unit of work's session, nothing written
            uow = UnitOfWork(SqlWriteSession(conn), model, now=app.clock.now(), actor="system")
            existing_contact(uow, {"email": "warm@example.com"})
            started = time.perf_counter()
            for email, phone in probes:
                existing_contact(uow, {"email": email, "phone": phone})
        result = {"probes": len(probes)}
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


@benchmark("marketing", "segments as of a date and exported, duplicate scan, create-time duplicate check")
def marketing(ctx: Context) -> list[Figure]:
    leads = QUICK_LEADS if ctx.quick else FULL_LEADS
    repeats = ctx.times(3, quick=1)
    figures: list[Figure] = []
    with ctx.folder("marketing") as folder:
        demo = folder / "demo.db"
        env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{demo}"}
        made = os.environ.get("LEADLEDGER_BENCH_DEMO_DB")  # a demo database made earlier (`demo --leads N`)
        if made:
            shutil.copy(made, demo)
            leads = int(os.environ.get("LEADLEDGER_BENCH_DEMO_LEADS", leads))
        else:
            subprocess.run([_leadledger(), "init"], env=env, check=True, capture_output=True)
            subprocess.run([_leadledger(), "demo", "--leads", str(leads), "--seed", "15"], env=env, check=True,
                           capture_output=True)  # fmt: skip
        ctx.log(f"marketing: {leads} demo leads written")
        asof = [_child(["asof", str(demo)]) for _ in range(repeats)]
        figures.append(Figure(f"membership of one segment as of 30 days ago, {leads} leads (the slowest segment)",
                              [max(r["each"].values()) for r in asof], unit="s", target=1.0, better="lower",
                              extra={"each": asof[0]["each"]}))  # fmt: skip
        figures.append(Figure(f"`segment list --as-of` (every segment's members counted at once), {leads} leads",
                              [r["list_seconds"] for r in asof], unit="s", better="lower"))  # fmt: skip
        figures.append(Figure("every segment's member ids at once, into Python sets (no target: informative)",
                              [r["seconds"] for r in asof], unit="s", better="lower"))  # fmt: skip
        exports = [_child(["export", str(demo)]) for _ in range(repeats)]
        figures.append(Figure("segment export (CSV, spreadsheet-safe), streamed",
                              [r["rows"] / r["seconds"] for r in exports], unit="rows/s", target=200_000,
                              extra={"rows": exports[0]["rows"], "peak_mb": [r["peak_mb"] for r in exports]}))  # fmt: skip
        checks = [_child(["check", str(demo)]) for _ in range(repeats)]
        figures.append(Figure("create-time duplicate check (e-mail + phone look-up)",
                              [r["seconds"] / r["probes"] * 1000 for r in checks], unit="ms/lead", target=1.0,
                              better="lower"))  # fmt: skip
        synthetic = folder / "synthetic.db"
        _write_synthetic(synthetic, leads)
        ctx.log(f"marketing: {leads} synthetic leads written")
        scans = [_child(["scan", str(synthetic)]) for _ in range(repeats)]
        figures.append(Figure(f"duplicate scan, {leads} leads (exact + fuzzy)", [r["seconds"] for r in scans],
                              unit="s", target=30.0, better="lower",
                              extra={"pairs": scans[0]["pairs"], "groups": scans[0]["groups"]}))  # fmt: skip
        figures.append(Figure("duplicate scan peak memory", [r["peak_mb"] for r in scans], unit="MB", target=1024,
                              better="lower"))  # fmt: skip
    return figures


if __name__ == "__main__":
    kind, db, *rest = sys.argv[1:]
    print(json.dumps(_run_child(kind, db, rest[0] if rest else None)))
