"""The rule backtest writes nothing, and its counts equal what applying the same rules for real produces."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from leadledger.bootstrap import build_app
from leadledger.domain.clock import FixedClock
from leadledger.model.loader import default_model_text
from leadledger.model.source import read_yaml
from leadledger.services import leads as svc
from leadledger.services import models, outbox, people
from leadledger.services.app import App
from leadledger.services.backtest import backtest, rule_effects
from leadledger.services.events import apply_events
from leadledger.services.leads import ChangeSpec
from leadledger.services.sweep import sweep
from leadledger.store.tables import metadata

START = datetime.fromisoformat("2026-10-05T00:00:00+00:00")  # a Monday
DAYS = 21
COMPARED = ("moved", "reassigned", "fields_set", "alerted", "escalated", "tasks", "webhooks", "emails")


def setup_org(app: App) -> None:
    people.add_user(app, name="maria", role="manager")
    people.add_user(app, name="marketing", role="manager")
    people.add_team(app, name="sdr-east", calendar="default", manager="maria")
    people.add_team(app, name="ae", calendar="default", manager="maria")
    for name in ("ana", "ben"):
        people.add_user(app, name=name, role="rep", team="sdr-east")
    people.add_user(app, name="ines", role="rep", team="ae")
    outbox.add_endpoint(app, name="crm", url="http://127.0.0.1:9/crm", secret="0123456789abcdef01", actor="admin")


def script() -> list[tuple[datetime, str, dict[str, Any]]]:
    """A few weeks of work: leads arrive, get e-mails, some reply, some meet, people qualify and disqualify."""
    steps: list[tuple[datetime, str, dict[str, Any]]] = []
    for day in range(0, 14, 2):
        base = START + timedelta(days=day, hours=14)
        for n in range(3):
            lead = f"BT-{day:02d}-{n}"
            value = 90000 if n == 2 else 1000
            steps.append(
                (
                    base,
                    "create",
                    {
                        "id": lead,
                        "name": f"Lead {lead}",
                        "email": f"{lead}@example.com",
                        "company": f"Co{n}",
                        "estimated_value": value,
                    },
                )
            )
            steps.append((base + timedelta(hours=1), "event", {"id": f"{lead}-e1", "type": "email_sent", "lead": lead}))
            if n != 1:
                steps.append(
                    (
                        base + timedelta(days=1),
                        "event",
                        {
                            "id": f"{lead}-r1",
                            "type": "email_replied",
                            "lead": lead,
                            "data": {"classification": "positive"},
                        },
                    )
                )
            if n == 0:
                steps.append(
                    (base + timedelta(days=2), "event", {"id": f"{lead}-m1", "type": "meeting_held", "lead": lead})
                )
                steps.append(
                    (
                        base + timedelta(days=3),
                        "change",
                        {
                            "lead": lead,
                            "status": "qualified",
                            "fields": {"budget": "1", "authority": "a", "need": "n", "timeline": "t"},
                        },
                    )
                )
            if n == 2:
                steps.append(
                    (base + timedelta(days=2), "change", {"lead": lead, "status": "disqualified", "reason": "budget"})
                )
    steps.sort(key=lambda s: (s[0], {"create": 0, "event": 1, "change": 2}[s[1]]))
    return steps


def run_live(app: App) -> None:
    """Apply the script for real, sweeping at every midnight as a worker on that schedule would."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    steps = script()
    boundary = START + timedelta(days=1)
    end = START + timedelta(days=DAYS)
    for at, kind, data in [*steps, (end, "end", {})]:
        while boundary <= at:
            clock.at = boundary
            sweep(app, now=boundary)
            boundary += timedelta(days=1)
        if kind == "end":
            break
        clock.at = at
        if kind == "create":
            svc.create_lead(
                app, actor="admin", lead_id=data["id"], at=at, fields={k: v for k, v in data.items() if k != "id"}
            )
        elif kind == "event":
            apply_events(app, [json.dumps({**data, "at": at.isoformat()})], actor="admin")
        else:
            lead = svc.get_lead(app, data["lead"])
            spec = ChangeSpec(
                data["lead"], status=data["status"], reason=data.get("reason"), fields=data.get("fields", {})
            )
            try:
                svc.change_lead(app, actor=lead["owner"] or "admin", spec=spec)
            except svc.ApprovalPending:
                pass
            except svc.ChangeRefused:
                pass


