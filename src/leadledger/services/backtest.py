"""Rule backtest: replay recorded history under a proposed rule set, without writing to the real database.

What people and integrations did are the inputs: each lead's creation, its logged events, and the changes
people made (source manual, integration, import). What the current rules did (source automation and
time_rule) is output, so it is dropped and recomputed. The inputs are replayed in time order through the
real service layer into a scratch SQLite database with the proposed model, sweeping time rules and SLA clocks
at fixed intervals, exactly as a worker would. The report compares that scratch ledger with what really
happened: per rule, leads moved, alerted, escalated and reassigned with sample ids; SLA breaches; the status
distribution at the end. Because the replay uses the same code as live automation, its counts equal what
applying the rules for real does on a copy of the data.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, and_, func, insert, select

from leadledger.domain.changes import Actor
from leadledger.domain.clock import FixedClock
from leadledger.domain.migrations import Target, map_status
from leadledger.model.lint import lint
from leadledger.model.loader import LoadedModel, load_text
from leadledger.model.source import read_yaml
from leadledger.services import automation, changes
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.services.errors import Invalid
from leadledger.services.models import initialise
from leadledger.services.status_migrations import effective_map
from leadledger.services.sweep import sweep
from leadledger.services.unit_of_work import ENTRY_META_KEYS, UnitOfWork, in_unit_of_work
from leadledger.store.bulk import chunks
from leadledger.store.db import Database
from leadledger.store.tables import (
    CONTACT_COLUMNS,
    activities,
    approvals,
    endpoints,
    leads,
    ledger,
    notifications,
    outbox,
    rule_firings,
    sla_clocks,
    tasks,
    teams,
    users,
)

AUTOMATION_SECTIONS = ("rules", "on_enter", "approvals", "routing", "event_types", "templates", "slas", "time_rules")
INPUT_SOURCES = ("manual", "integration", "import")
CHUNK = 2000
SAMPLES = 5


@dataclass(frozen=True)
class Input:
    """One recorded input: a lead's creation, an event, or a change a person or integration made."""

    at: datetime
    order: int  # creation 0, event 1, change 2: what happened first at the same instant
    lead_id: str
    kind: str
    payload: dict[str, Any]


def proposed_model_text(app: App, text: str) -> str:
    """A full model as proposed: the file itself, or the active model with the file's automation sections."""
    proposed = read_yaml(text)
    if not isinstance(proposed, dict):
        raise Invalid("the rules file must be a YAML mapping")
    if "statuses" in proposed:
        return text
    unknown = set(proposed) - set(AUTOMATION_SECTIONS)
    if unknown:
        raise Invalid(
            f"a rules file holds only {', '.join(AUTOMATION_SECTIONS)}; unexpected: {', '.join(sorted(unknown))}"
        )
    active = read_yaml(app.loaded_model().text)
    active.update(proposed)
    return yaml.safe_dump(active, sort_keys=False, allow_unicode=True)


