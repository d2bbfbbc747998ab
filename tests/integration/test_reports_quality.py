"""governance, sources, reps and overrides on a hand-built ledger; every expected number is worked out below.

As of T0 = Mon Nov 23 15:00Z (New York = UTC-5 in November, UTC-4 in October):

  Q1  web_form   ana  Assigned Nov 16 15:00, email Nov 16 16:00, Attempting (automation) 16:30     open
  Q2  web_form   ana  Assigned Nov 13 15:00, Attempting Nov 14 14:00 (9 d > 7 d)                   stale
  Q3  webinar    ben  Assigned Nov 16 15:00, Qualified at stage Lead Nov 17 (import, off-model)    stale (> 3 d), stage mismatch
  Q4  webinar    ben  Assigned Nov 16 15:00, Rejected (poor_fit) Nov 16 18:00                      terminal
  Q5  paid       -    Rejected Nov 10 15:00 with no reason (import)                                terminal
  Q6  paid       ben  Assigned Nov 4 15:00, Disqualified (no_response) Nov 5, Recycled (timing_window) Nov 18
  Q7  linkedin   ana  Assigned Nov 2 15:00, Nurture Nov 3 and Recycled Nov 20, both imported without reasons
  Q8  linkedin   ana  Assigned Nov 2 17:00, Nurture Nov 9 16:00, re-evaluate on Nov 20 (past)          stale
  Q9  event      ben  Assigned Nov 2 19:00, Nurture Nov 19 (import) with no re-evaluation date
  Q10 event      -    Invalid (bad_email) Nov 20 15:00
  Q11 event      -    Duplicate Nov 21 15:00 (by ana)
  Q12 referral   -    created in "legacy_hot", a status the model does not have
  Q13 referral   ana  Oct 1 -> Attempting Oct 2 -> Connected Oct 5 -> Working (rule) Oct 8 -> Stale - Review (time rule)
                      Nov 7 -> Working again Nov 20 by ana, an override of the stale rule
  Q14 referral   ben  Oct 1 -> Connected Oct 2 -> Working (rule) Oct 3 -> Stale - Review (time rule) Nov 20 16:00  stale
  Q15 web_form   ben  Assigned Nov 16 15:00, Attempting Nov 17, Connected (rule email_reply_connects) Nov 18,
                      back to Attempting Nov 18 16:00 by ben, an override
"""

from __future__ import annotations

import pytest
from test_reports_builder import Lead, at, new_world, write

from leadledger import analytics
from leadledger.services.errors import Invalid

approx = pytest.approx


