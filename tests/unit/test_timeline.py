"""The one fold from ledger entries to a lead's state, and the one SLA clock step (domain.timeline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from leadledger.domain.timeline import (
    Projection,
    SlaClock,
    TimelineStep,
    clocks_on_activity,
    clocks_on_owner,
    clocks_on_status,
    fold,
    replay_slas,
)
from leadledger.domain.timerules import Duration, SlaSpec

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)


class E(NamedTuple):
    at: Any
    seq: int
    from_status: str | None
    to_status: str
    to_stage: str = "mql"
    to_owner: str | None = None
    source: str = "manual"
    rule: str | None = None
    reason: str | None = None


def test_entries_at_distinct_times_each_set_what_they_change():
    p = fold([E(T0, 1, None, "new"), E(T0 + HOUR, 2, "new", "working", "sal", "ana", reason="r")])
    assert (p.status, p.stage, p.owner, p.version) == ("working", "sal", "ana", 2)
    assert (p.status_since, p.stage_since, p.created_at, p.updated_at) == (T0 + HOUR, T0 + HOUR, T0, T0 + HOUR)
    assert (p.status_entry_seq, p.prev_status, p.reason) == (2, "new", "r")


def test_an_instant_is_one_step_its_last_status_changing_entry_says_how_the_status_was_entered():
    routed = E(T0, 2, "new", "assigned", to_owner="ana", source="automation", rule="new:route")
    p = fold([E(T0, 1, None, "new", source="integration"), routed])
    assert (p.status, p.status_since, p.status_entry_seq, p.status_source, p.status_rule) == (
        "assigned", T0, 2, "automation", "new:route")  # fmt: skip
    assert p.prev_status is None  # nothing held before the lead's first instant
    assert p.last_automated is not None and p.last_automated.seq == 2


def test_a_status_superseded_within_its_instant_never_held():
    p = fold([E(T0, 1, None, "new"), E(T0 + HOUR, 2, "new", "working"), E(T0 + HOUR, 3, "working", "new")])
    assert (p.status, p.status_since, p.status_entry_seq, p.version, p.updated_at) == ("new", T0, 1, 3, T0 + HOUR)


def test_the_fold_refuses_entries_out_of_time_order():
    p = fold([E(T0 + HOUR, 1, None, "new")])
    with pytest.raises(ValueError, match="earlier"):
        p.add_entry(E(T0, 2, "new", "working"))


def test_a_resumed_projection_takes_later_entries_and_asks_for_a_refold_at_its_own_last_instant():
    stored = fold([E(T0, 1, None, "new"), E(T0 + HOUR, 2, "new", "working")])
    resumed = Projection.resume(**{k: getattr(stored, k) for k in _STORED}, fields={"name": "Jo"})
    assert resumed.needs_refold(T0 + HOUR) and not resumed.needs_refold(T0 + 2 * HOUR)
    with pytest.raises(ValueError, match="resumed"):
        resumed.add(T0 + HOUR, 3, "working", "new", "mql", None, "manual", None, None)
    resumed.add(T0 + 2 * HOUR, 3, "working", "qualified", "sql", None, "manual", None, None)
    again = fold([E(T0, 1, None, "new"), E(T0 + HOUR, 2, "new", "working"), E(T0 + 2 * HOUR, 3, "working",
                                                                                "qualified", "sql")])  # fmt: skip
    assert {k: getattr(resumed, k) for k in _STORED} == {k: getattr(again, k) for k in _STORED}
    assert resumed.fields == {"name": "Jo"}


def test_fields_a_change_sets_replace_and_none_removes():
    p = Projection({"name": "Jo", "budget": "10k"})
    p.set_fields({"budget": None, "need": "x"})
    assert p.fields == {"name": "Jo", "need": "x"}


_STORED = ("status", "stage", "owner", "created_at", "updated_at", "version", "status_since", "stage_since",
           "status_entry_seq", "status_source", "status_rule", "prev_status", "reason")  # fmt: skip


# --- SLA clocks ------------------------------------------------------------------------------------------

CONTACT = SlaSpec("first_contact", frozenset({"new", "assigned"}), Duration.parse("4h"),
                  met_on=frozenset({"attempting_contact"}))  # fmt: skip
FOLLOW = SlaSpec("follow_up", frozenset({"attempting_contact"}), Duration.parse("2d"), kind="activity",
                 activity_types=frozenset({"call_logged"}))  # fmt: skip
SPECS = (CONTACT, FOLLOW)


def due(spec: SlaSpec, at: datetime) -> datetime:
    return spec.target.after(None, at)  # type: ignore[arg-type]  # calendar time needs no calendar


def test_entering_a_covered_status_starts_a_clock_and_moving_on_meets_it():
    open_clocks: list[SlaClock] = []
    closed, started = clocks_on_status(SPECS, open_clocks, None, "new", T0, None, due)
    assert closed == [] and [(c.sla, c.due_at) for c in started] == [("first_contact", T0 + 4 * HOUR)]
    closed, started = clocks_on_status(SPECS, open_clocks, "new", "assigned", T0 + HOUR, "ana", due)
    assert closed == [] and started == []  # still covered: the same clock runs on
    assert clocks_on_owner(open_clocks, "ana") == open_clocks and open_clocks[0].responsible == "ana"
    closed, started = clocks_on_status(SPECS, open_clocks, "assigned", "attempting_contact", T0 + 2 * HOUR, "ana",
                                       due)  # fmt: skip
    assert [(c.sla, c.status, c.closed_at) for c in closed] == [("first_contact", "met", T0 + 2 * HOUR)]
    assert [c.sla for c in started] == ["follow_up"] and [c.sla for c in open_clocks] == ["follow_up"]


def test_a_late_close_is_a_breach_and_an_activity_restarts_an_activity_clock():
    open_clocks: list[SlaClock] = []
    clocks_on_status(SPECS, open_clocks, "assigned", "attempting_contact", T0, "ana", due)
    closed, started = clocks_on_activity(SPECS, open_clocks, "attempting_contact", "call_logged", T0 + 3 * 24 * HOUR,
                                         "ana", due)  # fmt: skip
    assert [(c.status, c.breached_at) for c in closed] == [("breached", T0 + 2 * 24 * HOUR)]
    assert [c.started_at for c in started] == [T0 + 3 * 24 * HOUR]
    assert clocks_on_activity(SPECS, open_clocks, "attempting_contact", "email_sent", T0 + 4 * 24 * HOUR, "ana",
                              due) == ([], [])  # fmt: skip


def test_replay_gives_what_the_live_steps_give():
    steps = [TimelineStep(T0, status="new"), TimelineStep(T0 + HOUR, status="assigned", owner="ana"),
             TimelineStep(T0 + 9 * HOUR, status="attempting_contact", owner="ana"),
             TimelineStep(T0 + 10 * HOUR, activity="call_logged")]  # fmt: skip
    clocks = replay_slas(SPECS, steps, lambda owner: due, T0 + 100 * HOUR)
    assert [(c.sla, c.status, c.responsible, c.started_at) for c in clocks] == [
        ("first_contact", "breached", "ana", T0),
        ("follow_up", "met", "ana", T0 + 9 * HOUR),
        ("follow_up", "breached", "ana", T0 + 10 * HOUR),  # still open at `now`, past due
    ]