def backtest(
    app: App,
    rules_text: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    sweep_every: timedelta = timedelta(days=1),
    file: str = "rules.yaml",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Replay leads created in [start, end) under the proposed rules; the real database is only read."""
    text = proposed_model_text(app, rules_text)
    loaded = load_text(text, file)
    errors = [f for f in lint(loaded) if f.level == "error"]
    if errors:
        raise Invalid("the proposed model has lint errors: " + "; ".join(f"{f.subject}: {f.message}" for f in errors))
    with app.db.read() as conn:
        bounds = conn.execute(select(func.min(ledger.c.at), func.max(ledger.c.at))).one()
        if bounds[0] is None:
            raise Invalid("there is no history to replay")
        start = start or bounds[0]
        end = end or app.clock.now()
        # recorded keys the proposed model renames, merges or splits are replayed as it names them
        effective = effective_map(conn, loaded.model)
        inputs, lead_ids = _inputs(conn, start, end, effective)
    scratch_dir = Path(tempfile.mkdtemp(prefix="leadledger-backtest-"))
    try:
        scratch = _scratch_app(app, scratch_dir, loaded, start)
        _replay(scratch, inputs, start, end, sweep_every, progress)
        with app.db.read() as real, scratch.db.read() as simulated:
            report = _report(real, simulated, lead_ids, start, end, loaded, effective)
        scratch.db.dispose()
    finally:
        shutil.rmtree(scratch_dir, ignore_errors=True)
    report.update(
        period={"from": start.isoformat(), "to": end.isoformat()},
        leads=len(lead_ids),
        inputs=dict(Counter(i.kind for i in inputs)),
        sweep_every_hours=sweep_every.total_seconds() / 3600,
    )
    return report


# --- reading the inputs ------------------------------------------------------------------------------------


def _inputs(
    conn: Connection, start: datetime, end: datetime, effective: Mapping[str, Target] | None = None
) -> tuple[list[Input], list[str]]:
    effective = effective or {}
    created = conn.execute(
        select(
            ledger,
            leads.c.name,
            leads.c.email,
            leads.c.phone,
            leads.c.company,
            leads.c.source,
            leads.c.campaign,
            leads.c.fields.label("lead_fields"),
        )
        .join(leads, leads.c.id == ledger.c.lead_id)
        .where(ledger.c.seq == 1, ledger.c.at >= start, ledger.c.at < end)
        .order_by(ledger.c.at, ledger.c.lead_id)
    ).all()
    lead_ids = [row.lead_id for row in created]
    later_keys: dict[str, set[str]] = defaultdict(set)
    changes: list[Input] = []
    requests: list[Any] = []
    for part in chunks(lead_ids):
        for row in conn.execute(
            select(ledger).where(ledger.c.lead_id.in_(part), ledger.c.seq > 1, ledger.c.at < end).order_by(ledger.c.seq)
        ):
            later_keys[row.lead_id].update(k for k in (row.data or {}) if k not in ENTRY_META_KEYS)
            if row.kind == "approval_request" and row.source in INPUT_SOURCES:
                requests.append(row)
                continue
            if row.source not in INPUT_SOURCES or row.kind != "change":
                continue  # what rules did is recomputed; decisions are replayed with their changes
            payload = {
                "actor": row.actor,
                "role": row.actor_role,
                "source": row.source,
                "status": map_status(effective, row.to_status, row.to_stage, row.reason)
                if row.to_status != row.from_status
                else None,
                "stage": row.to_stage if row.to_stage != row.from_stage else None,
                "owner": row.to_owner if row.to_owner != row.from_owner else None,
                "reason": row.reason,
                "note": row.note,
                "fields": {k: v for k, v in (row.data or {}).items() if k not in ENTRY_META_KEYS},
                "override": row.override_rule is not None,
                "approved_by": (row.data or {}).get("approved_by"),
            }
            changes.append(Input(row.at, 2, row.lead_id, "change", payload))
    # a change a person asked for that waited for approval: replayed as asked (the proposed rules decide again)
    asked = (
        {
            r.id: r
            for r in conn.execute(
                select(approvals).where(approvals.c.id.in_([(row.data or {}).get("approval_id") for row in requests]))
            )
        }
        if requests
        else {}
    )
    for row in requests:
        approval = asked.get((row.data or {}).get("approval_id"))
        if approval is None:
            continue
        request = approval.request
        payload = {
            "actor": approval.requested_by,
            "role": row.actor_role,
            "source": row.source,
            "status": map_status(effective, request.get("status"), row.to_stage, request.get("reason")),
            "stage": request.get("stage"),
            "owner": request.get("owner"),
            "reason": request.get("reason"),
            "note": request.get("note"),
            "fields": request.get("fields") or {},
            "override": False,
            "approved_by": None,
        }
        changes.append(Input(row.at, 2, row.lead_id, "change", payload))
    inputs: list[Input] = []
    for row in created:
        fields = {c: getattr(row, c) for c in CONTACT_COLUMNS if getattr(row, c) is not None}
        fields.update({k: v for k, v in (row.lead_fields or {}).items() if k not in later_keys[row.lead_id]})
        fields.update(row.data or {})
        inputs.append(
            Input(
                row.at,
                0,
                row.lead_id,
                "create",
                {
                    "fields": fields,
                    "stage": row.to_stage,
                    "owner": row.to_owner,
                    "actor": row.actor,
                    "role": row.actor_role,
                    "source": row.source,
                },
            )
        )
    for part in chunks(lead_ids):
        for row in conn.execute(
            select(activities).where(activities.c.lead_id.in_(part), activities.c.at >= start, activities.c.at < end)
        ):
            inputs.append(
                Input(
                    row.at,
                    1,
                    row.lead_id,
                    "event",
                    {
                        "type": row.type,
                        "data": row.data or {},
                        "key": row.key or f"activity:{row.id}",
                        "actor": row.actor,
                        "source": row.source,
                    },
                )
            )
    inputs.extend(changes)
    inputs.sort(key=lambda i: (i.at, i.order, i.lead_id))
    return inputs, lead_ids


# --- the scratch database ---------------------------------------------------------------------------------


def _scratch_app(app: App, directory: Path, loaded: LoadedModel, start: datetime) -> App:
    scratch = App(db=Database(f"sqlite:///{directory / 'backtest.db'}"), clock=FixedClock(start))
    initialise(scratch, model_text=loaded.text, model_file=loaded.file)
    with app.db.read() as real, scratch.db.write() as conn:
        existing = {row.name for row in conn.execute(select(users.c.name))}
        for table, skip in ((teams, set()), (users, existing), (endpoints, set())):
            rows = [r._asdict() for r in real.execute(select(table))]
            rows = [{k: v for k, v in r.items() if k != "id"} for r in rows if r.get("name") not in skip]
            if rows:
                conn.execute(insert(table), rows)
    return scratch


def _replay(
    app: App,
    inputs: list[Input],
    start: datetime,
    end: datetime,
    every: timedelta,
    progress: Callable[[int], None] | None,
) -> None:
    """Apply the inputs window by window (one sweep interval each), then sweep at the window's end."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    position = 0
    boundary = start + every
    while True:
        window_end = min(boundary, end)
        batch_inputs = []
        while position < len(inputs) and inputs[position].at < window_end:
            batch_inputs.append(inputs[position])
            position += 1
        for chunk in chunks(batch_inputs, CHUNK):
            clock.at = max(clock.at, chunk[-1].at)
            in_unit_of_work(app, "system", partial(_apply_inputs, chunk=chunk))
            if progress:
                progress(len(chunk))
        clock.at = max(clock.at, window_end)
        sweep(app, now=window_end)
        if window_end >= end:
            return
        boundary += every


def _apply_inputs(uow: UnitOfWork, *, chunk: list[Input]) -> None:
    uow.load({i.lead_id for i in chunk if i.kind != "create"})
    uow.load_keys([], [i.payload["key"] for i in chunk if i.kind == "event"])
    for item in chunk:
        payload = item.payload
        if item.kind == "create":
            changes.create(
                uow,
                lead_id=item.lead_id,
                fields=payload["fields"],
                owner=payload["owner"],
                stage=payload["stage"],
                at=item.at,
                source=payload["source"],
                idempotency_key=None,
                actor=Actor(payload["actor"], payload["role"]),
            )
        elif item.lead_id not in uow.states:
            continue  # its creation was refused under the proposed model
        elif item.kind == "event":
            activity = ActivityIn(payload["type"], item.at, payload["data"], key=payload["key"])
            if changes.log_event(uow, item.lead_id, activity, item.at, payload["actor"], payload["source"]):
                context = {"type": payload["type"], "id": payload["key"], "at": item.at.isoformat(), **payload["data"]}
                automation.run_event_rules(uow, item.lead_id, payload["type"], context, item.at, payload["key"])
        else:
            state = uow.states[item.lead_id]
            spec = ChangeSpec(
                lead_id=item.lead_id,
                status=payload["status"],
                stage=payload["stage"],
                owner=payload["owner"],
                reason=payload["reason"],
                note=payload["note"],
                fields=payload["fields"],
                at=max(item.at, state.last_at),
                source=payload["source"],
                override=payload["override"],
            )
            if spec.status is None and spec.stage is None and spec.owner is None and not spec.fields:
                continue
            outcome = changes.apply(
                uow, spec, actor=Actor(payload["actor"], payload["role"]), approved_by=payload["approved_by"]
            )
            uow.counts["manual_" + type(outcome).__name__.lower()] += 1


# --- the report --------------------------------------------------------------------------------------------


def rule_effects(conn: Connection, lead_ids: list[str], start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """Per rule: leads moved, reassigned, alerted, escalated; tasks, webhooks, e-mails; sample lead ids."""
    effects: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "moved": 0,
            "reassigned": 0,
            "fields_set": 0,
            "alerted": 0,
            "escalated": 0,
            "tasks": 0,
            "webhooks": 0,
            "emails": 0,
            "fired": 0,
            "samples": [],
        }
    )
    wanted = set(lead_ids)

    def sample(rule: str, lead_id: str | None) -> None:
        samples = effects[rule]["samples"]
        if lead_id and len(samples) < SAMPLES and lead_id not in samples:
            samples.append(lead_id)

    in_period = and_(
        ledger.c.at >= start,
        ledger.c.at < end,
        ledger.c.rule.is_not(None),
        ledger.c.source.in_(("automation", "time_rule")),
    )
    for row in conn.execute(
        select(
            ledger.c.lead_id,
            ledger.c.rule,
            ledger.c.from_status,
            ledger.c.to_status,
            ledger.c.from_owner,
            ledger.c.to_owner,
        ).where(in_period)
    ):
        if row.lead_id not in wanted:
            continue
        item = effects[row.rule]
        if row.from_status != row.to_status:
            item["moved"] += 1
        elif row.from_owner != row.to_owner:
            item["reassigned"] += 1
        else:
            item["fields_set"] += 1
        sample(row.rule, row.lead_id)
    for table, key in ((notifications, None), (tasks, "tasks"), (outbox, None)):
        time_column = table.c.created_at
        for row in conn.execute(
            select(table).where(time_column >= start, time_column < end, table.c.rule.is_not(None))
        ):
            if row.lead_id not in wanted:
                continue
            item = effects[row.rule]
            if table is notifications:
                item["escalated" if row.kind == "escalation" else "alerted"] += 1
            elif table is outbox:
                item["webhooks" if row.kind == "webhook" else "emails"] += 1
            else:
                item[key or "tasks"] += 1
            sample(row.rule, row.lead_id)
    for firing in conn.execute(
        select(rule_firings.c.rule, rule_firings.c.subject).where(
            rule_firings.c.fired_at >= start, rule_firings.c.fired_at <= end
        )
    ):
        if firing.subject in wanted or firing.subject.startswith(("company:", "source:", "campaign:")):
            effects[firing.rule]["fired"] += 1
    return {rule: dict(values) for rule, values in sorted(effects.items())}


