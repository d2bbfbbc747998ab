"""distribution, funnel, durations and bottlenecks on a hand-built ledger, every number worked out below.

The ledger (UTC; New York = UTC-5, so 14:00Z = 09:00 there; Wed Nov 11 is a US holiday; Berlin = UTC+1):

  L1 web_form   New Nov 9 14:00 -> Assigned (ana) 15:00 -> Attempting Nov 10 14:00 -> Connected Nov 12 14:00
                -> Qualified Nov 16 14:00 -> Converted Nov 17 14:00
  L2 webinar    New Nov 9 16:00 -> Assigned (ben) 17:00 -> Connected Nov 10 17:00 (skips Attempting)
                -> Disqualified Nov 13 17:00
  L3 paid       New Nov 2 14:00 -> Assigned (ana) 15:00 -> Attempting Nov 3 -> Disqualified Nov 4 -> Recycled Nov 5
                -> Attempting (ben) Nov 6 -> Nurture Nov 9 -> Recycled Nov 16 -> Connected Nov 17 -> Qualified Nov 18
                -> Converted Nov 19 (recycled twice; all at 14:00)
  L4 import     created New Nov 12 14:00, superseded at the same instant by Working (ben, off-model)
                -> Qualified Nov 18 14:00 (never a New stint)
  L5 web_form   New Nov 20 07:00 -> Assigned (eva, Berlin calendar) 08:00, still Assigned at the as-of time

As of T0 = Mon Nov 23 15:00Z unless a test says otherwise.
"""

from __future__ import annotations

from datetime import date

import pytest
from test_reports_builder import Lead, at, by_status, new_world, write

from leadledger import analytics
from leadledger.services.errors import Invalid

approx = pytest.approx


@pytest.fixture
def pipeline(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        Lead("L1", at(9)).to(at(9, 15), "assigned", owner="ana", actor="maria").to(at(10), "attempting_contact")
        .to(at(12), "connected", stage="mql").to(at(16), "qualified", stage="sql", reason="framework_met")
        .to(at(17), "converted", stage="opportunity"),
        Lead("L2", at(9, 16), source="webinar", campaign="webinar-q1").to(at(9, 17), "assigned", owner="ben", actor="maria")
        .to(at(10, 17), "connected", actor="ben").to(at(13, 17), "disqualified", reason="wrong_fit", actor="ben"),
        Lead("L3", at(2), source="paid_search", campaign="brand-search")
        .to(at(2, 15), "assigned", owner="ana", actor="maria").to(at(3), "attempting_contact")
        .to(at(4), "disqualified", reason="no_response").to(at(5), "recycled", reason="timing_window", actor="maria")
        .to(at(6), "attempting_contact", owner="ben", actor="ben")
        .to(at(9), "nurture", reason="bad_timing", data={"re_evaluate_on": "2026-11-20"}, actor="ben")
        .to(at(16), "recycled", reason="re_engaged", actor="maria").to(at(17), "connected", actor="ben")
        .to(at(18), "qualified", stage="sql", actor="ben").to(at(19), "converted", stage="opportunity", actor="ben"),
        Lead("L4", at(12), entry_source="import")
        .to(at(12), "working", owner="ben", stage="sal", kind="correction", source="import", actor="importer", off_model=True)
        .to(at(18), "qualified", stage="sql", actor="ben"),
        Lead("L5", at(20, 7)).to(at(20, 8), "assigned", owner="eva", actor="maria"),
    )  # fmt: skip
    return world


def steps(report):
    return {(s["from"], s["to"]): (s["entered"], s["reached"], s["rate"]) for s in report["steps"]}


# --- distribution -----------------------------------------------------------------------------------


def test_distribution_now_counts_each_lead_in_the_status_of_its_last_change(pipeline):
    report = analytics.report(pipeline, "distribution")
    assert report["total"] == 5
    assert {k: v for k, v in report["counts"].items() if v} == {
        "assigned": 1, "qualified": 1, "converted": 2, "disqualified": 1,
    }  # fmt: skip
    assert report["counts"]["new"] == 0 and list(report["counts"])[:2] == ["new", "assigned"]  # every status listed
    assert report["stages"]["converted"]["opportunity"] == 2
    assert report["stages"]["qualified"]["sql"] == 1
    assert report["families"]["new"] == 1  # New with its sub-status Assigned


