"""`model apply FILE --backtest`: a proposed model replayed over recorded history, nothing written."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from leadledger.model.loader import default_model_text
from leadledger.services import leads as svc
from leadledger.services import model_changes
from leadledger.services.leads import ActivityIn, ChangeSpec
from leadledger.store.tables import ledger, model_versions

# reps may no longer disqualify: a manager decides
NO_REP_DISQUALIFY = default_model_text().replace(
    """  - from: [attempting_contact, connected, working, qualified, nurture, recycled, new, assigned]
    to: [disqualified]
    roles: [rep, manager, ops]""",
    """  - from: [attempting_contact, connected, working, qualified, nurture, recycled, new, assigned]
    to: [disqualified]
    roles: [manager, ops]""",
)


def test_a_what_if_reports_refusals_rules_and_distribution_and_writes_nothing(team_app, clock, monkeypatch, tmp_path):
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    assert default_model_text() != NO_REP_DISQUALIFY
    start = clock.at
    ids = []
    for n in range(3):
        lead = svc.create_lead(
            team_app, actor="admin", fields={"name": f"L{n}", "email": f"l{n}@example.com"}, owner="ana"
        )
        clock.advance(timedelta(hours=1))
        svc.change_lead(team_app, actor="ana", spec=ChangeSpec(lead.lead_id, status="attempting_contact",
                                                               log=ActivityIn("email_sent")))  # fmt: skip
        clock.advance(timedelta(hours=1))
        ids.append(lead.lead_id)
    svc.change_lead(team_app, actor="ana", spec=ChangeSpec(ids[0], status="disqualified", reason="budget"))
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(ids[1], status="disqualified", reason="budget"))
    clock.advance(timedelta(hours=1))
    with team_app.db.read() as conn:
        before = (conn.execute(select(func.count()).select_from(ledger)).scalar(),
                  conn.execute(select(func.count()).select_from(model_versions)).scalar())  # fmt: skip
    report = model_changes.what_if(team_app, NO_REP_DISQUALIFY, file="proposed.yaml", start=start, end=clock.at)
    assert report["written"] is False
    assert [(c["section"], c["change"]) for c in report["diff"]["changes"]] == [("transitions", "changed")] * 8
    assert report["refused"] == [{"from": "attempting_contact", "to": "disqualified", "changes": 1, "samples": [ids[0]],
                                  "why": "a rep may not make this move under the proposed model"}]  # fmt: skip
    replay = report["replay"]
    assert replay["leads"] == 3 and "first_email_sent" in replay["rules"]
    ends = {row["status"]: row for row in replay["distribution"]}
    assert ends["disqualified"]["actual"] == 2 and ends["disqualified"]["backtest"] == 1  # ana's is refused
    with team_app.db.read() as conn:
        after = (conn.execute(select(func.count()).select_from(ledger)).scalar(),
                 conn.execute(select(func.count()).select_from(model_versions)).scalar())  # fmt: skip
    assert after == before