def _sla(conn: Connection, lead_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for part in chunks(lead_ids):
        for row in conn.execute(
            select(sla_clocks.c.sla, sla_clocks.c.status, func.count())
            .where(sla_clocks.c.lead_id.in_(part))
            .group_by(sla_clocks.c.sla, sla_clocks.c.status)
        ):
            out[row.sla][row.status] += int(row[2])
    return {name: dict(counts) for name, counts in sorted(out.items())}


def _distribution_at(
    conn: Connection, lead_ids: list[str], end: datetime, effective: Mapping[str, Target] | None = None
) -> Counter[str]:
    """Status per lead at `end` from the ledger (the last entry at or before it), recorded keys read through
    the migrations in `effective`."""
    counts: Counter[str] = Counter()
    for part in chunks(lead_ids):
        last: dict[str, tuple[Any, int, str]] = {}
        for row in conn.execute(
            select(
                ledger.c.lead_id, ledger.c.at, ledger.c.seq, ledger.c.to_status, ledger.c.to_stage, ledger.c.reason
            ).where(
                ledger.c.lead_id.in_(part), ledger.c.at <= end
            )
        ):
            key = (row.at, row.seq)
            if row.lead_id not in last or key > last[row.lead_id][:2]:
                status = map_status(effective or {}, row.to_status, row.to_stage, row.reason) or row.to_status
                last[row.lead_id] = (row.at, row.seq, status)
        counts.update(status for _, _, status in last.values())
    return counts


def _report(
    real: Connection,
    simulated: Connection,
    lead_ids: list[str],
    start: datetime,
    end: datetime,
    loaded: LoadedModel,
    effective: Mapping[str, Target] | None = None,
) -> dict[str, Any]:
    proposed = rule_effects(simulated, lead_ids, start, end)
    actual = rule_effects(real, lead_ids, start, end)
    actual_distribution = _distribution_at(real, lead_ids, end, effective)
    backtest_distribution = _distribution_at(simulated, lead_ids, end)
    statuses = sorted(
        set(actual_distribution) | set(backtest_distribution),
        key=lambda s: (list(loaded.model.statuses).index(s) if s in loaded.model.statuses else 99, s),
    )
    return {
        "rules": proposed,
        "actual_rules": actual,
        "sla": _sla(simulated, lead_ids),
        "actual_sla": _sla(real, lead_ids),
        "distribution": [
            {
                "status": s,
                "actual": actual_distribution[s],
                "backtest": backtest_distribution[s],
                "difference": backtest_distribution[s] - actual_distribution[s],
            }
            for s in statuses
        ],
    }
