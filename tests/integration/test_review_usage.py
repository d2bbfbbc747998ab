"""Inconsistent rep usage (seed 000): one rep marks everything Working at once, another keeps leads in
Attempting Contact through several conversations. Team east: ana, ben, cal (25 leads each, November).

  ana  Assigned 15:00, email 16:00, Working 16:30 (skips Attempting Contact and Connected): 0.5 h to Working
  ben  Assigned 15:00, email 16:00 -> Attempting, 5 calls, Connected next day 14:00, Working day 3 14:00
  cal  like ben, with one call; both reach Working on day 3 at 14:00, 70 h after the first touch (16:00)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_reports_builder import Lead, at, new_world, write

from leadledger import analytics
from leadledger.services import people

approx = pytest.approx


@pytest.fixture
def team(app, monkeypatch, tmp_path):
    new_world(app, monkeypatch, tmp_path)
    people.add_user(app, name="cal", role="rep", team="east")
    leads = []
    for i in range(25):
        day = 2 + i % 10
        leads.append(
            Lead(f"A{i}", at(day)).to(at(day, 15), "assigned", owner="ana", actor="maria")
            .log(at(day, 16), "email_sent").to(at(day, 16, 30), "working", stage="sal")
        )  # fmt: skip
        for rep, calls in (("ben", 5), ("cal", 1)):
            lead = Lead(f"{rep}{i}", at(day)).to(at(day, 15), "assigned", owner=rep, actor="maria")
            lead.log(at(day, 16), "email_sent", actor=rep).to(at(day, 16), "attempting_contact", actor=rep)
            for c in range(calls):
                lead.log(at(day, 17) + timedelta(minutes=10 * c), "call_logged", actor=rep, outcome="connected")
            lead.to(at(day + 1, 14), "connected", actor=rep).to(at(day + 3, 14), "working", stage="sal", actor=rep)
            leads.append(lead)
    write(app, *leads)
    return app


def test_reps_who_use_statuses_differently_from_their_team_are_flagged_with_the_figures(team):
    report = analytics.report(team, "governance", date_from=at(1).date(), date_to=at(30).date())
    usage = report["inconsistent_usage"]
    flags = {(f["rep"], f["measure"], f["status"]): f for f in usage["flags"]}
    fast = flags[("ana", "hours_first_touch_to_working", None)]
    assert fast["value"] == approx(0.5) and fast["rest_value"] == approx(70.0) and fast["team_value"] == approx(70.0)
    assert (fast["n"], fast["n_rest"], fast["test"]) == (25, 50, "Mann-Whitney U") and fast["p_value"] < 0.01
    assert "ana moves leads to Working a median 0.5 h after the first touch" in fast["reading"]
    skips = flags[("ana", "statuses_skipped", None)]
    assert skips["value"] == 1.0 and skips["rest_value"] == 0.0 and skips["test"] == "two-proportion z"
    chatty = flags[("ben", "activities_before_leaving", "attempting_contact")]
    # an Attempting stint holds the e-mail logged at the instant it began (entered_at <= at < left_at) and the
    # calls: ben 1 + 5 = 6, cal 1 + 1 = 2
    assert (
        chatty["value"] == approx(6.0) and chatty["rest_value"] == approx(2.0) and chatty["team_value"] == approx(4.0)
    )
    # two reps in Attempting: they differ from each other, and neither is "typical", so both are flagged;
    # ana logs her e-mail while the lead is still Assigned (she never uses Attempting): flagged too.
    # Next to ana's skips, ben and cal differ from "the rest" (p < 0.01) but not from the typical rep: not flagged.
    assert {(f["rep"], f["measure"], f["status"]) for f in usage["flags"]} == {
        ("ana", "hours_first_touch_to_working", None), ("ana", "statuses_skipped", None),
        ("ana", "activities_before_leaving", "assigned"),
        ("ben", "activities_before_leaving", "attempting_contact"),
        ("cal", "activities_before_leaving", "attempting_contact"),
    }  # fmt: skip
    assert usage["rules"]["alpha"] == 0.01 and usage["rules"]["min_n"] == 20


def test_small_samples_are_not_flagged(team):
    # two days of November: 6 leads per rep (i % 10 in 0, 1), fewer than MIN_N on each side
    usage = analytics.report(team, "governance", date_from=at(2).date(), date_to=at(3).date())["inconsistent_usage"]
    assert usage["flags"] == []
    assert any(f["rep"] == "ana" and f["n"] == 6 for f in usage["figures"])
