"""Model versions side by side: load any stored version, and diff two of them (or a proposed file).

The CLI's `model diff`, `model apply` (which shows the diff first) and the API's /model/diff call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from leadledger.model.diff import ModelDiff, diff_models
from leadledger.model.loader import LoadedModel, load_text
from leadledger.services.app import App
from leadledger.services.errors import Invalid, NotFound
from leadledger.store import repository as repo
from leadledger.store.tables import model_versions


@dataclass(frozen=True)
class Version:
    """A model to compare: a stored version (with its id) or a proposed file (id None)."""

    loaded: LoadedModel
    label: str
    id: int | None = None


def stored_version(app: App, version_id: int) -> Version:
    """A stored model version by id (the model is compiled without loading holiday tables)."""
    with app.db.read() as conn:
        row = repo.model_row(conn, version_id)
    if row is None:
        raise NotFound(f"no model version {version_id}; `leadledger model history` lists them")
    loaded = load_text(row.text, f"model version {row.id}", check_holidays=False)
    return Version(loaded, f"version {row.id} ({row.name} v{row.version})", row.id)


def proposed_version(text: str, file: str) -> Version:
    """A model file that is not stored (yet): loaded and validated, errors naming its lines."""
    loaded = load_text(text, file)
    return Version(loaded, f"{file} ({loaded.model.name} v{loaded.model.version})")


def version_ids(app: App) -> list[int]:
    with app.db.read() as conn:
        return [int(r[0]) for r in conn.execute(select(model_versions.c.id).order_by(model_versions.c.id))]


def _previous(ids: list[int], version_id: int) -> int | None:
    earlier = [i for i in ids if i < version_id]
    return earlier[-1] if earlier else None


def diff(app: App, old: int | Version | None = None, new: int | Version | None = None) -> ModelDiff:
    """The changes from `old` to `new`.

    Defaults: `new` is the active version; `old` is the version stored before `new`, or the active version
    when `new` is a proposed file. A single stored version compared with nothing before it is an error.
    """
    ids = version_ids(app)
    if not ids:
        raise Invalid("no status model yet: run `leadledger init` first")
    if new is None:
        new = ids[-1]
    if old is None:
        if isinstance(new, Version):
            old = ids[-1]
        else:
            before = _previous(ids, new)
            if before is None:
                raise Invalid(f"version {new} is the first stored model: name a version or a file to compare with")
            old = before
    old_version = old if isinstance(old, Version) else stored_version(app, old)
    new_version = new if isinstance(new, Version) else stored_version(app, new)
    return diff_models(old_version.loaded, new_version.loaded, old_label=old_version.label, new_label=new_version.label)


# --- what-if: a proposed model replayed over a past period, nothing written ---------------------------------


def recorded_changes_under(
    app: App, proposed: LoadedModel, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Status changes recorded in [start, end) that the proposed model's transitions would refuse: the status
    is gone, the move is not allowed, or the role that made it may not (people's changes; automation's are
    recomputed by the replay). Recorded keys read through the migrations, the proposed file's included (a
    renamed status is not "gone"); migration entries are not judged. Grouped by (from, to, why), with counts
    and sample leads."""
    from leadledger.analytics.governance_review import governance_query
    from leadledger.domain.migrations import compose, map_status

    model = proposed.model
    extra = compose([model.migrations])  # the store already reads keys through the stored versions' maps
    with governance_query(
        app,
        date_from=start.date() if start else None,
        date_to=(end - timedelta(microseconds=1)).date() if end else None,
    ) as q:
        rows = q.rows(
            f"""SELECT from_status, to_status, actor_role, source, to_stage, reason, count(*),
                       list(lead_id ORDER BY ts)[1:3]
                FROM ledger_m WHERE kind = 'change' AND from_status IS DISTINCT FROM to_status
                  AND source <> 'migration' AND ts <= $t AND {q.in_period("ts")} GROUP BY ALL"""
        )
    out: dict[tuple[str | None, str, str], dict[str, Any]] = {}
    for recorded_from, recorded_to, role, source, stage, reason, n, samples in rows:
        from_status = map_status(extra, recorded_from, stage, None)
        to_status = map_status(extra, recorded_to, stage, reason) or recorded_to
        if from_status == to_status:
            continue
        if to_status not in model.statuses:
            why = f"{to_status} is not a status of the proposed model"
        elif from_status is not None and from_status not in model.statuses:
            why = f"{from_status} is not a status of the proposed model"
        elif from_status is not None and model.transition(from_status, to_status) is None:
            why = "the proposed model does not allow this move"
        elif source == "manual" and from_status is not None:
            rule = model.transition(from_status, to_status)
            if rule is None or role in rule.roles:
                continue
            why = f"a {role} may not make this move under the proposed model"
        else:
            continue
        item = out.setdefault((from_status, to_status, why), {"from": from_status, "to": to_status, "why": why,
                                                               "changes": 0, "samples": []})  # fmt: skip
        item["changes"] += int(n)
        item["samples"] = (item["samples"] + list(samples))[:3]
    return sorted(out.values(), key=lambda r: (-r["changes"], str(r["from"]), r["to"]))


def what_if(
    app: App,
    text: str,
    *,
    file: str,
    start: datetime | None = None,
    end: datetime | None = None,
    sweep_every: timedelta = timedelta(days=1),
) -> dict[str, Any]:
    """`model apply FILE --backtest`: what the file changes, which recorded moves it would refuse, what its rules
    would have done and how the status distribution would differ over [start, end). Nothing is written: the
    replay runs in a scratch database (`services.backtest`)."""
    from leadledger.services.backtest import backtest
    from leadledger.services.status_migrations import plan_file

    proposed = proposed_version(text, file)
    changes = diff(app, None, proposed)
    migrations = plan_file(app, text, file)
    replay = backtest(app, text, start=start, end=end, sweep_every=sweep_every, file=file)
    period = replay["period"]
    refused = recorded_changes_under(
        app, proposed.loaded, datetime.fromisoformat(period["from"]), datetime.fromisoformat(period["to"])
    )
    return {
        "file": file,
        "diff": changes.as_dict(),
        "refused": refused,
        "refused_changes": sum(r["changes"] for r in refused),
        "migrations": {key: migrations[key] for key in ("migrations", "moves", "leads_to_move", "leads_stuck")},
        "replay": replay,
        "written": False,
    }
