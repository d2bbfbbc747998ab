"""Governance's benchmark: the council pack, the monthly spot-check sample and `model diff` on demo data.

Targets (issue 16, on 1 M demo leads): the council pack of a quarter <= 10 s; a month's stratified sample for
a manager <= 2 s; `model diff` instant (<= 0.1 s). The same-run baseline of the pack is `report governance` for
the same quarter (the pack adds overrides, SLAs, spot-checks and the similar-status detector to it); the
sample's is `review transitions` counting the same month's changes of the same teams.

The analytics store is synced once before timing (as the worker's first round would); each timed call syncs
again, which finds nothing new. `python -m bench.run --only governance` (1 M leads; `--quick`: 20 k), or
`python -m bench.governance --leads N [--db PATH]` (PATH: reuse a demo database).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.registry import Context, Figure, benchmark

FULL_LEADS = 1_000_000
QUICK_LEADS = 20_000
PACK_TARGET_S = 10.0
SAMPLE_TARGET_S = 2.0
DIFF_TARGET_S = 0.1


def _demo(db: Path, leads: int) -> None:
    exe = shutil.which("leadledger", path=str(Path(sys.executable).parent)) or "leadledger"
    env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{db}"}
    subprocess.run([exe, "init"], env=env, check=True, capture_output=True)
    subprocess.run([exe, "demo", "--leads", str(leads), "--seed", "16"], env=env, check=True, capture_output=True)
    subprocess.run([exe, "sla", "rebuild"], env=env, check=True, capture_output=True)


def _timed(function: Any, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return runs


def measure(db: Path, repeats: int) -> dict[str, Any]:
    from leadledger import analytics
    from leadledger.analytics import governance_review as read
    from leadledger.analytics.council import council_pack
    from leadledger.bootstrap import build_app
    from leadledger.model.diff import diff_models
    from leadledger.model.loader import default_model_text, load_text
    from leadledger.services import council, review

    app = build_app(db_url=f"sqlite:///{db}")
    started = time.perf_counter()
    analytics.sync(app)
    out: dict[str, Any] = {"sync_seconds": time.perf_counter() - started}
    this_quarter = council.quarter_of(app.clock.now().date())
    last_quarter = council.quarter_of(this_quarter[0] - timedelta(days=1))
    month = review.previous_month(app.clock.now())
    first, last = review.month_bounds(month)
    with app.db.read() as conn:
        teams = review.managed_teams(conn, "maria")

    def pack() -> None:
        council_pack(app, date_from=last_quarter[0], date_to=last_quarter[1])

    def governance() -> None:
        analytics.report(app, "governance", date_from=last_quarter[0], date_to=last_quarter[1])

    seeds = iter(range(10_000))

    def sample() -> None:
        with read.governance_query(app, date_from=first, date_to=last) as q:
            read.draw(q, read.ChangeFilter(teams=teams), per_rep=10, seed=f"bench-{next(seeds)}")

    def month_changes() -> None:
        with read.governance_query(app, date_from=first, date_to=last) as q:
            read.changes(q, read.ChangeFilter(teams=teams), limit=1)

    old = load_text(default_model_text(), "old.yaml")
    new = load_text(default_model_text().replace("label: Connected / Engaged", "label: Engaged", 1), "new.yaml")

    def diff() -> None:
        diff_models(old, new)

    pack()  # warm: holiday tables, calendars
    out["quarter"] = [str(d) for d in last_quarter]
    out["pack"] = _timed(pack, repeats)
    out["governance"] = _timed(governance, repeats)
    out["month"] = month
    out["sample"] = _timed(sample, repeats)
    out["month_changes"] = _timed(month_changes, repeats)
    out["diff"] = _timed(diff, max(repeats, 5))
    return out


def figures(result: dict[str, Any], scale: str) -> list[Figure]:
    return [
        Figure(f"council pack, a quarter ({scale})", result["pack"], unit="s", target=PACK_TARGET_S, better="lower",
               baseline_runs=result["governance"], baseline="report governance, same quarter"),
        Figure(f"monthly spot-check sample ({scale})", result["sample"], unit="s", target=SAMPLE_TARGET_S,
               better="lower", baseline_runs=result["month_changes"], baseline="review transitions, same month"),
        Figure("model diff (default model)", result["diff"], unit="s", target=DIFF_TARGET_S, better="lower"),
    ]  # fmt: skip


@benchmark("governance", "council pack <= 10 s, monthly sample <= 2 s, model diff instant, on 1 M demo leads")
def governance(ctx: Context) -> list[Figure]:
    leads = QUICK_LEADS if ctx.quick else FULL_LEADS
    repeats = ctx.times(3, quick=1)
    with ctx.folder("bench-governance") as folder:
        db = folder / "governance.db"
        ctx.log(f"  governance: generating {leads} demo leads")
        _demo(db, leads)
        os.environ["LEADLEDGER_ANALYTICS_DB"] = str(folder / "governance.duckdb")
        try:
            result = measure(db, repeats)
        finally:
            os.environ.pop("LEADLEDGER_ANALYTICS_DB", None)
    return figures(result, f"{leads:,} leads")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.governance", description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=FULL_LEADS)
    parser.add_argument("--db", type=Path, default=None, help="an existing demo database to reuse")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    db = args.db
    if db is None:
        db = Path(f"governance-{args.leads}.db")
        if not db.exists():
            _demo(db, args.leads)
    result = measure(db, args.repeat)
    print(json.dumps({f.name: f.as_dict() for f in figures(result, f"{args.leads:,} leads")}, indent=2))


if __name__ == "__main__":
    main()
