"""health: seed 000's benchmark ranges against a hand-built ledger, and `--as-of` against a truncated copy.

Health ledger (September 2026, all 14:00Z unless said; the as-of time is T0 = Nov 23 15:00Z):

  h1..h12 created Sep 1, Assigned (ana) Sep 1 15:00
  h1..h8  Attempting Sep 2;  h10, h11 Disqualified Sep 2 (never attempted);  h9 stays Assigned
  h12     Nurture Sep 2 with no re-evaluation date (imported)
  h1..h6  Connected Sep 3;   h7, h8 Disqualified (no_response) Sep 10
  h1..h3  Qualified Sep 4;   h4..h6 Disqualified (competitor) Sep 10
  h1, h2  Converted Sep 5;   h3 Disqualified (budget) Sep 10;  h1 reaches the Customer stage Sep 20
  h7      Recycled Oct 1, Attempting again (ben) Oct 2, still there
  h14     created Nov 23 13:00, two hours before the as-of time: too young to count in the funnel checks
"""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select
from test_reports_builder import T0, Lead, add_people, at, private_store, write

from leadledger import analytics
from leadledger.bootstrap import build_app
from leadledger.domain.clock import FixedClock
from leadledger.services.history import LeadHistory, write_histories
from leadledger.store.tables import activities, ledger
from leadledger.store.tables import leads as leads_table

approx = pytest.approx


def sep(day, hour=14):
    return at(day, hour, month=9)


def oct_(day, hour=14):
    return at(day, hour, month=10)


@pytest.fixture
def health_app(app, monkeypatch, tmp_path):
    private_store(monkeypatch, tmp_path)
    add_people(app)
    leads = {
        f"h{n}": Lead(f"h{n}", sep(1)).to(sep(1, 15), "assigned", owner="ana", actor="maria") for n in range(1, 13)
    }
    for n in range(1, 9):
        leads[f"h{n}"].to(sep(2), "attempting_contact")
    for n in (10, 11):
        leads[f"h{n}"].to(sep(2), "disqualified", reason="wrong_fit")
    leads["h12"].to(sep(2), "nurture", reason="not_ready", source="import", actor="importer", off_model=True)
    for n in range(1, 7):
        leads[f"h{n}"].to(sep(3), "connected", stage="mql")
    for n in (7, 8):
        leads[f"h{n}"].to(sep(10), "disqualified", reason="no_response")
    for n in (1, 2, 3):
        leads[f"h{n}"].to(sep(4), "qualified", stage="sql", reason="framework_met")
    for n in (4, 5, 6):
        leads[f"h{n}"].to(sep(10), "disqualified", reason="competitor")
    for n in (1, 2):
        leads[f"h{n}"].to(
            sep(5), "converted", stage="opportunity", source="automation", rule="opportunity_created", actor="system"
        )
    leads["h3"].to(sep(10), "disqualified", reason="budget")
    leads["h1"].to(sep(20), stage="customer")
    leads["h7"].to(oct_(1), "recycled", reason="timing_window", actor="maria").to(
        oct_(2), "attempting_contact", owner="ben", actor="ben"
    )
    leads["h14"] = Lead("h14", at(23, 13))
    write(app, *leads.values())
    return app