def test_distribution_at_a_past_time_and_by_owner(pipeline):
    before = analytics.report(pipeline, "distribution", as_of=at(10, 0))
    # Nov 10 00:00: L1 and L2 Assigned, L3 in Nurture since Nov 9; L4 and L5 do not exist yet
    assert before["total"] == 3
    assert before["counts"]["assigned"] == 2 and before["counts"]["nurture"] == 1
    grouped = analytics.report(pipeline, "distribution", by="owner")
    groups = {g["group"]: {k: v for k, v in g["counts"].items() if v} for g in grouped["groups"]}
    assert groups == {
        "ana": {"converted": 1},
        "ben": {"disqualified": 1, "converted": 1, "qualified": 1},
        "eva": {"assigned": 1},
    }
    teams = {g["group"]: g["total"] for g in analytics.report(pipeline, "distribution", by="team")["groups"]}
    assert teams == {"east": 4, "berlin": 1}
    sources = {g["group"]: g["total"] for g in analytics.report(pipeline, "distribution", by="source")["groups"]}
    assert sources == {"web_form": 3, "webinar": 1, "paid_search": 1}


def test_distribution_is_a_point_in_time(pipeline):
    with pytest.raises(Invalid, match="point in time"):
        analytics.report(pipeline, "distribution", date_from=date(2026, 11, 1))


# --- funnel -----------------------------------------------------------------------------------------


def test_funnel_counts_first_entries_and_later_arrivals(pipeline):
    report = analytics.report(pipeline, "funnel", pairs=[("connected", "working"), ("working", "qualified")])
    assert steps(report) == {
        # entered New: L1, L2, L3, L5 (L4's New was superseded); on to Attempting: L1, L3 (L2 skipped it)
        ("new", "attempting_contact"): (4, 2, 0.5),
        # L1 and L3 (first attempt Nov 3; Connected Nov 17, after going round twice) both connect
        ("attempting_contact", "connected"): (2, 2, 1.0),
        # connected: L1, L2, L3; qualified later: L1, L3
        ("connected", "qualified"): (3, 2, approx(2 / 3)),
        # qualified: L1, L3, L4; converted later: L1, L3
        ("qualified", "converted"): (3, 2, approx(2 / 3)),
        # L3 entered Recycled first on Nov 5 and converted on Nov 19
        ("recycled", "converted"): (1, 1, 1.0),
        # nobody entered Working after Connected (L4's Working came before anything else)
        ("connected", "working"): (3, 0, 0.0),
        ("working", "qualified"): (1, 1, 1.0),
    }
    seeded = {(s["from"], s["to"]): s.get("outside_seed_range") for s in report["steps"]}
    assert seeded[("new", "attempting_contact")] is True  # below 100 %
    assert seeded[("attempting_contact", "connected")] is True  # 100 % is outside 30-50 %
    assert ("connected", "working") not in {k for k, v in seeded.items() if v is not None}


def test_funnel_in_a_period_counts_leads_whose_first_entry_lies_in_it(pipeline):
    report = analytics.report(pipeline, "funnel", date_from=date(2026, 11, 9), date_to=date(2026, 11, 12))
    assert steps(report) == {
        ("new", "attempting_contact"): (2, 1, 0.5),  # L1, L2 created Nov 9 (L3 Nov 2, L5 Nov 20 are outside)
        ("attempting_contact", "connected"): (1, 1, 1.0),  # L1 (L3's first attempt was Nov 3)
        ("connected", "qualified"): (2, 1, 0.5),  # L2 (Nov 10) and L1 (Nov 12)
        ("qualified", "converted"): (0, 0, None),
        ("recycled", "converted"): (0, 0, None),
    }


def test_funnel_as_of_a_past_time_ignores_what_came_later(pipeline):
    report = analytics.report(pipeline, "funnel", as_of=at(17, 12))  # before L1 converts at 14:00 that day
    assert steps(report) == {
        ("new", "attempting_contact"): (3, 2, approx(2 / 3)),
        ("attempting_contact", "connected"): (2, 1, 0.5),  # L3 connects only at Nov 17 14:00
        ("connected", "qualified"): (2, 1, 0.5),
        ("qualified", "converted"): (1, 0, 0.0),
        ("recycled", "converted"): (1, 0, 0.0),
    }


def test_funnel_by_owner_uses_the_owner_at_the_first_entry(pipeline):
    report = analytics.report(pipeline, "funnel", by="owner")
    groups = {g["group"]: steps(g) for g in report["groups"]}
    assert groups["ana"][("attempting_contact", "connected")] == (2, 2, 1.0)  # L1 and L3 entered it under ana
    assert groups["ana"][("connected", "qualified")] == (1, 1, 1.0)  # L1
    assert groups["ben"][("connected", "qualified")] == (2, 1, 0.5)  # L2 and L3 (connected under ben)
    assert groups["(none)"][("new", "attempting_contact")] == (4, 2, 0.5)  # nobody owns a lead as it is created
    assert steps(report)[("connected", "qualified")] == (3, 2, approx(2 / 3))