@pytest.fixture
def quality(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    leads = [
        Lead("Q1", at(16)).to(at(16, 15), "assigned", owner="ana", actor="maria").log(at(16, 16), "email_sent")
        .to(at(16, 16, 30), "attempting_contact", source="automation", rule="first_email_sent", actor="system"),
        Lead("Q2", at(13)).to(at(13, 15), "assigned", owner="ana", actor="maria").to(at(14), "attempting_contact"),
        Lead("Q3", at(16), source="webinar", campaign="webinar-q1").to(at(16, 15), "assigned", owner="ben", actor="maria")
        .to(at(17), "qualified", source="import", actor="importer", off_model=True),
        Lead("Q4", at(16), source="webinar", campaign="webinar-q1").to(at(16, 15), "assigned", owner="ben", actor="maria")
        .to(at(16, 18), "rejected", reason="poor_fit", actor="ben"),
        Lead("Q5", at(10), source="paid_search", campaign="brand-search", entry_source="import")
        .to(at(10, 15), "rejected", source="import", actor="importer"),
        Lead("Q6", at(4), source="paid_search", campaign="brand-search").to(at(4, 15), "assigned", owner="ben", actor="maria")
        .to(at(5), "disqualified", reason="no_response", actor="ben").to(at(18), "recycled", reason="timing_window", actor="maria"),
        Lead("Q7", at(2), source="linkedin", campaign="linkedin-abm").to(at(2, 15), "assigned", owner="ana", actor="maria")
        .to(at(3), "nurture", source="import", actor="importer", off_model=True)
        .to(at(20), "recycled", source="import", actor="importer", off_model=True),
        Lead("Q8", at(2, 16), source="linkedin", campaign="linkedin-abm").to(at(2, 17), "assigned", owner="ana", actor="maria")
        .to(at(9, 16), "nurture", reason="bad_timing", data={"re_evaluate_on": "2026-11-20"}),
        Lead("Q9", at(2, 18), source="event", campaign="trade-show").to(at(2, 19), "assigned", owner="ben", actor="maria")
        .to(at(19), "nurture", reason="not_ready", source="import", actor="importer", off_model=True),
        Lead("Q10", at(20), source="event", campaign="trade-show").to(at(20, 15), "invalid", reason="bad_email", actor="system"),
        Lead("Q11", at(21), source="event", campaign="trade-show")
        .to(at(21, 15), "duplicate", reason="duplicate", data={"duplicate_of": "Q10"}),
        Lead("Q12", at(1), status="legacy_hot", source="referral", campaign="partner-referral", entry_source="import"),
        Lead("Q13", at(1, 14, month=10), source="referral", campaign="partner-referral")
        .to(at(1, 15, month=10), "assigned", owner="ana", actor="maria").to(at(2, 14, month=10), "attempting_contact")
        .to(at(5, 14, month=10), "connected", stage="sal")
        .to(at(8, 14, month=10), "working", source="automation", rule="meeting_held_working", actor="system")
        .to(at(7), "stale_review", source="time_rule", rule="working_stale_30d", reason="no_response", actor="system")
        .to(at(20), "working", override_rule="working_stale_30d"),
        Lead("Q14", at(1, 16, month=10), source="referral", campaign="partner-referral")
        .to(at(1, 17, month=10), "assigned", owner="ben", actor="maria")
        .to(at(2, 16, month=10), "connected", stage="sal", actor="ben")
        .to(at(3, 16, month=10), "working", source="automation", rule="meeting_held_working", actor="system")
        .to(at(20, 16), "stale_review", source="time_rule", rule="working_stale_30d", reason="no_response", actor="system"),
        Lead("Q15", at(16)).to(at(16, 15), "assigned", owner="ben", actor="maria").to(at(17), "attempting_contact", actor="ben")
        .to(at(18), "connected", source="automation", rule="email_reply_connects", actor="system")
        .to(at(18, 16), "attempting_contact", actor="ben", override_rule="email_reply_connects"),
    ]  # fmt: skip
    write(world, *leads)
    return world


def metrics(report):
    return {m["metric"]: (m["numerator"], m["denominator"]) for m in report["metrics"]}


def test_governance_measures_seed_004s_table(quality):
    report = analytics.report(quality, "governance")
    assert report["leads"] == 15
    assert metrics(report) == {
        "status_completeness": (14, 15),  # Q12's legacy_hot is not a status of the model
        # open (known, not terminal): Q1 Q2 Q3 Q6 Q7 Q8 Q9 Q13 Q14 Q15; stale: Q2 (Attempting 9 d > 7 d),
        # Q3 (Qualified 6 d > 3 d), Q8 (past its re-evaluation date), Q14 (in Stale - Review Required)
        "stale_status_rate": (4, 10),
        "status_mismatch_rate": (1, 15),  # Q3: Qualified is valid in SQL only
        "rejected_reason_completeness": (1, 2),  # Q4 poor_fit; Q5 none
        "recycled_reason_completeness": (1, 2),  # Q6 timing_window after no_response; Q7 neither
        "invalid_record_rate": (1, 15),
        "duplicate_status_rate": (1, 15),
    }
    assert report["metrics"][1]["value"] == approx(0.4)
    assert report["incomplete_records"] == 0


def test_governance_lists_off_model_transitions_and_status_usage(quality):
    report = analytics.report(quality, "governance")
    off = report["off_model"]
    assert off["transitions"] == [
        {"from": "assigned", "to": "nurture", "entries": 2},
        {"from": "assigned", "to": "qualified", "entries": 1},
        {"from": "nurture", "to": "recycled", "entries": 1},
    ]
    # status changes after creation: Q1 2, Q2 2, Q3 2, Q4 2, Q5 1, Q6 3, Q7 3, Q8 2, Q9 2, Q10 1, Q11 1, Q12 0,
    # Q13 6, Q14 4, Q15 4 = 35
    assert (off["entries"], off["status_changes"]) == (4, 35)
    usage = {u["status"]: u for u in report["status_usage"]}
    expected = {"new": 14, "assigned": 11, "attempting_contact": 5, "connected": 3, "working": 3, "stale_review": 2,
                "qualified": 1, "converted": 0, "nurture": 3, "rejected": 2, "disqualified": 1, "recycled": 2,
                "invalid": 1, "duplicate": 1, "legacy_hot": 1}  # fmt: skip
    assert {k: u["entries"] for k, u in usage.items()} == expected
    assert usage["converted"]["never_used"] is True
    assert usage["legacy_hot"]["in_model"] is False
    assert usage["new"]["share"] == approx(14 / 50)
    assert not any(u["rarely_used"] for u in usage.values())  # the smallest share is 1 in 50 = 2 %
    reps = {r["rep"]: r for r in report["rep_status_usage"]}
    # by hand, manual status changes: ana set Attempting (Q2, Q13), Connected (Q13), Working (Q13), Nurture (Q8),
    # Duplicate (Q11); ben set Rejected (Q4), Disqualified (Q6), Connected (Q14), Attempting (Q15 twice)
    assert reps["ana"]["statuses_used"] == 5 and reps["ana"]["statuses_available"] == 10
    assert reps["ana"]["never_used"] == ["qualified", "converted", "rejected", "disqualified", "invalid"]
    assert reps["ana"]["share_used"] == 0.5
    assert reps["ben"]["never_used"] == ["working", "qualified", "converted", "nurture", "invalid", "duplicate"]
    assert reps["ben"]["by_status"]["attempting_contact"] == 2
    assert reps["eva"]["statuses_used"] == 0 and reps["eva"]["changes"] == 0


def test_governance_by_owner_and_as_of_before_the_stale_review(quality):
    grouped = analytics.report(quality, "governance", by="owner")
    groups = {
        g["group"]: {m["metric"]: (m["numerator"], m["denominator"]) for m in g["metrics"]} for g in grouped["groups"]
    }
    # ana at T0: Q1 Q2 Q7 Q8 Q13 (open, 2 stale); ben: Q3 Q4 Q6 Q9 Q14 Q15 (5 open, 2 stale)
    assert groups["ana"]["stale_status_rate"] == (2, 5)
    assert groups["ben"]["stale_status_rate"] == (2, 5)
    assert groups["ben"]["status_mismatch_rate"] == (1, 6)
    earlier = analytics.report(quality, "governance", as_of=at(15, 12))
    # Nov 15 12:00: Q1 Q3 Q4 Q10 Q11 Q15 do not exist yet: 9 leads, Q12 unusable
    assert metrics(earlier)["status_completeness"] == (8, 9)
    # open then: Q2 (Attempting for 22 h), Q7 and Q8 (Nurture, Q8's date still ahead), Q9 (still Assigned since
    # Nov 2 19:00: more than 24 h, stale), Q13 (Stale - Review since Nov 7: stale), Q14 (Working since Oct 3:
    # 43 d > 30 d: stale); Q5 and Q6 are terminal
    assert metrics(earlier)["stale_status_rate"] == (3, 6)


def test_sources_answer_seed_004s_questions(quality):
    report = analytics.report(quality, "sources")
    rows = {g["source"]: g for g in report["groups"]}
    assert report["groups"][0]["source"] == "webinar"  # the best qualification rate first
    pick = ("leads", "assigned", "first_action", "engaged", "qualified", "rejected", "recycled", "disqualified",
            "invalid", "duplicate")  # fmt: skip
    assert {k: tuple(v[p] for p in pick) for k, v in rows.items()} == {
        "web_form": (3, 3, 3, 1, 0, 0, 0, 0, 0, 0),  # Q1 Q2 Q15; Q15 engaged
        "webinar": (2, 2, 2, 0, 1, 1, 0, 0, 0, 0),  # Q3 qualified, Q4 rejected
        "paid_search": (2, 1, 2, 0, 0, 1, 1, 1, 0, 0),  # Q5 never owned; Q6 disqualified then recycled
        "linkedin": (2, 2, 2, 0, 0, 0, 1, 0, 0, 0),
        # Q9 nurtured (a first touch); Q10 Invalid and Q11 Duplicate are data problems, not touches
        "event": (3, 1, 1, 0, 0, 0, 0, 0, 1, 1),
        "referral": (3, 2, 3, 2, 0, 0, 0, 0, 0, 0),  # Q12 was created outside New: touched at creation
    }
    assert rows["webinar"]["qualification_rate"] == 0.5
    assert "qualification rate = leads that reached Qualified / leads created" in report["notes"][0]  # not the funnel's
    assert rows["webinar"]["rejected_reasons"] == {"poor_fit": 1}
    assert rows["paid_search"]["rejected_reasons"] == {"(none)": 1}
    campaigns = {g["campaign"]: g["leads"] for g in analytics.report(quality, "sources", by="campaign")["groups"]}
    assert campaigns["trade-show"] == 3 and campaigns["pricing-page"] == 3
    with pytest.raises(Invalid):
        analytics.report(quality, "sources", by="owner")


def test_overrides_per_automation_rule(quality):
    report = analytics.report(quality, "overrides")
    assert report["total_overrides"] == 2
    assert report["rules"] == [
        {"rule": "email_reply_connects", "automated_changes": 1, "overrides": 1, "override_rate": 1.0, "by_actor": {"ben": 1}},
        {"rule": "working_stale_30d", "automated_changes": 2, "overrides": 1, "override_rate": 0.5, "by_actor": {"ana": 1}},
        {"rule": "first_email_sent", "automated_changes": 1, "overrides": 0, "override_rate": 0.0, "by_actor": {}},
        {"rule": "meeting_held_working", "automated_changes": 2, "overrides": 0, "override_rate": 0.0, "by_actor": {}},
    ]  # fmt: skip
    before = analytics.report(quality, "overrides", as_of=at(18, 15))
    assert before["total_overrides"] == 0  # both overrides came later (Nov 18 16:00, Nov 20)


def test_reps_per_owner_at_the_time_of_each_change(quality):
    report = {r["owner"]: r for r in analytics.report(quality, "reps")["reps"]}
    assert set(report) == {"ana", "ben"}
    ana, ben = report["ana"], report["ben"]
    assert (ana["leads_handled"], ben["leads_handled"]) == (5, 6)
    # first touch from the moment the rep got the lead: ana Q1 1 h (the email), Q2 23 h, Q7 23 h, Q8 167 h,
    # Q13 23 h -> median 23 h; in business hours 1, 7 (Fri 10-17, then Saturday), 7, 39, 7 (Oct 1 11-17 EDT
    # + Oct 2 9-10) -> median 7
    assert ana["first_touches"] == 5
    assert ana["median_hours_to_first_touch"] == 23 and ana["business_median_hours_to_first_touch"] == 7
    # ben: Q3 23, Q4 3, Q6 23, Q9 403, Q14 23, Q15 23 -> median 23; business 7, 3, 7, 91, 7, 7 -> 7
    assert ben["first_touches"] == 6 and ben["median_hours_to_first_touch"] == 23
    assert ana["attempting_contact_to_connected"] == {"entered": 3, "reached": 1, "rate": approx(1 / 3)}
    assert ben["attempting_contact_to_connected"] == {"entered": 1, "reached": 1, "rate": 1.0}
    assert ben["qualified_to_converted"] == {"entered": 1, "reached": 0, "rate": 0.0}
    assert ana["qualified_to_converted"] == {"entered": 0, "reached": 0, "rate": None}
    # Working: ana's Q13 stints 720 h and 73 h (open) -> median 396.5 h; ben's Q14 1152 h
    assert ana["median_hours_in_working"] == approx(396.5) and ben["median_hours_in_working"] == 1152
    assert (ana["open_leads"], ana["stale_leads"], ben["open_leads"], ben["stale_leads"]) == (5, 2, 5, 2)
    assert (ana["overrides"], ben["overrides"]) == (1, 1)
    assert ana["team"] == "east" and ana["awaiting_first_touch"] == 0
    (note,) = analytics.report(quality, "reps")["notes"]
    assert "owner at its first entry into Attempting Contact / Qualified" in note and "funnel report only" in note


def test_a_lead_created_outside_new_was_first_touched_at_creation(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        # imported Working (with its owner) on Nov 2, qualified on Nov 20: the touch was before the import
        Lead("I1", at(2), status="working", stage="sql", owner="ana", entry_source="import")
        .to(at(20), "qualified", source="import", actor="importer"),
        # created New, then a data problem: nobody touched it, and nobody still has to
        Lead("I2", at(2)).to(at(2, 15), "assigned", owner="ben", actor="maria").to(at(3), "invalid", reason="spam",
                                                                                  actor="ben"),
        Lead("I3", at(2)).to(at(2, 15), "assigned", owner="ben", actor="maria").to(at(4), "attempting_contact",
                                                                                  actor="ben"),
    )  # fmt: skip
    reps = {r["owner"]: r for r in analytics.report(world, "reps")["reps"]}
    assert (reps["ana"]["first_touches"], reps["ana"]["median_hours_to_first_touch"]) == (1, 0)
    assert (reps["ben"]["first_touches"], reps["ben"]["median_hours_to_first_touch"]) == (1, 47)
    assert reps["ben"]["awaiting_first_touch"] == 0
    sources = analytics.report(world, "sources")["groups"]
    assert [(g["leads"], g["first_action"]) for g in sources] == [(3, 2)]


# --- sla: from the SLA records ----------------------------------------------------------------------


@pytest.fixture
def clocks(app, monkeypatch, tmp_path):
    from leadledger.store.tables import sla_clocks as table

    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        Lead("S1", at(10)).to(at(10, 15), "assigned", owner="ana", actor="maria"),
        Lead("S2", at(10)).to(at(10, 15), "assigned", owner="ben", actor="maria"),
    )

    def clock(lead, sla, responsible, started, due, status, closed=None):
        breached = due if status == "breached" else None
        return {"lead_id": lead, "sla": sla, "started_at": started, "due_at": due, "responsible": responsible,
                "team": "east", "status": status, "closed_at": closed, "breached_at": breached}  # fmt: skip

    rows = [
        clock("S1", "first_contact", "ana", at(16), at(16, 16), "met", at(16, 15)),  # met in time
        clock("S1", "first_contact", "ana", at(16), at(16, 16), "breached", at(16, 18)),  # met two hours late
        clock("S1", "first_contact", "ana", at(20), at(24), "open"),  # not due yet at T0
        clock("S1", "first_contact", "ana", at(17), at(18), "open"),  # due passed, the sweep has not run yet
        clock("S1", "first_contact", "ana", at(17), at(19), "cancelled", at(18)),
        clock("S2", "qualify", "ben", at(10), at(20), "met", at(19)),
    ]
    with world.db.write() as conn:
        conn.execute(table.insert(), rows)
    return world