def test_health_checks_each_seed_range_with_the_number_and_why(health_app):
    report = analytics.report(health_app, "health")
    checks = {c["check"]: c for c in report["checks"]}

    def state(key):
        return checks[key]["state"], checks[key]["value"]

    # New -> Attempting: h1..h12 entered New long ago (h14 is two hours old: not mature); 8 attempted
    assert (checks["new_to_attempting_contact"]["entered"], checks["new_to_attempting_contact"]["reached"]) == (12, 8)
    assert state("new_to_attempting_contact") == ("finding", approx(8 / 12))
    assert "routing is broken" in checks["new_to_attempting_contact"]["explanation"]
    # the funnel report states the same step for everyone (h14 too); health says why it differs, in the output
    funnel = {(s["from"], s["to"]): s for s in analytics.report(health_app, "funnel")["steps"]}
    step = funnel[("new", "attempting_contact")]
    new_check = checks["new_to_attempting_contact"]
    assert (new_check["funnel_entered"], new_check["funnel_reached"]) == (step["entered"], step["reached"]) == (13, 8)
    assert new_check["note"] == (
        "counts the 12 of 13 leads that entered new at least 24 h before the as-of time (younger ones have not "
        "had the time); the funnel report counts all 13: 61.5%"
    )
    assert checks["qualified_to_converted"]["note"] is None  # every Qualified lead is old enough: the same rate
    assert state("attempting_contact_to_connected") == ("finding", 0.75)  # 6 of 8: above 30-50 %
    assert state("connected_to_qualified") == ("ok", 0.5)  # 3 of 6
    assert state("qualified_to_converted") == ("finding", approx(2 / 3))  # below 70 %
    assert state("recycled_to_converted") == ("finding", 0.0)  # h7: recycled, not converted
    assert state("qualified_to_closed") == ("ok", approx(1 / 3))  # h1 reached Customer
    assert state("disqualified_share") == ("finding", approx(7 / 13))  # h3..h8, h10, h11 of 13 leads
    assert state("new_older_than_max_age") == ("finding", 1)  # h9, Assigned since Sep 1
    assert state("duration_new") == ("ok", approx(14 / 13))  # 12 stints of 1 h and h14's open 2 h
    assert checks["duration_new"]["stints"] == 13
    # Attempting: h1..h6 24 h, h7 and h8 192 h, h7 again Oct 2 14:00 -> T0 = 1249 h: mean 1777/9 h > 7 d
    assert state("duration_attempting_contact") == ("finding", approx(1777 / 9))
    assert state("duration_connected") == ("ok", 96)  # 3 x 24 h and 3 x 168 h
    assert state("duration_working")[0] == "no data"
    assert state("duration_qualified") == ("ok", 64)  # 24, 24, 144
    assert state("nurture_without_re_evaluation") == ("finding", 1)  # h12
    assert state("nurture_past_re_evaluation") == ("ok", 0)
    assert report["findings"] == 8


def _copy_until(app, target, cut):
    """A copy of the database holding only what happened at or before `cut`: ledger entries, activities, and
    the leads that existed then (their projection folded from the kept entries by write_histories)."""
    with app.db.read() as conn:
        entries = [dict(r._mapping) for r in conn.execute(select(ledger).order_by(ledger.c.lead_id, ledger.c.seq))]
        logged = [dict(r._mapping) for r in conn.execute(select(activities))]
        rows = {r.id: dict(r._mapping) for r in conn.execute(select(leads_table))}
    histories = []
    dropped = ("id", "lead_id", "seq", "recorded_at")
    for lead_id, row in rows.items():
        kept = [
            {k: v for k, v in e.items() if k not in dropped}
            for e in entries
            if e["lead_id"] == lead_id and e["at"] <= cut
        ]
        if not kept:
            continue
        lead = {k: row[k] for k in ("id", "name", "email", "phone", "company", "source", "campaign", "fields")}
        acts = [a for a in logged if a["lead_id"] == lead_id and a["at"] <= cut]
        histories.append(LeadHistory(lead=lead, entries=kept, activities=acts))
    with target.db.write() as conn:
        write_histories(conn, histories, recorded_at=T0, owner_teams={"ana": "east", "ben": "east", "eva": "berlin"},
                        model=target.model)


@pytest.mark.parametrize("cut", [at(10, 0), at(17, 12), at(19, 14)])
def test_as_of_a_past_time_equals_the_report_on_a_copy_truncated_there(
    health_app, sqlite_template, monkeypatch, tmp_path, cut
):
    # add November activity to the September ledger, then compare every report as of `cut`
    write(
        health_app,
        Lead("n1", at(9)).to(at(9, 15), "assigned", owner="ana", actor="maria").log(at(9, 16), "call_logged", outcome="no_answer")
        .to(at(10), "attempting_contact").to(at(12), "connected").to(at(17, 13), "qualified", stage="sql")
        .to(at(19), "converted", stage="opportunity"),
        Lead("n2", at(16)).to(at(16, 15), "assigned", owner="ben", actor="maria").to(at(18), "rejected", reason="poor_fit", actor="ben"),
        Lead("n3", at(20)),
    )  # fmt: skip
    names = list(analytics.REPORT_NAMES)
    full = analytics.run_reports(health_app, names, as_of=cut, skip_unavailable=True)
    shutil.copy(sqlite_template, tmp_path / "copy.db")
    copy = build_app(db_url=f"sqlite:///{tmp_path / 'copy.db'}", clock=FixedClock(cut))
    private_store(monkeypatch, tmp_path, "copy.duckdb")
    add_people(copy)
    _copy_until(health_app, copy, cut)
    truncated = analytics.run_reports(copy, names, skip_unavailable=True)  # "now" is the cut on the copy's clock
    for name in names:
        assert full[name] == truncated[name], name
    copy.db.dispose()