def test_funnel_refuses_unknown_pairs(pipeline):
    with pytest.raises(Invalid, match="unknown status won"):
        analytics.report(pipeline, "funnel", pairs=[("qualified", "won")])


# --- durations --------------------------------------------------------------------------------------


def test_durations_per_status_in_calendar_and_business_hours(pipeline):
    report = by_status(analytics.report(pipeline, "durations"))
    # New: L1, L2, L3, L5 each 1 h; business 1, 1, 1 and 0 (L5's hour is 02:00-03:00 in New York)
    assert (report["new"]["stints"], report["new"]["mean_hours"], report["new"]["median_hours"]) == (4, 1, 1)
    assert report["new"]["business_mean_hours"] == approx(0.75)
    # Assigned: L1 23 h, L2 24 h, L3 23 h, L5 79 h (open). Sorted 23, 23, 24, 79:
    # median = (23 + 24) / 2, p90 at position 2.7 = 24 + 0.7 * 55
    assigned = report["assigned"]
    assert (assigned["stints"], assigned["open"]) == (4, 1)
    assert assigned["mean_hours"] == approx(37.25)
    assert assigned["median_hours"] == approx(23.5)
    assert assigned["p90_hours"] == approx(62.5)
    # business: L1 Mon 10-17 = 7; L2 Mon 12-17 + Tue 9-12 = 8; L3 7; L5 on eva's Berlin calendar:
    # Fri 09:00-12:30 + 13:30-16:00 = 6, Mon 09:00-12:30 + 13:30-16:00 (as of 15:00Z) = 6 -> 12
    assert assigned["business_median_hours"] == approx(7.5)
    assert assigned["business_mean_hours"] == approx(8.5)
    assert assigned["business_p90_hours"] == approx(10.8)
    # Attempting: L1 48 h (business Tue 8 + Wed holiday 0), L3 24 h (Tue Nov 3: 8) and 72 h (Fri 8 + weekend)
    attempting = report["attempting_contact"]
    assert (attempting["stints"], attempting["median_hours"], attempting["p90_hours"]) == (3, 48, approx(67.2))
    assert attempting["business_median_hours"] == 8
    # Connected: L1 96 h (Thu 8 + Fri 8 over the weekend = 16), L2 72 h (Tue 12-17 5 + Wed holiday
    # + Thu 8 + Fri 9-12 3 = 16), L3 24 h (8)
    connected = report["connected"]
    assert (connected["median_hours"], connected["mean_hours"]) == (72, 64)
    assert connected["business_median_hours"] == 16
    assert connected["business_mean_hours"] == approx(40 / 3)
    # Qualified: L1 24, L3 24, L4 121 (open: Nov 18 14:00 to Nov 23 15:00; business 8 + 8 + 8 + 1 = 25)
    qualified = report["qualified"]
    assert (qualified["stints"], qualified["open"], qualified["median_hours"]) == (3, 1, 24)
    assert qualified["p90_hours"] == approx(101.6)
    assert qualified["business_p90_hours"] == approx(8 + 0.8 * 17)
    # Recycled twice (L3), Nurture once, Working once (L4: Thu 8 + Fri 8 + Mon 8 + Tue 8 = 32 business hours)
    assert report["recycled"]["stints"] == 2 and report["recycled"]["median_hours"] == 24
    assert report["nurture"]["median_hours"] == 168 and report["nurture"]["business_median_hours"] == 32
    assert report["working"]["median_hours"] == 144 and report["working"]["business_median_hours"] == 32
    assert report["converted"]["median_hours"] == 121  # 97 h (L3) and 145 h (L1)


def test_durations_in_a_period_and_by_owner(pipeline):
    # stints entered Nov 16-18: L1 Qualified (24) and Converted (open, 145), L3 Recycled (24), Connected (24),
    # Qualified (24), L4 Qualified (121)
    report = by_status(
        analytics.report(pipeline, "durations", date_from=date(2026, 11, 16), date_to=date(2026, 11, 18))
    )
    assert set(report) == {"qualified", "converted", "recycled", "connected"}
    assert report["qualified"]["stints"] == 3 and report["converted"]["stints"] == 1
    grouped = analytics.report(pipeline, "durations", by="owner")
    owners = {g["group"]: by_status(g) for g in grouped["groups"]}
    assert owners["eva"]["assigned"]["business_median_hours"] == approx(12)
    assert owners["ana"]["attempting_contact"]["stints"] == 2  # L1 and L3's first attempt
    assert owners["ben"]["attempting_contact"]["median_hours"] == 72