def test_sla_compliance_per_sla_rep_and_team_from_the_records(clocks):
    report = analytics.report(clocks, "sla")
    reps = {r["responsible"]: r for r in report["reps"]}
    assert {k: reps["ana"][k] for k in ("met", "breached", "open", "cancelled")} == {
        "met": 1, "breached": 2, "open": 1, "cancelled": 1,
    }  # fmt: skip
    assert reps["ana"]["compliance"] == approx(1 / 3)  # met / (met + breached)
    assert reps["ben"]["compliance"] == 1.0
    slas = {s["sla"]: s for s in report["slas"]}
    assert (slas["first_contact"]["breached"], slas["qualify"]["met"]) == (2, 1)
    assert report["teams"] == [{"team": "east", "met": 2, "breached": 2, "open": 1, "cancelled": 1, "compliance": 0.5}]
    earlier = {r["responsible"]: r for r in analytics.report(clocks, "sla", as_of=at(17, 15))["reps"]}
    # Nov 17 15:00: the first two clocks are decided; the cancelled one and the Nov 17 one still run; ben's too
    assert {k: earlier["ana"][k] for k in ("met", "breached", "open", "cancelled")} == {
        "met": 1, "breached": 1, "open": 2, "cancelled": 0,
    }  # fmt: skip
    assert earlier["ben"]["open"] == 1
    reps_report = {r["owner"]: r for r in analytics.report(clocks, "reps")["reps"]}
    assert (reps_report["ana"]["sla_breaches"], reps_report["ben"]["sla_breaches"]) == (2, 0)