def fresh(tmp_path, name: str, model_text: str | None = None) -> App:
    app = build_app(db_url=f"sqlite:///{tmp_path / name}", clock=FixedClock(START))
    models.initialise(app, model_text=model_text)
    setup_org(app)
    return app


def effects(app: App) -> dict[str, dict[str, int]]:
    with app.db.read() as conn:
        ids = [f"BT-{d:02d}-{n}" for d in range(0, 14, 2) for n in range(3)]
        found = rule_effects(conn, ids, START, START + timedelta(days=DAYS))
    return {rule: {k: v[k] for k in COMPARED} for rule, v in found.items() if any(v[k] for k in COMPARED)}


def snapshot(app: App) -> dict[str, int]:
    with app.db.read() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in metadata.sorted_tables}


def stricter_rules() -> str:
    data = read_yaml(default_model_text())
    rules = {r["name"]: r for r in data["time_rules"]}
    rules["attempting_alert_7d"]["after"] = "2d"
    data["time_rules"] = [rules["attempting_alert_7d"]]
    data["rules"] = [r for r in data["rules"] if r["name"] != "meeting_held_working"]
    return yaml.safe_dump({"rules": data["rules"], "time_rules": data["time_rules"]}, sort_keys=False)


@pytest.mark.slow
def test_backtesting_the_active_rules_reproduces_what_they_did_and_writes_nothing(tmp_path):
    real = fresh(tmp_path, "real.db")
    run_live(real)
    before = snapshot(real)
    report = backtest(real, default_model_text(), start=START, end=START + timedelta(days=DAYS))
    assert snapshot(real) == before  # nothing written to the real database
    proposed = {rule: {k: v[k] for k in COMPARED} for rule, v in report["rules"].items() if any(v[k] for k in COMPARED)}
    assert proposed == effects(real)
    assert {"first_email_sent", "email_reply_connects", "meeting_held_working", "new:route"} <= set(proposed)
    assert report["distribution"] and all(row["difference"] == 0 for row in report["distribution"])
    assert report["sla"] == report["actual_sla"]


@pytest.mark.slow
def test_a_proposed_rule_set_counts_what_applying_it_for_real_does_on_a_copy(tmp_path):
    real = fresh(tmp_path, "real.db")
    run_live(real)
    rules = stricter_rules()
    report = backtest(real, rules, start=START, end=START + timedelta(days=DAYS))
    copy = fresh(tmp_path, "copy.db")
    from leadledger.services.backtest import proposed_model_text

    models.activate_model(copy, text=proposed_model_text(real, rules), file="proposed.yaml", actor="admin")
    run_live(copy)
    proposed = {rule: {k: v[k] for k in COMPARED} for rule, v in report["rules"].items() if any(v[k] for k in COMPARED)}
    assert proposed == effects(copy)
    assert "meeting_held_working" not in proposed and proposed["attempting_alert_7d"]["alerted"] > 0
    assert report["actual_rules"]["meeting_held_working"]["moved"] == 7  # what the current rules did instead
    assert sum(r["actual"] for r in report["distribution"]) == sum(r["backtest"] for r in report["distribution"]) == 21


def test_a_change_that_waited_for_approval_replays_in_the_window_its_lead_was_created(tmp_path):
    """Created, e-mailed and disqualified the same day (worth 90,000: a manager must approve): the replay creates
    the lead and requests the approval in one transaction, so the request must find the lead's row."""
    real = fresh(tmp_path, "real.db")
    at = START + timedelta(hours=14)
    assert isinstance(real.clock, FixedClock)
    real.clock.at = at
    lead = svc.create_lead(real, actor="admin", lead_id="BT-A", at=at, owner="ana",
                           fields={"name": "A", "email": "a@example.com", "estimated_value": 90000}).lead_id  # fmt: skip
    apply_events(real, [json.dumps({"id": "a-e1", "type": "email_sent", "lead": lead, "at": at.isoformat()})],
                 actor="ana")  # fmt: skip
    with pytest.raises(svc.ApprovalPending):
        svc.change_lead(real, actor="ana", spec=ChangeSpec(lead, status="disqualified", reason="budget"))
    before = snapshot(real)
    report = backtest(real, default_model_text(), start=START, end=START + timedelta(days=2))
    assert snapshot(real) == before
    assert all(row["difference"] == 0 for row in report["distribution"])
