"""Segments on hand-built ledgers: each built-in segment, membership as of any time, entered/left, exports.

As of T0 = Mon Nov 23 15:00Z. Every lead is written with `write_histories` (as imports and the demo write),
so what the ledger says is exactly what each test sets up.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from test_reports_builder import Lead, at, new_world, write

from leadledger.analytics.context import naive
from leadledger.analytics.store.connection import open_store
from leadledger.bootstrap import build_app
from leadledger.cli.output import Format
from leadledger.cli.segments import write_export
from leadledger.domain.clock import FixedClock
from leadledger.domain.contacts import account_key
from leadledger.domain.segments import flag_up, members
from leadledger.marketing import segments as seg
from leadledger.marketing.conditions_sql import Params
from leadledger.marketing.membership import Builder
from leadledger.model.loader import default_model_text
from leadledger.services import models
from leadledger.services.demo import generate
from leadledger.services.errors import Invalid
from leadledger.store.tables_marketing import account_flags

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def ids(rows) -> set[str]:
    return {row["id"] for row in rows}


def in_segment(app, key: str, as_of: datetime | None = None) -> set[str]:
    return ids(seg.export_rows(app, key, as_of=as_of))


@pytest.fixture
def market(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    write(
        world,
        Lead("N1", at(23, 9)),  # New, nobody touched it
        Lead("N2", at(23, 9)).to(at(23, 10), data={"unsubscribed": True}, actor="system", source="automation"),
        Lead("A1", at(20)).to(at(20, 15), "assigned", owner="ana", actor="maria"),
        Lead("W1", at(1, month=10)).to(at(2, month=10), "working", owner="ben", stage="sal")
        .to(at(2), "stale_review", source="time_rule", reason="no_response", actor="system"),
        Lead("C1", at(2)).to(at(3), "converted", stage="opportunity", owner="ben"),
        Lead("D1", at(2)).to(at(3), "disqualified", reason="competitor", owner="ben"),
        Lead("I1", at(10)).to(at(11), "invalid", reason="bad_email", actor="system"),
        Lead("DU1", at(10)).to(at(11), "duplicate", reason="duplicate", data={"duplicate_of": "N1"}),
        Lead("NU1", at(2)).to(at(9), "nurture", reason="bad_timing", data={"re_evaluate_on": "2027-01-15"}),
        Lead("NU2", at(2)).to(at(5), "assigned", owner="ana", actor="maria")
        .to(at(9), "nurture", reason="not_ready", owner="marketing", data={"re_evaluate_on": "2026-11-20"}),
        Lead("NU3", at(2)).to(at(9), "nurture", reason="gone_cold", data={"re_evaluate_on": "2026-12-01"})
        .to(at(12), data={"email_bounced": True}, actor="system", source="automation"),
        Lead("R1", at(2)).to(at(4), "disqualified", reason="budget").to(at(18), "recycled", reason="timing_window"),
        Lead("RJ1", at(2)).to(at(3), "rejected", reason="poor_fit"),
        Lead("RJ2", at(2)).to(at(3), "rejected", reason="not_ready"),
        Lead("RJ3", at(2)).to(at(4), "rejected", reason="poor_fit"),
        Lead("NP1", at(2)).to(at(6), "nurture", reason="wrong_fit", source="import", actor="importer", off_model=True),
    )  # fmt: skip
    return world


def test_each_built_in_segment_holds_the_leads_seed_004_says(market):
    assert in_segment(market, "needs_first_response") == {"N1"}  # N2 is New but unsubscribed
    assert in_segment(market, "suppress_no_consent") == {"N2", "NU3"}
    assert in_segment(market, "suppress_sales_owned") == {"A1", "W1"}  # Stale - Review is Working's
    assert in_segment(market, "suppress_customers") == {"C1"}
    assert in_segment(market, "suppress_disqualified") == {"D1"}
    assert in_segment(market, "suppress_data_problems") == {"I1", "DU1"}
    assert in_segment(market, "suppress") == {"N2", "NU3", "A1", "W1", "C1", "D1", "I1", "DU1"}
    # not now (timing) and poor fit never mixed; the bounced nurture lead is suppressed
    assert in_segment(market, "nurture_not_now") == {"NU1", "NU2", "R1"}
    assert in_segment(market, "nurture_poor_fit") == {"NP1"}
    # re-evaluation date on or before the as-of day
    assert in_segment(market, "re_engage") == {"NU2"}
    assert in_segment(market, "review_before_inclusion") == {"RJ1", "RJ2", "RJ3"}


def test_review_before_inclusion_groups_rejected_leads_by_reason(market):
    shown = seg.show_segment(market, "review_before_inclusion")
    assert shown["members"] == 3
    assert shown["by_reason"] == [{"reason": "poor_fit", "members": 2}, {"reason": "not_ready", "members": 1}]
    assert shown["by_status"] == [{"status": "rejected", "members": 3}]


def test_list_counts_every_segment(market):
    listed = {s["key"]: s["members"] for s in seg.list_segments(market)["segments"]}
    assert listed["suppress"] == 8 and listed["nurture_not_now"] == 3 and listed["needs_first_response"] == 1


def test_membership_as_of_a_past_time_is_what_the_ledger_said_then(market):
    # Nov 6 noon: NU2 was Assigned (sales-owned), R1 Disqualified, NU3 and NP1 New, NU3's bounce (Nov 12) to come
    then = at(6, 12)
    assert in_segment(market, "suppress_sales_owned", then) == {"NU2", "W1"}
    assert in_segment(market, "nurture_not_now", then) == set()
    assert in_segment(market, "needs_first_response", then) == {"NU1", "NU3", "NP1"}
    assert "NU3" not in in_segment(market, "suppress_no_consent", then)
    # re-evaluation "has come" is judged on the as-of day: NU2's Nov 20 date had not come on Nov 19
    assert in_segment(market, "re_engage", at(19)) == set()
    assert in_segment(market, "re_engage", at(20)) == {"NU2"}
    # N1 did not exist yet
    assert "N1" not in ids(seg.export_rows(market, "needs_first_response", as_of=at(22)))


def test_who_entered_and_left_between_two_times(market):
    changes = seg.segment_changes(market, "nurture_not_now", since=at(6), until=at(20))
    assert {r["id"] for r in changes["entered"]} == {"NU1", "NU2", "R1"}  # NU3 entered Nov 9, left Nov 12
    assert changes["left"] == []
    left = seg.segment_changes(market, "needs_first_response", since=at(6), until=T0)
    assert {r["id"] for r in left["left"]} == {"NU1", "NU3"}  # NP1 left exactly at Nov 6 14:00
    assert {r["id"] for r in left["entered"]} == {"N1"}
    assert {r["status"] for r in left["left"]} == {"nurture"}  # as they are at the end


def test_an_export_carries_the_fields_as_they_were_and_is_spreadsheet_safe(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    lead = Lead("E1", at(2)).to(at(9), "nurture", reason="bad_timing", data={"re_evaluate_on": "2027-02-01"})
    lead.lead.update(name='=HYPERLINK("http://x","click")', company="Acme")
    lead.to(at(16), data={"company": "Acme Corporation", "email": "new@acme.example"})
    write(world, lead)
    before = list(seg.export_rows(world, "nurture_not_now", as_of=at(10)))
    assert before == [
        {"id": "E1", "email": "e1@example.com", "name": '=HYPERLINK("http://x","click")', "company": "Acme",
         "status": "nurture", "reason": "bad_timing", "stage": "lead", "owner": None, "segment": "nurture_not_now"}
    ]  # fmt: skip
    now = list(seg.export_rows(world, "nurture_not_now"))
    assert now[0]["company"] == "Acme Corporation" and now[0]["email"] == "new@acme.example"
    out = io.StringIO()
    write_export(now, list(seg.EXPORT_COLUMNS), Format.csv, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["name"] == '\'=HYPERLINK("http://x","click")'
    assert rows[0]["owner"] == "" and rows[0]["segment"] == "nurture_not_now"
    export = seg.Export(world, "nurture_not_now", "csv")  # what the CLI and the API stream: lines the store wrote
    assert list(csv.DictReader(io.StringIO("".join(export)))) == rows and export.rows == 1
    assert json.loads("".join(seg.Export(world, "nurture_not_now", "json", as_of=at(10)))) == before
    assert json.loads("".join(seg.Export(world, "nurture_poor_fit", "json"))) == []
    with pytest.raises(Invalid, match="unknown segment 'nope'"):
        seg.Export(world, "nope", "csv")


def test_an_unknown_segment_or_a_future_time_is_refused(market):
    with pytest.raises(Invalid, match="unknown segment 'nope'"):
        seg.show_segment(market, "nope")
    with pytest.raises(Invalid, match="future"):
        seg.show_segment(market, "suppress", as_of=T0 + timedelta(days=1))


CUSTOM = """
segments:
  - key: stale_webinar_east
    label: Webinar leads of team east quiet for a week
    when:
      all:
        - {attr: lead.campaign, op: eq, value: webinar-q1}
        - {attr: lead.team, op: eq, value: east}
        - {attr: lead.days_since_activity, op: gte, value: 7}
        - {attr: lead.days_in_status, op: gt, value: 2}
  - key: east_minus_suppressed
    label: Everything of team east
    when: {attr: lead.team, op: eq, value: east}
    exclude: [stale_webinar_east]
  - key: no_mail
    label: No mail
    kind: suppression
    when: {attr: lead.unsubscribed, op: eq, value: true}
