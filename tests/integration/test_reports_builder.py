"""Hand-built ledgers for the report tests, and the stint rules every report rests on.

`Lead` writes a lead's history entry by entry (the full state after each change, as the ledger holds it);
`write` stores leads with `write_histories`, as imports and the demo do. Times are UTC; in November 2026
New York is UTC-5, so 14:00Z is 09:00 there, the start of the default calendar's working day. Wednesday
2026-11-11 (Veterans Day) is a US holiday; 2026-11-14/15 is a weekend.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadledger import analytics
from leadledger.analytics.calendar_days import US_PER_DAY, build_day_table, day_number, instant_us
from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.history import LeadHistory, write_histories
from leadledger.services.leads import ActivityIn, ChangeSpec, change_lead, log_activity

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # the clock of the `app` fixture: Monday 10:00 in New York
KEEP: Any = object()
ROLES = {"system": "ops", "maria": "manager", "ana": "rep", "ben": "rep", "eva": "rep", "importer": "ops"}


def at(day: int, hour: int = 14, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


class Lead:
    """One lead's history: `Lead("L1", at(9)).to(at(9, 15), "assigned", owner="ana")...`."""

    def __init__(
        self,
        lead_id: str,
        created: datetime,
        *,
        status: str = "new",
        stage: str = "lead",
        owner: str | None = None,
        source: str = "web_form",
        campaign: str = "pricing-page",
        entry_source: str = "integration",
    ):
        self.lead = {"id": lead_id, "name": f"Lead {lead_id}", "email": f"{lead_id.lower()}@example.com",
                     "source": source, "campaign": campaign}  # fmt: skip
        self.status, self.stage, self.owner = status, stage, owner
        self.entries: list[dict[str, Any]] = [
            {
                "at": created,
                "kind": "created",
                "actor": "system",
                "actor_role": "ops",
                "source": entry_source,
                "from_status": None,
                "to_status": status,
                "from_stage": None,
                "to_stage": stage,
                "from_owner": None,
                "to_owner": owner,
            }
        ]
        self.activities: list[dict[str, Any]] = []

    def to(
        self,
        when: datetime,
        status: str | None = None,
        *,
        owner: Any = KEEP,
        stage: str | None = None,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
        source: str = "manual",
        actor: str = "ana",
        kind: str = "change",
        off_model: bool = False,
        rule: str | None = None,
        override_rule: str | None = None,
    ) -> Lead:
        entry = {
            "at": when, "kind": kind, "actor": actor, "actor_role": ROLES.get(actor, "rep"), "source": source,
            "from_status": self.status, "to_status": status or self.status, "from_stage": self.stage,
            "to_stage": stage or self.stage, "from_owner": self.owner,
            "to_owner": self.owner if owner is KEEP else owner, "reason": reason, "data": data, "rule": rule,
            "override_rule": override_rule, "override_of_seq": len(self.entries) if override_rule else None,
            "off_model": off_model,
        }  # fmt: skip
        self.entries.append(entry)
        self.status, self.stage, self.owner = entry["to_status"], entry["to_stage"], entry["to_owner"]
        return self

    def log(self, when: datetime, kind: str, actor: str = "ana", **data: Any) -> Lead:
        self.activities.append({"type": kind, "at": when, "actor": actor, "source": "manual", "data": data or None})
        return self

    def history(self) -> LeadHistory:
        return LeadHistory(lead=self.lead, entries=self.entries, activities=self.activities)


def write(app: App, *leads: Lead) -> None:
    with app.db.write() as conn:
        write_histories(
            conn,
            [lead.history() for lead in leads],
            recorded_at=T0,
            owner_teams={"ana": "east", "ben": "east", "eva": "berlin"},
            model=app.model,
        )