# --- bottlenecks ------------------------------------------------------------------------------------


def test_bottlenecks_track_stock_inflow_and_outflow_per_week(pipeline):
    # two weeks back from the as-of time: (Nov 9 15:00, Nov 16 15:00] and (Nov 16 15:00, Nov 23 15:00]
    report = analytics.report(pipeline, "bottlenecks", date_from=None, as_of=at(23, 15))
    weeks = {s["status"]: s for s in report["statuses"]}
    qualified = weeks["qualified"]
    # 8 weeks: nothing qualified until L1 on Nov 16 14:00 (week 7), out Nov 17; L3 and L4 on Nov 18 (week 8),
    # L3 out Nov 19: stock 0 at the start, 1 at the end (L4)
    assert qualified["stock_start"] == 0 and qualified["stock_end"] == 1 and qualified["growing"] is True
    assert [w["inflow"] for w in qualified["weeks"]][-2:] == [1, 2]
    assert [w["outflow"] for w in qualified["weeks"]][-2:] == [0, 2]
    assert [w["stock"] for w in qualified["weeks"]][-2:] == [1, 1]
    assert qualified["stock_age_median_hours"] == 121  # L4, in Qualified since Nov 18 14:00
    for status in report["statuses"]:  # stock identity: start + inflow - outflow = end
        assert (
            status["stock_start"]
            + sum(w["inflow"] for w in status["weeks"])
            - sum(w["outflow"] for w in status["weeks"])
            == status["stock_end"]
        )
    flagged = {b["status"]: b["why"] for b in report["bottlenecks"]}
    assert "qualified" in flagged and "stock grew from 0 to 1" in flagged["qualified"]
    # Converted (L1, L3) and Disqualified (L2) grew too, but a status leads end in is where they belong
    assert weeks["converted"]["growing"] and weeks["converted"]["ended"] and weeks["disqualified"]["growing"]
    assert "converted" not in flagged and "disqualified" not in flagged
    # Qualified stints entered in the window: 24, 24, 121 h -> median 24 h, within seed 000's 1-3 days
    assert qualified["median_hours"] == 24 and qualified["median_over_seed_range"] is False
    # Working (L4): one stint of 144 h entered Nov 12, median 6 days: inside 14-21 d, not flagged for time
    assert weeks["working"]["median_over_seed_range"] is False


def test_bottlenecks_flag_a_median_beyond_the_seed_range(pipeline):
    # Connected stints entered Nov 10-12 in a period from Nov 9: L2 72 h, L1 96 h: median 84 h = 3.5 days,
    # within 5-10 days; New stints (1 h each) are within < 4 h; Nurture has no seed range
    report = analytics.report(pipeline, "bottlenecks", date_from=date(2026, 11, 9), date_to=date(2026, 11, 13))
    statuses = {s["status"]: s for s in report["statuses"]}
    assert len(report["weeks"]) == 1  # Nov 9 00:00 to Nov 14 00:00: one (short) week
    assert statuses["connected"]["median_hours"] == 84 and not statuses["connected"]["median_over_seed_range"]
    assert statuses["disqualified"]["stock_end"] == 1  # L2 on Nov 13
    # an 8-day Attempting stint is over seed 000's 3-7 days
    write(
        pipeline,
        Lead("L6", at(9))
        .to(at(9, 15), "attempting_contact")
        .to(at(17, 15), "nurture", reason="no_response", data={"re_evaluate_on": "2027-01-04"}),
    )
    report = analytics.report(pipeline, "bottlenecks", date_from=date(2026, 11, 9), date_to=date(2026, 11, 20))
    statuses = {s["status"]: s for s in report["statuses"]}
    # Attempting stints entered Nov 9-20: L1 48 h, L6 192 h -> median 120 h = 5 days: inside 3-7 d
    assert statuses["attempting_contact"]["median_hours"] == 120
    assert statuses["attempting_contact"]["median_over_seed_range"] is False


def test_a_future_as_of_is_refused_and_a_period_beyond_the_data_is_fine(pipeline):
    with pytest.raises(Invalid, match="in the future"):
        analytics.report(pipeline, "distribution", as_of=at(24, 15))
    report = analytics.report(pipeline, "funnel", date_from=date(2026, 11, 1), date_to=date(2027, 6, 30))
    assert report["to"] == date(2027, 6, 30)