"""


def test_custom_segments_read_team_activity_time_in_status_and_exclude_each_other(app, monkeypatch, tmp_path):
    world = new_world(app, monkeypatch, tmp_path)
    base = default_model_text()
    text = base[: base.index("\nsegments:")] + CUSTOM
    models.activate_model(world, text=text, file="custom.yaml", actor="admin")
    write(
        world,
        Lead("K1", at(2), source="webinar", campaign="webinar-q1").to(at(3), "assigned", owner="ana", actor="maria")
        .log(at(10), "email_sent"),
        Lead("K2", at(2), source="webinar", campaign="webinar-q1").to(at(3), "assigned", owner="ana", actor="maria")
        .log(at(20), "email_sent"),
        Lead("K3", at(2), source="webinar", campaign="webinar-q1").to(at(3), "assigned", owner="eva", actor="maria")
        .log(at(10), "email_sent"),
        Lead("K4", at(2)).to(at(3), "assigned", owner="ben", actor="maria")
        .to(at(4), data={"unsubscribed": True}, actor="system", source="automation"),
    )  # fmt: skip
    assert in_segment(world, "stale_webinar_east") == {"K1"}  # K2 active Nov 20, K3 is in berlin
    assert in_segment(world, "east_minus_suppressed") == {"K2"}  # K1 excluded, K4 suppressed
    assert in_segment(world, "stale_webinar_east", at(12)) == set()  # only 2 days after the email


# --- properties over random ledgers ----------------------------------------------------------------

STATUSES = ["new", "assigned", "attempting_contact", "connected", "working", "stale_review", "qualified",
            "converted", "nurture", "rejected", "disqualified", "recycled", "invalid", "duplicate"]  # fmt: skip
REASONS = [None, "bad_timing", "not_ready", "poor_fit", "wrong_fit", "competitor", "timing_window", "budget"]
STAGES = ["lead", "mql", "sal", "sql", "opportunity", "customer"]

step = st.fixed_dictionaries(
    {
        "status": st.sampled_from(STATUSES),
        "reason": st.sampled_from(REASONS),
        "stage": st.sampled_from(STAGES),
        "hours": st.integers(1, 400),
        "data": st.one_of(
            st.none(),
            st.fixed_dictionaries({"unsubscribed": st.booleans()}),
            st.fixed_dictionaries({"email_bounced": st.just(True)}),
            st.fixed_dictionaries({"re_evaluate_on": st.sampled_from(["2026-10-01", "2026-11-20", "2027-01-01"])}),
        ),
    }
)
ledger = st.lists(st.lists(step, max_size=6), min_size=1, max_size=12)
# each lead's company: one of two per example (its accounts), or none (the account of its e-mail domain, never
# flagged here); and account flags raised, cleared and dismissed at random hours after the leads were created
companies = st.lists(st.sampled_from([0, 1, None]), min_size=12, max_size=12)
later = st.one_of(st.none(), st.integers(1, 24 * 40))
flags = st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(0, 24 * 85), later, later), min_size=1, max_size=4)
example_counter = iter(range(10**6))


def reference_attributes(
    model, lead_id: str, steps: list[dict], created: datetime, t: datetime, flags: list[dict] = ()
) -> dict | None:
    """A lead's attributes at t folded in plain Python from the steps (distinct times, so no ties); `flags`: the
    rows of its account's review flags."""
    if created > t:
        return None
    state = {"status": "new", "stage": "lead", "reason": None}
    fields: dict = {"name": f"Lead {lead_id}", "email": f"{lead_id.lower()}@example.com"}
    moment = created
    for s in steps:
        moment = moment + timedelta(hours=s["hours"])
        if moment > t:
            break
        if s["status"] != state["status"]:
            state["reason"] = s["reason"]
        state["status"], state["stage"] = s["status"], s["stage"]
        fields.update(s["data"] or {})
    status = model.statuses[state["status"]]
    due = fields.get("re_evaluate_on")
    return {
        "id": lead_id,
        "status": state["status"],
        "primary_status": status.parent or status.key,
        "stage": state["stage"],
        "reason": state["reason"],
        "unsubscribed": fields.get("unsubscribed"),
        "email_bounced": fields.get("email_bounced"),
        "re_evaluation_due": bool(due and due <= t.date().isoformat()),
        "account.flagged": flag_up(flags, t),
    }


