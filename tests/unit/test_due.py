"""domain.due on hand-built states: when each kind of time rule of the default model can next fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadledger.domain.due import FLOOR, DueFacts, activity_due, due_at, rule_due
from leadledger.model.loader import default_model_text, load_text

MODEL = load_text(default_model_text(), "default").model
RULES = {rule.name: rule for rule in MODEL.time_rules}
CAL = MODEL.calendar(None)
MONDAY_10 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 New York; Thanksgiving on Thursday


def facts(status: str, since: datetime = MONDAY_10, **kw) -> DueFacts:
    return DueFacts(status=status, status_since=since, created_at=kw.pop("created_at", since), fields=kw.pop("fields", {}),
                    calendar=CAL, **kw)  # fmt: skip


def test_since_creation_rule_is_due_24_hours_after_creation_and_never_again_once_fired():
    created = MONDAY_10 - timedelta(hours=3)
    assert rule_due(MODEL, RULES["new_unrouted_24h"], facts("new", created_at=created)) == created + timedelta(hours=24)
    assert rule_due(MODEL, RULES["new_unrouted_24h"], facts("new", created_at=created, fired={"new_unrouted_24h"})) is None
    assert rule_due(MODEL, RULES["new_unrouted_24h"], facts("working", created_at=created)) is None


def test_business_days_rule_is_due_five_business_days_later_skipping_the_holiday_and_the_weekend():
    due = rule_due(MODEL, RULES["attempting_escalate_5d"], facts("attempting_contact"))
    assert due == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # Tue 1 Dec 10:00 New York (Thanksgiving skipped)
    # the instant the sweep's own cutoff first lets the lead through, not a second earlier
    cutoff = RULES["attempting_escalate_5d"].after
    assert cutoff.cutoff(CAL, due) >= MONDAY_10 > cutoff.cutoff(CAL, due - timedelta(seconds=1))


def test_attempting_contact_is_due_at_the_earliest_of_its_rules():
    assert due_at(MODEL, facts("attempting_contact", activities=[])) == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 7d
    unknown = due_at(MODEL, facts("attempting_contact"))  # attempts not read: could be any time from entering
    assert unknown == MONDAY_10


def test_attempts_rule_is_due_when_the_eighth_counted_attempt_happens():
    calls = [("call_logged", MONDAY_10 + timedelta(hours=h)) for h in range(1, 9)]
    noise = [("note_added", MONDAY_10 + timedelta(minutes=5)), ("call_logged", MONDAY_10 - timedelta(hours=1))]
    rule = RULES["attempts_exhausted"]
    assert rule_due(MODEL, rule, facts("attempting_contact", activities=calls + noise)) == MONDAY_10 + timedelta(hours=8)
    assert rule_due(MODEL, rule, facts("attempting_contact", activities=calls[:7] + noise)) is None
    # a counted attempt brings the due-at down to its own instant; one before the stint or of another type does not
    assert activity_due(MODEL, "attempting_contact", MONDAY_10, "sms_sent", MONDAY_10 + timedelta(hours=2)) == (
        MONDAY_10 + timedelta(hours=2)
    )
    assert activity_due(MODEL, "attempting_contact", MONDAY_10, "note_added", MONDAY_10 + timedelta(hours=2)) is None
    assert activity_due(MODEL, "attempting_contact", MONDAY_10, "sms_sent", MONDAY_10 - timedelta(hours=2)) is None
    assert activity_due(MODEL, "working", MONDAY_10, "sms_sent", MONDAY_10 + timedelta(hours=2)) is None


def test_no_activity_rule_counts_from_the_last_activity_known_up_to_now():
    rule = RULES["working_quiet_14d"]
    last = MONDAY_10 + timedelta(days=3)
    later = MONDAY_10 + timedelta(days=20)  # logged ahead of time: not known at `now`
    acts = [("call_logged", MONDAY_10 + timedelta(days=1)), ("email_sent", last), ("meeting_held", later)]
    now = MONDAY_10 + timedelta(days=5)
    assert rule_due(MODEL, rule, facts("working", activities=acts, now=now)) == last + timedelta(days=14)
    assert rule_due(MODEL, rule, facts("working")) == MONDAY_10 + timedelta(days=14)  # not read: from entering
    assert rule_due(MODEL, rule, facts("working", activities=acts, now=now, fired={"working_quiet_14d"})) is None
    # the lead's due-at is the earlier of the two working rules
    assert due_at(MODEL, facts("working", activities=acts, now=now)) == last + timedelta(days=14)
    assert due_at(MODEL, facts("working", activities=acts, now=now, fired={"working_quiet_14d"})) == (
        last + timedelta(days=30)
    )


def test_date_field_rule_is_due_at_local_midnight_of_the_date():
    rule = RULES["nurture_re_evaluation"]
    assert rule_due(MODEL, rule, facts("nurture", fields={"re_evaluate_on": "2027-03-01"})) == datetime(
        2027, 3, 1, 5, 0, tzinfo=UTC
    )  # midnight in New York
    # the sweep compares texts: a date-time value is on or before "today" only from the next day
    assert rule_due(MODEL, rule, facts("nurture", fields={"re_evaluate_on": "2027-03-01T09:00"})) == datetime(
        2027, 3, 2, 5, 0, tzinfo=UTC
    )
    assert rule_due(MODEL, rule, facts("nurture", fields={})) is None
    assert rule_due(MODEL, rule, facts("nurture", fields={"re_evaluate_on": ""})) == FLOOR
    assert rule_due(MODEL, rule, facts("nurture", fields={"re_evaluate_on": 5})) == FLOOR  # judged every sweep


def test_a_closed_lead_has_no_due_at_and_group_rules_are_left_to_the_sweep():
    assert due_at(MODEL, facts("converted")) is None
    assert due_at(MODEL, facts("nurture")) is None  # nurture: a date rule without a date, and the company rule


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
    offset=st.integers(min_value=0, max_value=40 * 86400),
    rule=st.sampled_from(sorted(n for n, r in RULES.items() if r.after is not None)),
)
def test_a_rule_never_fires_before_its_due_at(start, offset, rule):
    """The sweep fires "after" rules when start <= cutoff(now); the due-at must never be later than that."""
    duration = RULES[rule].after
    now = start + timedelta(seconds=offset)
    due = duration.after(CAL, start)
    if start <= duration.cutoff(CAL, now):
        assert due <= now


@pytest.mark.parametrize("status", ["new", "working", "attempting_contact", "stale_review"])
def test_every_open_status_with_a_rule_has_a_due_at(status):
    assert due_at(MODEL, facts(status)) is not None