def add_people(app: App) -> None:
    """maria manages team east (New York calendar) with reps ana and ben; eva works in berlin (emea calendar)."""
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_team(app, name="berlin", calendar="emea", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    people.add_user(app, name="ben", role="rep", team="east")
    people.add_user(app, name="eva", role="rep", team="berlin")


def private_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str = "analytics.duckdb") -> Path:
    """A DuckDB file of the test's own (PostgreSQL's default would live in the home cache)."""
    path = tmp_path / name
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(path))
    return path


def new_world(app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> App:
    """The app with its own analytics store and the people of `add_people`."""
    private_store(monkeypatch, tmp_path)
    add_people(app)
    return app


@pytest.fixture
def world(app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> App:
    return new_world(app, monkeypatch, tmp_path)


def by_status(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["status"]: row for row in report["statuses"]}


# --- the stint rules --------------------------------------------------------------------------------


def test_owner_and_stage_changes_do_not_end_a_stint_and_open_stints_end_at_the_as_of_time(world):
    write(
        world,
        Lead("S1", at(16))
        .to(at(16, 15), "assigned", owner="ana", actor="maria")
        .to(at(17), "attempting_contact")
        .to(at(18), owner="ben", actor="maria")  # owner only
        .to(at(19), stage="mql"),  # stage only
    )
    report = by_status(analytics.report(world, "durations"))
    # attempting: Tue 17 14:00Z until the as-of time Mon 23 15:00Z = 6 d 1 h = 145 h, one open stint
    assert report["attempting_contact"]["stints"] == 1
    assert report["attempting_contact"]["open"] == 1
    assert report["attempting_contact"]["median_hours"] == 145
    # business hours on ana's team calendar (New York 9-17): Tue-Fri 4 x 8 h + Monday 09:00-10:00 = 33 h
    assert report["attempting_contact"]["business_median_hours"] == 33
    assert report["new"]["median_hours"] == 1 and report["assigned"]["median_hours"] == 23


def test_an_entry_superseded_at_the_same_instant_forms_no_stint(world):
    # seq 1 records New at creation; seq 2, appended later by an import at the same instant, says Working
    lead = Lead("S2", at(12), entry_source="import")
    lead.to(at(12), "working", kind="correction", source="import", actor="importer", off_model=True, stage="sal")
    lead.to(at(18), "qualified", stage="sql")
    write(world, lead)
    report = by_status(analytics.report(world, "durations"))
    assert "new" not in report  # never a stint: superseded at its instant
    assert report["working"]["stints"] == 1 and report["working"]["median_hours"] == 6 * 24
    assert report["qualified"]["median_hours"] == 5 * 24 + 1  # Wed 18 14:00Z to Mon 23 15:00Z
    distribution = analytics.report(world, "distribution", as_of=at(12, 14))
    assert distribution["counts"]["working"] == 1 and distribution["counts"]["new"] == 0


def test_history_appended_late_takes_its_place_in_the_timeline(world):
    # created Nov 2, connected Nov 16; then an import appends the attempt of Nov 9 (higher id, earlier time)
    lead = Lead("S3", at(2)).to(at(16), "connected")
    lead.to(at(9), "attempting_contact", source="import", actor="importer")
    write(world, lead)
    report = by_status(analytics.report(world, "durations"))
    assert report["new"]["median_hours"] == 7 * 24  # Nov 2 -> Nov 9
    assert report["attempting_contact"]["median_hours"] == 7 * 24  # Nov 9 -> Nov 16
    assert report["connected"]["median_hours"] == 7 * 24 + 1  # Nov 16 14:00 -> Nov 23 15:00
    assert analytics.report(world, "distribution", as_of=at(10))["counts"]["attempting_contact"] == 1


# --- the business-time day table agrees with the calendar ------------------------------------------


def test_the_day_table_gives_the_calendars_business_time_to_the_microsecond(app):
    """Random instants over two years, both model calendars (New York and Berlin: DST, holidays, lunch)."""
    model = app.model
    calendars = [model.calendars[name] for name in model.calendars]
    first = day_number(at(1, 0, month=1)) - 10
    table = build_day_table(calendars, first, first + 730)
    rows = {(row[0], row[1]): row for row in table.rows}
    rng = random.Random(7)
    span = timedelta(days=729)
    for _ in range(3000):
        moment = table.origin + span * rng.random()
        index = rng.randrange(len(calendars))
        t = instant_us(moment)
        row = rows[(index, t // US_PER_DAY)]
        from_table = row[2] + sum(min(max(t - row[3 + 2 * i], 0), row[4 + 2 * i]) for i in range(table.slots))
        expected = calendars[index].business_time_between(table.origin, moment) // timedelta(microseconds=1)
        assert from_table == expected, (calendars[index].name, moment)


# --- keeping the store in step ----------------------------------------------------------------------


def test_incremental_sync_gives_what_a_fresh_copy_gives(world, monkeypatch, tmp_path):
    first = Lead("I1", at(2)).to(at(2, 15), "assigned", owner="ana", actor="maria").to(at(3), "attempting_contact")
    write(world, first, Lead("I2", at(4)).to(at(4, 15), "assigned", owner="ben", actor="maria"))
    analytics.report(world, "funnel")  # the store now holds the ledger up to here
    # more history: a new lead, a change to I2, and history an import appends to I1 (earlier than its last entry)
    with world.db.write() as conn:
        write_histories(
            conn,
            [Lead("I3", at(5)).to(at(5, 15), "assigned", owner="ana", actor="maria").history()],
            recorded_at=T0,
            owner_teams={"ana": "east"},
            model=world.model,
        )
    change_lead(world, actor="ben", spec=ChangeSpec("I2", status="attempting_contact", log=ActivityIn("call_logged")))
    stats = analytics.sync(world)
    assert (stats.ledger_rows, stats.full_rebuild, stats.derived_leads) == (3, False, 2)
    names = list(analytics.REPORT_NAMES)
    incremental = analytics.run_reports(world, names, skip_unavailable=True)
    private_store(monkeypatch, tmp_path, "fresh.duckdb")
    fresh = analytics.run_reports(world, names, skip_unavailable=True)
    for name in names:
        assert incremental[name] == fresh[name], name
    assert incremental["funnel"]["steps"][0]["reached"] == 2  # I1 and I2 attempted; I3 not yet


def _stint_acts(app: App) -> list[tuple[Any, ...]]:
    from leadledger.analytics.store.connection import open_store

    analytics.sync(app)
    with open_store(app) as conn:
        return conn.execute("SELECT lead_id, status, entered_at, left_at, acts FROM stints ORDER BY ALL").fetchall()


def test_a_closed_stint_counts_its_activities_and_a_late_one_is_counted_by_the_next_sync(world, monkeypatch, tmp_path):
    lead = (
        Lead("A1", at(2)).to(at(2, 15), "assigned", owner="ana", actor="maria")
        .to(at(3), "attempting_contact").log(at(3, 16), "call_logged").log(at(4), "email_sent")
        .to(at(5), "connected").log(at(5, 15), "call_logged")
    )
    write(world, lead)
    acts = {row[1]: row[4] for row in _stint_acts(world)}
    assert acts == {"new": 0, "assigned": 0, "attempting_contact": 2, "connected": None}  # open: not counted yet
    # an e-mail sent during Attempting Contact, logged only now: no ledger entry, yet the stint's count moves
    log_activity(world, lead_id="A1", actor="ana", activity=ActivityIn("email_sent", at=at(4, 17)))
    incremental = _stint_acts(world)
    assert {row[1]: row[4] for row in incremental}["attempting_contact"] == 3
    private_store(monkeypatch, tmp_path, "fresh.duckdb")
    assert _stint_acts(world) == incremental


def test_postgresql_watermark_waits_for_transactions_in_flight():
    """Ids come from a sequence before commit: rows above the final watermark are read again until every
    transaction that was running when they were read has ended."""
    import duckdb

    from leadledger.analytics.store.connection import ensure_schema, read_meta
    from leadledger.analytics.store.source import Snapshot
    from leadledger.analytics.store.sync import _advance_pending

    conn = duckdb.connect()
    ensure_schema(conn)
    meta = read_meta(conn)
    _advance_pending(conn, meta, Snapshot(xmin=100, in_progress=(100, 104)), "ledger", 50)
    assert (read_meta(conn).get("ledger_final"), read_meta(conn)["ledger_pending"]) == (None, "50")
    _advance_pending(conn, meta, Snapshot(xmin=103, in_progress=(103, 110)), "ledger", 60)
    assert read_meta(conn).get("ledger_final") is None  # 104 may still commit an id below 50
    _advance_pending(conn, meta, Snapshot(xmin=105, in_progress=(107,)), "ledger", 70)
    assert read_meta(conn)["ledger_final"] == "50"  # every transaction running at the first read has ended
    assert read_meta(conn)["ledger_pending"] == "70"
    _advance_pending(conn, meta, None, "ledger", 80)  # SQLite: writers are serialised, the newest id is final
    assert read_meta(conn)["ledger_final"] == "80"


def test_a_full_rebuild_runs_with_the_rebuild_memory_limit_and_the_reports_with_their_own(world, monkeypatch):
    from leadledger.analytics.store import connection, derive

    monkeypatch.setenv("LEADLEDGER_ANALYTICS_MEMORY", "300MB")
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_REBUILD_MEMORY", "1500MB")
    seen: list[str] = []
    real = derive._derive

    def watched(conn, facts, affected):
        seen.append(conn.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        real(conn, facts, affected)

    monkeypatch.setattr(derive, "_derive", watched)
    write(world, Lead("M1", at(2)).to(at(2, 15), "assigned", owner="ana", actor="maria"))
    assert analytics.sync(world).full_rebuild  # the first sync derives every lead
    change_lead(world, actor="ana", spec=ChangeSpec("M1", status="attempting_contact", log=ActivityIn("call_logged")))
    assert not analytics.sync(world).full_rebuild  # one lead: in place
    with connection.open_store(world) as conn:
        after = conn.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    # DuckDB answers rounded in MiB or GiB ('1.3 GiB'): read back in MB, near what was set
    assert [connection._megabytes(s) for s in seen] == [pytest.approx(1500, rel=0.1), pytest.approx(300, rel=0.1)]
    assert connection._megabytes(after) == pytest.approx(300, rel=0.1)


def test_the_rebuild_limit_is_a_quarter_of_the_memory_and_never_below_the_reports_limit(monkeypatch):
    from leadledger.analytics.store import connection

    monkeypatch.delenv("LEADLEDGER_ANALYTICS_REBUILD_MEMORY", raising=False)
    pages = {"SC_PAGE_SIZE": 4000, "SC_PHYS_PAGES": 1_000_000}  # a 4 GB machine
    monkeypatch.setattr(connection.os, "sysconf", lambda name: pages[name])
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_MEMORY", "640MB")
    assert connection.rebuild_memory_limit() == "1000MB"
    pages["SC_PHYS_PAGES"] = 16_000_000  # a 64 GB machine: no more than the ceiling
    assert connection.rebuild_memory_limit() == f"{connection.REBUILD_MEMORY_MB}MB"
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_MEMORY", "6GB")  # the reports asked for more than that: it wins
    assert connection.rebuild_memory_limit() == "6GB"
    pages["SC_PHYS_PAGES"] = 250_000  # a 1 GB machine: a quarter is below the reports' limit
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_MEMORY", "640MB")
    assert connection.rebuild_memory_limit() == "640MB"
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_REBUILD_MEMORY", "2GB")
    assert connection.rebuild_memory_limit() == "2GB"