@pytest.fixture
def sqlite_world(sqlite_url, monkeypatch, tmp_path):
    application = build_app(db_url=sqlite_url, clock=FixedClock(T0))
    world = new_world(application, monkeypatch, tmp_path)
    yield world
    application.db.dispose()


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(histories=ledger, hours_back=st.sampled_from([0, 30, 24 * 12, 24 * 40]), companies=companies, flags=flags)
def test_suppression_wins_and_membership_is_the_segments_definition_over_random_ledgers(
    sqlite_world, histories, hours_back, companies, flags
):
    model = sqlite_world.loaded_model().model
    run = next(example_counter)
    created = datetime(2026, 9, 1, tzinfo=UTC)
    names = [f"Acme {run}", f"Initech {run}"]  # accounts of this example only
    flag_rows = [
        {"account": account_key(names[which], None), "raised_at": (up := created + timedelta(hours=raised)),
         "cleared_at": up + timedelta(hours=cleared) if cleared else None,
         "dismissed_at": up + timedelta(hours=dismissed) if dismissed else None, "leads": 2}
        for which, raised, cleared, dismissed in flags
    ]  # fmt: skip
    with sqlite_world.db.write() as conn:  # test data: flags at made-up times (the service raises them at its now)
        conn.execute(insert(account_flags), flag_rows)
    leads = []
    for n, steps in enumerate(histories):
        lead = Lead(f"P{run}-{n}", created)
        if companies[n] is not None:
            lead.lead["company"] = names[companies[n]]
        moment = created
        for s in steps:
            moment = moment + timedelta(hours=s["hours"])
            lead.to(moment, s["status"], stage=s["stage"], reason=s["reason"], data=s["data"], actor="maria")
        leads.append(lead)
    write(sqlite_world, *leads)
    t = T0 - timedelta(hours=hours_back)
    mine = {lead.lead["id"] for lead in leads}

    def flags_of(n: int) -> list[dict]:
        key = account_key(leads[n].lead.get("company"), leads[n].lead["email"])
        return [f for f in flag_rows if f["account"] == key]

    reference = [
        a
        for n, steps in enumerate(histories)
        if (a := reference_attributes(model, f"P{run}-{n}", steps, created, t, flags_of(n)))
    ]
    found_all = seg.memberships(sqlite_world, as_of=t)
    suppressed = found_all["suppress"] & mine
    for key, segment in model.segments.items():
        found = found_all[key] & mine
        assert found == members(model.segments, key, reference), key
        if not segment.suppression:
            assert not found & suppressed, key
    # the attribute itself, lead by lead (segments hide most leads behind suppression)
    builder = Builder(model.segments, model.fields)
    params = Params("p")
    sql = builder.attributes({"account.flagged"}, params.add(naive(t)), params, "")
    with open_store(sqlite_world) as conn:
        flagged = {i: f for i, f in conn.execute(sql, params.values).fetchall() if i in mine}
    assert flagged == {a["id"]: a["account.flagged"] for a in reference}


