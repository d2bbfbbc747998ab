"""Status migrations at run time: the map composed across stored model versions, the leads still in a key the
active model dropped, and the appended entries that move them.

`model apply FILE` calls `apply_model`: the file is linted against the stored versions (`model.migration_lint`),
the leads it would strand are listed (`--dry-run` stops there), the version is stored, and `migrate` moves
each lead in a migrated key by an appended `migration` entry (`domain.migrations.migration_change`) through
the unit of work — the ledger keeps what was recorded. `migrate` works from the leads' current state, so it
can be run again (`leadledger model migrate`) to finish an interrupted run or after fixing a stuck lead.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, select

from leadledger.domain.changes import Refused
from leadledger.domain.migrations import Target, compose, describe_target, extend, migration_change, resolve
from leadledger.domain.statusmodel import StatusModel
from leadledger.model.lint import Finding, lint
from leadledger.model.loader import LoadedModel, load_text
from leadledger.model.migration_lint import Earlier, kind_of, lint_migrations
from leadledger.model.migration_rules import migrations_of_text
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import repository as repo
from leadledger.store.tables import leads, model_versions

BATCH = 500  # leads moved per transaction
SAMPLE = 20  # leads listed per (from, to) in a plan

_cache_lock = threading.Lock()
_loaded: dict[str, LoadedModel] = {}  # stored model texts compiled, by digest (they never change)
_maps: dict[tuple[tuple[int, str], ...], dict[str, Target]] = {}


def _versions(conn: Connection) -> list[tuple[int, str]]:
    rows = conn.execute(select(model_versions.c.id, model_versions.c.digest).order_by(model_versions.c.id))
    return [(int(r.id), str(r.digest)) for r in rows]


def _text(conn: Connection, version_id: int) -> str:
    row = repo.model_row(conn, version_id)
    assert row is not None
    return str(row.text)


def stored_history(conn: Connection) -> list[Earlier]:
    """Every stored model version, oldest first (compiled once per process)."""
    out = []
    for version_id, digest in _versions(conn):
        loaded = _loaded.get(digest)
        if loaded is None:
            loaded = load_text(_text(conn, version_id), f"model version {version_id}", check_holidays=False)
            with _cache_lock:
                if len(_loaded) > 64:
                    _loaded.clear()
                _loaded[digest] = loaded
        out.append(Earlier(f"version {version_id}", loaded.model))
    return out


def effective_map(conn: Connection, proposed: StatusModel | None = None) -> dict[str, Target]:
    """Recorded key -> what it reads as under the newest model: every stored version's `migrations:` composed
    in order (and a proposed model's on top). Empty when no version ever migrated a status."""
    versions = tuple(_versions(conn))
    stored = _maps.get(versions)
    if stored is None:
        stored = compose(migrations_of_text(_text(conn, version_id)) for version_id, _ in versions)
        with _cache_lock:
            if len(_maps) > 64:
                _maps.clear()
            _maps[versions] = stored
    return stored if proposed is None else extend(stored, proposed.migrations)


def lint_with_history(app: App, loaded: LoadedModel) -> list[Finding]:
    """The model's own lint (with this database's endpoints and booking links) and its migrations' against
    every stored version, errors first."""
    from leadledger.services.models import lint_environment

    with app.db.read() as conn:
        history = stored_history(conn) if repo.latest_model_id(conn) is not None else []
    findings = lint(loaded, lint_environment(app)) + lint_migrations(loaded, history)
    findings.sort(key=lambda f: (f.level != "error", f.line or 0))
    return findings


# --- the leads a model strands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """A lead in a key the model does not have: where its migration sends it, or why it cannot go."""

    lead_id: str
    from_status: str
    stage: str
    to_status: str | None
    problem: str | None = None


def stranded(conn: Connection, model: StatusModel, effective: Mapping[str, Target]) -> list[Move]:
    """Every lead whose status is not a status of `model`, with the move its migration makes."""
    counts = conn.execute(select(leads.c.status, func.count()).group_by(leads.c.status)).all()
    gone = sorted(status for status, _ in counts if status not in model.statuses)
    moves: list[Move] = []
    for start in range(0, len(gone), 200):
        part = gone[start : start + 200]
        rows = conn.execute(
            select(leads.c.id, leads.c.status, leads.c.stage, leads.c.reason)
            .where(leads.c.status.in_(part))
            .order_by(leads.c.status, leads.c.id)
        )
        for row in rows:
            moves.append(_move(model, effective, row.id, row.status, row.stage, row.reason))
    return moves


def _move(
    model: StatusModel, effective: Mapping[str, Target], lead_id: str, status: str, stage: str, reason: str | None
) -> Move:
    target = effective.get(status)
    if target is None:
        return Move(lead_id, status, stage, None, f"{status} is not a status of the model and no migration names it")
    key = resolve(target, stage, reason)
    if key not in model.statuses:
        return Move(lead_id, status, stage, key, f"{key} is not a status of the model")
    if stage not in model.statuses[key].stages:
        return Move(lead_id, status, stage, key, f"{key} is not valid in stage {stage}")
    return Move(lead_id, status, stage, key)


def summarise(moves: Sequence[Move]) -> list[dict[str, Any]]:
    """Moves grouped by (from, to, problem), with counts and the first lead ids."""
    groups: dict[tuple[str, str | None, str | None], dict[str, Any]] = {}
    for move in moves:
        key = (move.from_status, move.to_status, move.problem)
        group = groups.setdefault(key, {"from": move.from_status, "to": move.to_status, "leads": 0,
                                        "problem": move.problem, "samples": []})  # fmt: skip
        group["leads"] += 1
        if len(group["samples"]) < SAMPLE:
            group["samples"].append(move.lead_id)
    return sorted(groups.values(), key=lambda g: (g["problem"] is not None, g["from"], str(g["to"])))


def migrations_table(model: StatusModel, effective: Mapping[str, Target], previous: StatusModel | None) -> list[dict[str, Any]]:
    """The model's own migrations (kind, target, reason) and every older key that reads through the map."""
    rows = []
    for old, migration in model.migrations.items():
        rows.append({"from": old, "to": describe_target(migration.target),
                     "kind": kind_of(migration, previous, model.migrations), "reason": migration.reason,
                     "declared": True})  # fmt: skip
    for old, target in sorted(effective.items()):
        if old not in model.migrations:
            rows.append({"from": old, "to": describe_target(target), "kind": "earlier version", "reason": "",
                         "declared": False})  # fmt: skip
    return rows


def plan_file(app: App, text: str, file: str) -> dict[str, Any]:
    """What applying FILE would do about migrations, nothing written: lint findings against the stored versions,
    the migrations (with older keys composed) and the leads it would move or strand."""
    loaded = load_text(text, file)
    findings = lint_with_history(app, loaded)
    with app.db.read() as conn:
        history = stored_history(conn)
        effective = effective_map(conn, loaded.model)
        moves = stranded(conn, loaded.model, effective)
    previous = history[-1].model if history else None
    return {
        "file": file,
        "model": f"{loaded.model.name} v{loaded.model.version}",
        "errors": [f.as_dict() for f in findings if f.level == "error"],
        "warnings": [f.as_dict() for f in findings if f.level != "error"],
        "migrations": migrations_table(loaded.model, effective, previous),
        "moves": summarise(moves),
        "leads_to_move": sum(1 for m in moves if m.problem is None),
        "leads_stuck": sum(1 for m in moves if m.problem is not None),
    }


# --- moving the leads --------------------------------------------------------------------------------------


def migrate(app: App, actor: str) -> dict[str, Any]:
    """Move every lead in a key the active model dropped, by appended `migration` entries (ops only).

    Each lead is judged by `domain.migrations.migration_change`; the entry records the model version and the
    migration it follows. No automation runs: a migration relabels, it does not enter a status anew.
    """
    with app.db.read() as conn:
        user = repo.user_row(conn, actor)
        if user is None or user.role != "ops" or not user.active:
            raise Forbidden("only ops may move leads by a model migration")
        version_id = repo.latest_model_id(conn)
        if version_id is None:
            raise Invalid("no status model yet: run `leadledger init` first")
        history = stored_history(conn)
        model = history[-1].model
        effective = effective_map(conn)
        moves = stranded(conn, model, effective)
    previous = history[-2].model if len(history) > 1 else None
    kinds = {old: (kind_of(m, previous, model.migrations), m.reason) for old, m in model.migrations.items()}
    ready = [m.lead_id for m in moves if m.problem is None]
    moved: Counter[tuple[str, str]] = Counter()
    refused: list[dict[str, Any]] = [
        {"lead": m.lead_id, "from": m.from_status, "to": m.to_status, "why": m.problem} for m in moves if m.problem
    ]
    for start in range(0, len(ready), BATCH):
        batch = ready[start : start + BATCH]
        work = partial(_move_batch, lead_ids=batch, effective=effective, version_id=version_id, kinds=kinds)
        done, stuck = in_unit_of_work(app, actor, work, automation=False)
        moved.update(done)
        refused.extend(stuck)
    return {
        "model_version": version_id,
        "moved": sum(moved.values()),
        "by_status": [{"from": a, "to": b, "leads": n} for (a, b), n in sorted(moved.items())],
        "refused": refused,
    }


def _move_batch(
    uow: UnitOfWork,
    *,
    lead_ids: list[str],
    effective: Mapping[str, Target],
    version_id: int,
    kinds: Mapping[str, tuple[str, str]],
) -> tuple[Counter[tuple[str, str]], list[dict[str, Any]]]:
    uow.load(lead_ids)
    done: Counter[tuple[str, str]] = Counter()
    stuck: list[dict[str, Any]] = []
    for lead_id in lead_ids:
        state = uow.states.get(lead_id)
        if state is None:
            continue
        record = uow.leads[lead_id]
        change = migration_change(uow.model, effective, state, entry_reason=record.projection.reason,
                                  actor=uow.who, at=max(uow.now, state.last_at),
                                  note=f"model version {version_id}: {state.status} is migrated")  # fmt: skip
        if isinstance(change, Refused):
            if state.status in uow.model.statuses:
                continue  # moved meanwhile (another run, or a person)
            why = "; ".join(v.message for v in change.violations)
            stuck.append({"lead": lead_id, "from": state.status, "to": None, "why": why})
            continue
        kind, why = kinds.get(state.status, ("earlier version", ""))
        detail = {"model_version": version_id, "from": state.status, "to": change.to_status, "kind": kind}
        if why:
            detail["reason"] = why
        uow.append(change, entry_data={"migration": detail})
        done[(state.status, change.to_status)] += 1
    return done, stuck


def apply_model(app: App, text: str, file: str, actor: str, *, dry_run: bool = False) -> dict[str, Any]:
    """`model apply FILE`: plan, refuse what cannot be done, store the version, move the leads."""
    from leadledger.services.models import ModelRejected, activate_model

    with app.db.read() as conn:
        user = repo.user_row(conn, actor)
    if user is None or user.role != "ops" or not user.active:
        raise Forbidden("only ops may change the status model")
    plan = plan_file(app, text, file)
    if dry_run:
        return {"applied": False, "plan": plan}
    if plan["errors"]:
        raise ModelRejected([Finding(**f) for f in plan["errors"]])
    if plan["leads_stuck"]:
        stuck = [g for g in plan["moves"] if g["problem"]]
        listed = "; ".join(f"{g['leads']} in {g['from']}: {g['problem']} (e.g. {', '.join(g['samples'][:3])})"
                           for g in stuck)  # fmt: skip
        raise Invalid(f"the model would strand leads nothing can move: {listed}; add or fix `migrations:` first")
    stored = activate_model(app, text=text, file=file, actor=actor)
    result = migrate(app, actor)
    return {"applied": True, "plan": plan, "model": stored, "migrated": result}


def current(app: App) -> dict[str, Any]:
    """The active model's migrations, older keys composed, and the leads still in a key it dropped."""
    with app.db.read() as conn:
        history = stored_history(conn)
        if not history:
            raise Invalid("no status model yet: run `leadledger init` first")
        model = history[-1].model
        effective = effective_map(conn)
        moves = stranded(conn, model, effective)
    previous = history[-2].model if len(history) > 1 else None
    return {
        "model_version": history[-1].label,
        "migrations": migrations_table(model, effective, previous),
        "moves": summarise(moves),
    }
