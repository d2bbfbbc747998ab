"""Manager review on a hand-built ledger: who sees and judges which changes, verdicts, notifications, and the
monthly spot-check (reproducible, stratified) feeding status accuracy in `report reps` and `report governance`.

People: maria manages east (ana, ben) and berlin (eva); jonas manages west (wes); olga is ops.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from test_reports_builder import Lead, at, new_world, write

from leadledger import analytics
from leadledger.analytics import governance_review as read
from leadledger.services import inbox, people, review
from leadledger.services.errors import Forbidden, Invalid, NotFound
from leadledger.store.tables import ledger
from leadledger.store.tables_governance import reviews

approx = pytest.approx


@pytest.fixture
def world(app, monkeypatch, tmp_path):
    new_world(app, monkeypatch, tmp_path)
    people.add_user(app, name="jonas", role="manager")
    people.add_team(app, name="west", calendar="default", manager="jonas")
    people.add_user(app, name="wes", role="rep", team="west")
    people.add_user(app, name="olga", role="ops")
    people.add_user(app, name="zap", role="integration")
    write(
        app,
        # R1: ana, Assigned Nov 2 15:00 -> Attempting Nov 3 14:00 (23 h later) -> Connected Nov 5 14:00 (48 h)
        Lead("R1", at(2)).to(at(2, 15), "assigned", owner="ana", actor="maria")
        .to(at(3), "attempting_contact").to(at(5), "connected"),
        # R2: ben, Assigned Nov 2 -> Connected by rule Nov 4 -> back to Attempting by ben (an override) Nov 4 16:00
        Lead("R2", at(2)).to(at(2, 15), "assigned", owner="ben", actor="maria")
        .to(at(4), "connected", source="automation", rule="email_reply_connects", actor="system")
        .to(at(4, 16), "attempting_contact", actor="ben", override_rule="email_reply_connects"),
        # R3: wes (team west), Assigned Nov 2 -> Rejected Nov 6
        Lead("R3", at(2)).to(at(2, 15), "assigned", owner="wes", actor="jonas")
        .to(at(6), "rejected", reason="poor_fit", actor="wes"),
        # R4: ana in October: Assigned Oct 5 -> Attempting Oct 6
        Lead("R4", at(5, month=10)).to(at(5, 15, month=10), "assigned", owner="ana", actor="maria")
        .to(at(6, month=10), "attempting_contact"),
    )  # fmt: skip
    return app


def _entries(result):
    return [(c["lead"], c["from_status"], c["to_status"]) for c in result["changes"]]


def test_a_manager_lists_the_changes_of_the_teams_they_manage_with_time_in_the_previous_status(world):
    listed = review.list_transitions(world, actor="maria", date_from=at(1).date(), date_to=at(30).date())
    assert _entries(listed) == [
        ("R1", "new", "assigned"), ("R2", "new", "assigned"), ("R1", "assigned", "attempting_contact"),
        ("R2", "assigned", "connected"), ("R2", "connected", "attempting_contact"),
        ("R1", "attempting_contact", "connected"),
    ]  # fmt: skip
    assert listed["total"] == 6 and listed["scope"]["teams"] == ("berlin", "east")
    by_key = {(c["lead"], c["to_status"]): c for c in listed["changes"]}
    attempt = by_key[("R1", "attempting_contact")]
    assert attempt["hours_in_previous"] == approx(23.0)
    assert (attempt["actor"], attempt["rep"], attempt["team"], attempt["source"]) == ("ana", "ana", "east", "manual")
    assert by_key[("R1", "connected")]["hours_in_previous"] == approx(48.0)
    assert by_key[("R1", "assigned")]["hours_in_previous"] == approx(1.0)
    rule = by_key[("R2", "connected")]
    assert (rule["rule"], rule["actor"], rule["rep"]) == ("email_reply_connects", "system", "ben")
    assert by_key[("R2", "attempting_contact")]["override_rule"] == "email_reply_connects"
    # filters
    only_ben = review.list_transitions(world, actor="maria", rep="ben")
    assert {c["rep"] for c in only_ben["changes"]} == {"ben"} and only_ben["total"] == 3
    overrides = review.list_transitions(world, actor="maria", overrides_only=True)
    assert _entries(overrides) == [("R2", "connected", "attempting_contact")]
    into_or_out_of_connected = review.list_transitions(world, actor="maria", status="connected")
    assert {c["lead"] for c in into_or_out_of_connected["changes"]} == {"R1", "R2"}
    assert into_or_out_of_connected["total"] == 3
    october = review.list_transitions(
        world, actor="maria", date_from=at(1, month=10).date(), date_to=at(31, month=10).date()
    )
    assert _entries(october) == [("R4", "new", "assigned"), ("R4", "assigned", "attempting_contact")]
    page = review.list_transitions(world, actor="maria", limit=2, offset=2)
    assert page["total"] == 8 and len(page["changes"]) == 2


def test_scope_ops_see_everything_a_rep_their_own_others_are_refused(world):
    everything = review.list_transitions(world, actor="olga", date_from=at(1).date())
    assert {c["lead"] for c in everything["changes"]} == {"R1", "R2", "R3"}
    west = review.list_transitions(world, actor="jonas")
    assert {c["lead"] for c in west["changes"]} == {"R3"}
    with pytest.raises(Forbidden, match="does not manage team 'east'"):
        review.list_transitions(world, actor="jonas", team="east")
    own = review.list_transitions(world, actor="ben")
    assert {c["rep"] for c in own["changes"]} == {"ben"}
    with pytest.raises(Forbidden, match="rep"):
        review.list_transitions(world, actor="ben", rep="ana")
    with pytest.raises(Forbidden, match="integration"):
        review.list_transitions(world, actor="zap")


def _entry_id(app, lead, to_status):
    with app.db.read() as conn:
        return conn.execute(
            select(ledger.c.id).where(ledger.c.lead_id == lead, ledger.c.to_status == to_status)
        ).scalar()


def test_a_wrong_usage_verdict_is_recorded_outside_the_ledger_and_tells_the_rep_the_status_guide(world):
    entry = _entry_id(world, "R1", "connected")
    with world.db.read() as conn:
        ledger_rows = conn.execute(select(func.count()).select_from(ledger)).scalar()
    with pytest.raises(Invalid, match="needs a note"):
        review.record_verdict(world, actor="maria", entry_id=entry, verdict="wrong_usage")
    judged = review.record_verdict(
        world, actor="maria", entry_id=entry, verdict="wrong-usage", note="one voicemail is not a conversation"
    )
    assert (judged["verdict"], judged["rep"], judged["team"], judged["notified"]) == (
        "wrong_usage",
        "ana",
        "east",
        "ana",
    )
    with world.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(ledger)).scalar() == ledger_rows
        stored = conn.execute(select(reviews)).one()
    assert (stored.entry_id, stored.reviewer, stored.to_status) == (entry, "maria", "connected")
    (note,) = inbox.list_notifications(world, recipient="ana")
    assert note["kind"] == "review" and note["lead_id"] == "R1"
    assert "one voicemail is not a conversation" in note["message"]
    assert "Status guide - Connected" in note["message"]
    model = world.loaded_model().model
    assert model.statuses["connected"].definition.split()[0] in note["message"]
    # the latest verdict counts, and the list shows it
    review.record_verdict(world, actor="olga", entry_id=entry, verdict="ok", note="talked it over: it was a call")
    listed = review.list_transitions(world, actor="maria", rep="ana", status="connected")
    (row,) = [c for c in listed["changes"] if c["entry"] == entry]
    assert row["verdict"]["verdict"] == "ok" and row["verdict"]["reviewer"] == "olga"
    assert review.list_transitions(world, actor="maria", unreviewed=True)["total"] == 7


def test_who_may_judge_a_change(world):
    east = _entry_id(world, "R1", "attempting_contact")
    west = _entry_id(world, "R3", "rejected")
    own = _entry_id(world, "R4", "assigned")  # maria assigned it herself
    with pytest.raises(Forbidden, match="does not manage"):
        review.record_verdict(world, actor="jonas", entry_id=east, verdict="ok")
    with pytest.raises(Forbidden, match="someone else"):
        review.record_verdict(world, actor="maria", entry_id=own, verdict="ok")
    with pytest.raises(Forbidden, match="rep"):
        review.record_verdict(world, actor="ben", entry_id=east, verdict="ok")
    with pytest.raises(NotFound):
        review.record_verdict(world, actor="olga", entry_id=10**9, verdict="ok")
    with pytest.raises(Invalid, match="verdict"):
        review.record_verdict(world, actor="olga", entry_id=east, verdict="meh")
    assert review.record_verdict(world, actor="jonas", entry_id=west, verdict="ok")["notified"] is None
    assert review.record_verdict(world, actor="olga", entry_id=own, verdict="ok")["rep"] == "ana"


# --- spot-checks -------------------------------------------------------------------------------------------


def test_allocation_gives_every_status_one_draw_then_follows_size():
    # one each, then the 7 left by size among the strata with room: 40:9 -> 5.71 and 1.29 -> 6 and 1 (largest remainder)
    assert read.allocate({"attempting_contact": 40, "rejected": 1, "connected": 9}, 10) == {
        "attempting_contact": 7, "rejected": 1, "connected": 2}  # fmt: skip
    assert read.allocate({"a": 3, "b": 2}, 10) == {"a": 3, "b": 2}  # fewer changes than draws: all of them
    assert read.allocate({"a": 5, "b": 1, "c": 1}, 2) == {"a": 0, "b": 1, "c": 1}  # the rarest first
    assert sum(read.allocate({"a": 7, "b": 7, "c": 7}, 10).values()) == 10


@pytest.fixture
def busy_month(world):
    """November: ana moves 30 leads to Attempting Contact, 2 to Rejected, 1 to Invalid; ben 12 to Attempting."""
    leads = []
    for i in range(30):
        leads.append(Lead(f"A{i}", at(9)).to(at(9, 15), "assigned", owner="ana", actor="maria")
                     .to(at(10 + i % 10, 14, i), "attempting_contact"))  # fmt: skip
    for i in range(2):
        leads.append(Lead(f"J{i}", at(9)).to(at(9, 15), "assigned", owner="ana", actor="maria")
                     .to(at(12, 16, i), "rejected", reason="poor_fit"))  # fmt: skip
    leads.append(Lead("V0", at(9)).to(at(9, 15), "assigned", owner="ana", actor="maria")
                 .to(at(13, 16), "invalid", reason="bad_email"))  # fmt: skip
    for i in range(12):
        leads.append(Lead(f"B{i}", at(9)).to(at(9, 15), "assigned", owner="ben", actor="maria")
                     .to(at(11, 14, i), "attempting_contact", actor="ben"))  # fmt: skip
    write(world, *leads)
    return world


def test_the_monthly_sample_is_stratified_and_reproducible_with_its_seed(busy_month):
    sample = review.draw_sample(busy_month, actor="maria", month="2026-11", per_rep=6, seed="s1")
    ana = [i for i in sample["items"] if i["rep"] == "ana"]
    ben = [i for i in sample["items"] if i["rep"] == "ben"]
    # ana: 31+1 attempting (R1 too), 2 rejected, 1 invalid, 1 connected -> each status seen once, the rest by size
    assert sorted(i["to_status"] for i in ana) == ["attempting_contact"] * 3 + ["connected", "invalid", "rejected"]
    assert {i["to_status"]: i["stratum_changes"] for i in ana} == {
        "attempting_contact": 31, "connected": 1, "invalid": 1, "rejected": 2}  # fmt: skip
    # ben's own manual changes: 12 + the override on R2 (the rule's change is not his)
    assert len(ben) == 6 and {i["to_status"] for i in ben} == {"attempting_contact"}
    assert sample["size"] == 12 and sample["reps"]["ana"]["drawn"] == 6
    assert {i["rep"] for i in sample["items"]} == {"ana", "ben"}  # maria's teams only: no wes
    assert all(i["entry_at"].month == 11 for i in sample["items"])
    # asked again: the stored sample, whatever the options
    again = review.draw_sample(busy_month, actor="maria", month="2026-11", per_rep=3)
    assert again["sample"] == sample["sample"] and again["items"] == sample["items"]
    # the same seed on the same ledger draws the same changes; another seed, others
    with read.governance_query(busy_month, date_from=at(1).date(), date_to=at(30).date()) as q:
        scope = read.ChangeFilter(teams=("berlin", "east"))
        same = read.draw(q, scope, per_rep=6, seed="s1")
        other = read.draw(q, scope, per_rep=6, seed="s2")
    assert [d.change["entry"] for d in same] == [i["entry_id"] for i in sample["items"]]
    assert {d.change["entry"] for d in other} != {i["entry_id"] for i in sample["items"]}


def test_who_may_draw_a_sample(busy_month):
    with pytest.raises(Forbidden):
        review.draw_sample(busy_month, actor="ana", month="2026-11")
    with pytest.raises(Forbidden):
        review.draw_sample(busy_month, actor="jonas", month="2026-11", manager="maria")
    with pytest.raises(Invalid, match="YYYY-MM"):
        review.draw_sample(busy_month, actor="maria", month="2026-13")
    drawn = review.draw_sample(busy_month, actor="olga", month="2026-11", manager="jonas", per_rep=5)
    assert {i["rep"] for i in drawn["items"]} == {"wes"}
    assert [s["manager"] for s in review.list_samples(busy_month, actor="olga")] == ["jonas"]
    with pytest.raises(Forbidden):
        review.sample_view(busy_month, actor="maria", sample_id=drawn["sample"])


def test_verdicts_on_the_sample_give_each_rep_a_status_accuracy_in_the_reports(busy_month):
    sample = review.draw_sample(busy_month, actor="maria", month="2026-11", per_rep=6, seed="s1")
    for item in sample["items"]:
        wrong = item["rep"] == "ana" and item["to_status"] == "rejected"
        review.record_verdict(busy_month, actor="maria", entry_id=item["entry_id"],
                              verdict="wrong_usage" if wrong else "ok", note="not a handoff refusal" if wrong else None)  # fmt: skip
    # a verdict outside the sample is counted as a review, not in the accuracy
    outside = next(c for c in review.list_transitions(busy_month, actor="maria", rep="ana", date_from=at(1).date())["changes"]
                   if c["entry"] not in {i["entry_id"] for i in sample["items"]} and c["actor"] == "ana")  # fmt: skip
    review.record_verdict(busy_month, actor="maria", entry_id=outside["entry"], verdict="wrong_usage", note="no call")
    reps = {r["owner"]: r for r in analytics.report(busy_month, "reps")["reps"]}
    ana = reps["ana"]["status_accuracy"]
    # ana's strata: attempting 31 (3/3 ok), connected 1 (1/1), invalid 1 (1/1), rejected 2 (0/1):
    # weighted (31 + 1 + 1 + 0) / 35; the plain share 5/6
    assert ana["status_accuracy"] == approx(33 / 35)
    assert (ana["sampled_ok"], ana["sampled_reviewed"], ana["reviewed"], ana["wrong_usage"]) == (5, 6, 7, 2)
    assert ana["ok_share"] == approx(5 / 6) and 0 < ana["ok_share_low"] < 5 / 6 < ana["ok_share_high"] <= 1
    assert ana["wrong_statuses"] == ["rejected"]
    assert reps["ben"]["status_accuracy"]["status_accuracy"] == 1.0
    assert reps["wes"]["status_accuracy"]["sampled_reviewed"] == 0
    governance = analytics.report(busy_month, "governance")["status_accuracy"]
    assert (governance["sampled_ok"], governance["sampled_reviewed"]) == (11, 12)
    assert [r["rep"] for r in governance["reps"]] == ["ana", "ben"]
    # verdicts given after the as-of time do not count; changes outside the period do not either
    before = analytics.report(busy_month, "reps", as_of=at(20))["reps"]
    assert all(r["status_accuracy"]["reviewed"] == 0 for r in before)
    october = analytics.report(
        busy_month, "governance", date_from=at(1, month=10).date(), date_to=at(31, month=10).date()
    )
    assert october["status_accuracy"]["reviewed"] == 0
    november = analytics.report(busy_month, "governance", date_from=at(1).date(), date_to=at(30).date())
    assert november["status_accuracy"]["reviewed"] == 13


def test_the_worker_draws_last_months_samples_on_the_first_and_tells_each_manager(busy_month, clock):
    from datetime import UTC, datetime

    from leadledger.services import worker

    clock.at = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    rounds: list[dict] = []
    worker.run(busy_month, once=True, deliver=False, report=rounds.append)
    drawn = rounds[0]["governance"]["samples"]
    assert [(d["manager"], d["size"] > 0) for d in drawn] == [("jonas", True), ("maria", True)]
    notes = [n for n in inbox.list_notifications(busy_month, recipient="maria") if n["kind"] == "review_sample"]
    assert len(notes) == 1 and "2026-11" in notes[0]["message"]
    assert rounds[0]["governance"]["council_pack"] is None  # Q4 has not ended; Q3 ended before the install
    again = review.draw_sample(busy_month, actor="maria", month="2026-11")
    assert again["sample"] == drawn[1]["sample"] and again["created_by"] == "system"
    worker.run(busy_month, once=True, deliver=False, report=rounds.append)
    assert rounds[1]["governance"]["samples"] == []  # drawn once per month and manager
