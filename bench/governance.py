"""Governance's benchmark: the council pack, the monthly spot-check sample and `model diff` on demo data.

Targets (issue 16, on 1 M demo leads): the council pack of a quarter <= 10 s; a month's stratified sample for
a manager <= 2 s; `model diff` instant (<= 0.1 s). The same-run baseline of the pack is `report governance` for
the same quarter (the pack adds overrides, SLAs, spot-checks and the similar-status detector to it); the
sample's is `review transitions` counting the same month's changes of the same teams.

The analytics store is synced once before timing (as the worker's first round would); each timed call syncs
again, which finds nothing new. Then a status is renamed (`model apply` with a `migrations:` map, on the bench's
own copy of the database): the apply that moves the leads, the analytics store's resync that reads every
recorded key through the map (baseline: the resync after a label-only model version, same run) and the pack
of the renamed history (baseline: the same pack before). `python -m bench.run --only governance` (1 M leads; `--quick`: 20 k), or
`python -m bench.governance --leads N [--db PATH]` (PATH: reuse a demo database).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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


def renamed_model_text(version: str) -> str:
    """The default model with attempting_contact called contacting, and the migration that says so."""
    from leadledger.model.loader import default_model_text

    text = re.sub(r"\battempting_contact\b", "contacting", default_model_text())
    text = text.replace('version: "1"', f'version: "{version}"', 1)
    return text + "\nmigrations:\n  attempting_contact: contacting\n"


def measure_rename(db: Path, repeats: int) -> dict[str, Any]:
    """Rename a status on `db` (it is changed: pass a copy) and time what follows; see the module's docstring."""
    from leadledger import analytics
    from leadledger.analytics.council import council_pack
    from leadledger.bootstrap import build_app
    from leadledger.model.loader import default_model_text
    from leadledger.services import council, status_migrations

    app = build_app(db_url=f"sqlite:///{db}")
    analytics.sync(app)
    this_quarter = council.quarter_of(app.clock.now().date())
    quarter = council.quarter_of(this_quarter[0] - timedelta(days=1))

    def pack() -> None:
        council_pack(app, date_from=quarter[0], date_to=quarter[1])

    def resync_after(text: str, file: str) -> tuple[dict[str, Any], float, float]:
        started = time.perf_counter()
        result = status_migrations.apply_model(app, text, file, "admin")
        applied = time.perf_counter() - started
        started = time.perf_counter()
        analytics.sync(app)
        return result, applied, time.perf_counter() - started

    pack()
    out: dict[str, Any] = {"pack_before": _timed(pack, repeats)}
    relabelled = default_model_text().replace('version: "1"', 'version: "2"', 1).replace(
        "label: Connected / Engaged", "label: Engaged", 1)  # fmt: skip
    _, _, out["resync_label"] = resync_after(relabelled, "v2.yaml")
    result, out["apply_rename"], out["resync_rename"] = resync_after(renamed_model_text("3"), "v3.yaml")
    out["moved"] = result["migrated"]["moved"]
    out["pack_after"] = _timed(pack, repeats)
    return out


def figures(result: dict[str, Any], scale: str) -> list[Figure]:
    return [
        Figure(f"council pack, a quarter ({scale})", result["pack"], unit="s", target=PACK_TARGET_S, better="lower",
               baseline_runs=result["governance"], baseline="report governance, same quarter"),
        Figure(f"monthly spot-check sample ({scale})", result["sample"], unit="s", target=SAMPLE_TARGET_S,
               better="lower", baseline_runs=result["month_changes"], baseline="review transitions, same month"),
        Figure("model diff (default model)", result["diff"], unit="s", target=DIFF_TARGET_S, better="lower"),
    ]  # fmt: skip


def rename_figures(result: dict[str, Any], scale: str) -> list[Figure]:
    return [
        Figure(f"model apply renaming a status ({scale}, {result['moved']:,} leads moved)", [result["apply_rename"]],
               unit="s", better="lower"),
        Figure(f"analytics resync after the rename ({scale})", [result["resync_rename"]], unit="s", better="lower",
               baseline_runs=[result["resync_label"]], baseline="resync after a label-only model version"),
        Figure(f"council pack of the renamed history ({scale})", result["pack_after"], unit="s",
               target=PACK_TARGET_S, better="lower", baseline_runs=result["pack_before"],
               baseline="the same pack before the rename"),
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
            renamed = measure_rename(db, repeats)  # last: it changes the database
        finally:
            os.environ.pop("LEADLEDGER_ANALYTICS_DB", None)
    return figures(result, f"{leads:,} leads") + rename_figures(renamed, f"{leads:,} leads")


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
    with tempfile.TemporaryDirectory(prefix="bench-governance-") as folder:  # the rename changes its database
        copy = Path(folder) / "renamed.db"
        shutil.copy(db, copy)
        os.environ["LEADLEDGER_ANALYTICS_DB"] = str(Path(folder) / "renamed.duckdb")
        renamed = measure_rename(copy, args.repeat)
    scale = f"{args.leads:,} leads"
    print(json.dumps({f.name: f.as_dict() for f in figures(result, scale) + rename_figures(renamed, scale)}, indent=2))


if __name__ == "__main__":
    main()