def test_membership_as_of_t_equals_membership_on_a_copy_truncated_at_t(sqlite_url, tmp_path, monkeypatch):
    """The demo's ledger, and a copy holding only what had happened by T: the same members at T."""
    monkeypatch.delenv("LEADLEDGER_ANALYTICS_DB", raising=False)
    full = build_app(db_url=sqlite_url, clock=FixedClock(T0))
    generate(full, leads=300, seed=3, days=90, workers=0)
    full_path = Path(full.db.engine.url.database)
    times = [T0 - timedelta(days=d, hours=h) for d, h in ((45, 3), (4, 11))]
    for index, t in enumerate(times):
        copy_path = tmp_path / f"copy{index}.db"
        _truncated_copy(full_path, copy_path, t)
        copy = build_app(db_url=f"sqlite:///{copy_path}", clock=FixedClock(T0))
        expected = seg.memberships(full, as_of=t)
        assert seg.memberships(copy, as_of=t) == expected, t
        assert sum(len(v) for v in expected.values()) > 100  # the segments are not all empty
        assert list(seg.export_rows(copy, "nurture_not_now", as_of=t)) == list(
            seg.export_rows(full, "nurture_not_now", as_of=t)
        )
        copy.db.dispose()
    full.db.dispose()


def _truncated_copy(source: Path, target: Path, t: datetime) -> None:
    """A copy of the database with only the ledger entries and activities dated up to t (and their leads)."""
    stamp = t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    with sqlite3.connect(source) as src:
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(source, target)
    with sqlite3.connect(target) as conn:
        conn.execute("DROP TRIGGER IF EXISTS ledger_no_delete")
        triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for name in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM activities WHERE at > ?", (stamp,))
        conn.execute("DELETE FROM ledger WHERE at > ?", (stamp,))
        for table in ("sla_clocks", "tasks", "approvals"):
            conn.execute(f"DELETE FROM {table} WHERE lead_id NOT IN (SELECT lead_id FROM ledger)")
        conn.execute("DELETE FROM leads WHERE id NOT IN (SELECT lead_id FROM ledger)")
        # account flags as they stood at t (raised by then; cleared or dismissed later: still up)
        conn.execute("DELETE FROM account_flags WHERE raised_at > ?", (stamp,))
        conn.execute("UPDATE account_flags SET cleared_at = NULL WHERE cleared_at > ?", (stamp,))
        conn.execute("UPDATE account_flags SET dismissed_at = NULL, dismissed_by = NULL WHERE dismissed_at > ?", (stamp,))
