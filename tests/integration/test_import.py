"""Importing CRM exports on SQLite and PostgreSQL: every quirk of real files, exact rejects, idempotent re-runs,
Salesforce files in either order giving the same timeline, HubSpot stage history, late history corrected by
appended entries, and the projection always equal to the lead's last instant.

Every file is built here, with the quirks written in on purpose (BOM, CRLF, quoted commas and newlines,
rows out of order); nothing is read from outside the repository.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadledger.bootstrap import build_app
from leadledger.importers import ImportFailed, ImportSummary, import_file, staging
from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.errors import Forbidden
from leadledger.store.tables import leads, ledger

# --- building files and reading the result ----------------------------------------------------------


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], *, bom: bool = True,
              newline: str = "\r\n") -> Path:  # fmt: skip
    """A CSV as CRMs and Excel write them: a byte-order mark and CRLF unless told otherwise; csv quotes
    every cell holding a comma, a quote or a newline."""
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator=newline)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(app: App, kind: str, path: Path, **options: Any) -> ImportSummary:
    options.setdefault("rejects_path", path.with_name(path.stem + ".rejects.csv"))
    options.setdefault("actor", "admin")
    return import_file(app, kind=kind, path=path, **options)


def rejects(summary: ImportSummary) -> list[tuple[int, str, str]]:
    """(row, field, reason) of every rejected row, from the reject file itself."""
    if summary.rejects_file is None:
        return []
    with open(summary.rejects_file, encoding="utf-8-sig", newline="") as found:
        return [(int(r["reject_row"]), r["reject_field"], r["reject_reason"]) for r in csv.DictReader(found)]


def entries(app: App, lead_id: str) -> list[Any]:
    """A lead's ledger in timeline order: (at, seq)."""
    with app.db.read() as conn:
        query = select(ledger).where(ledger.c.lead_id == lead_id).order_by(ledger.c.at, ledger.c.seq)
        return list(conn.execute(query))


def instants(app: App, lead_id: str) -> list[tuple[datetime, str, str, str | None]]:
    """The timeline as analytics reads it: entries at the same time are one instant; the highest seq holds it."""
    by_time: dict[datetime, Any] = {}
    for entry in entries(app, lead_id):
        by_time[entry.at] = entry
    return [(at, e.to_status, e.to_stage, e.to_owner) for at, e in by_time.items()]


def projection(app: App, lead_id: str) -> Any:
    with app.db.read() as conn:
        return conn.execute(select(leads).where(leads.c.id == lead_id)).one()


def assert_projection_is_the_last_instant(app: App, lead_id: str) -> None:
    timeline = entries(app, lead_id)
    lead = projection(app, lead_id)
    last = max(timeline, key=lambda e: (e.at, e.seq))
    assert (lead.status, lead.stage, lead.owner) == (last.to_status, last.to_stage, last.to_owner)
    assert lead.updated_at == last.at
    assert lead.version == max(e.seq for e in timeline)
    assert lead.created_at == timeline[0].at


def count(app: App, table: Any) -> int:
    with app.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def sqlite_app(sqlite_url: str, clock: Any) -> Iterator[App]:
    """For behaviour that does not depend on the database: SQLite only, so the suite stays quick."""
    application = build_app(db_url=sqlite_url, clock=clock)
    yield application
    application.db.dispose()


# --- a generic leads file with every quirk ------------------------------------------------------------

LEADS_MAPPING = """\
columns:
  id: Lead ID
  name: [First, Last]
  email: E-mail
  company: Company
  created_at: Created
  status: Status
  owner: Owner
  industry: Industry
statuses:
  Open - Not Contacted: new
  Working: attempting_contact
  Won: {status: converted}
users:
  Ana Lee: ana
time_formats: ["%d/%m/%Y %H:%M"]
timezone: Europe/Berlin
"""
LEADS_HEADER = ["Lead ID", "First", "Last", "E-mail", "Company", "Created", "Status", "Owner", "Industry"]


def messy_leads(folder: Path) -> Path:
    rows = [
        ["L1", "Jo", "Doe", "jo@x.io", "Acme, Inc", "2025-03-04T15:22:10.000+0000", "Open - Not Contacted",
         "Ana Lee", "Retail\nand wholesale"],  # row 2: quoted comma and newline, a mapped owner
        ["L2", "Al", "", "", "Bo Ltd", "2025-03-05 08:00", "Won", "Sam Rivers", ""],  # 3: anonymised: no email
        ["L3", "Cy", "Ng", "cy@x.io", "", "2025-03-05T08:00:00Z", "Closed - Lost", "", ""],  # 4: unmapped status
        ["L4", "Di", "Ox", "di@x.io", "", "yesterday", "Working", "", ""],  # 5: unreadable time
        ["L5", "Ed", "Po", "ed@x.io", "", "04/03/2025 10:00", "working", "", ""],  # 6: local time, label in lower case
        ["", "Fa", "Qu", "fa@x.io", "", "2025-03-05T08:00:00Z", "Working", "", ""],  # 7: no lead id
        ["L7", "Gi", "Ru", "gi@x.io", "", "2031-01-01T00:00:00Z", "Working", "", ""],  # 8: in the future
        ["L8", "Ha", "Su", "ha@x.io"],  # 9: a cut-off line
    ]  # fmt: skip
    return write_csv(folder / "leads.csv", LEADS_HEADER, rows)


def test_a_messy_leads_file_keeps_its_good_rows_and_rejects_each_bad_one_with_row_and_reason(team_app, tmp_path):
    source = messy_leads(tmp_path)
    summary = run(team_app, "leads", source, mapping=LEADS_MAPPING)

    assert (summary.read, summary.imported, summary.rejected, summary.skipped) == (8, 3, 5, 0)
    assert rejects(summary) == [
        (4, "status", "status 'Closed - Lost' is not mapped to a status (add it under statuses: in the mapping file)"),
        (5, "created_at", "cannot read 'yesterday' as a time (expected ISO 8601 (2025-03-04T15:22:10Z) or %d/%m/%Y %H:%M)"),
        (7, "id", "the row names no lead (column Lead ID is empty)"),
        (8, "created_at", "'2031-01-01T00:00:00Z' is in the future"),
        (9, "row", "4 values where the header has 9 (a stray quote or a cut-off line?)"),
    ]  # fmt: skip
    jo = projection(team_app, "L1")
    assert (jo.name, jo.company, jo.fields["industry"]) == ("Jo Doe", "Acme, Inc", "Retail\nand wholesale")
    assert (jo.status, jo.owner, jo.team, jo.incomplete) == ("new", "ana", "east", False)
    anonymous = projection(team_app, "L2")
    assert anonymous.incomplete and (anonymous.status, anonymous.stage) == ("converted", "opportunity")
    assert projection(team_app, "L5").created_at == utc("2025-03-04T09:00:00")  # 10:00 in Berlin
    assert summary.unknown_owners == {"Sam Rivers": 1}
    assert summary.incomplete == 1
    first = entries(team_app, "L1")[0]
    assert (first.kind, first.source, first.actor, first.actor_role) == ("created", "import", "admin", "ops")


def test_running_the_same_import_again_adds_nothing(app, tmp_path):
    people.add_user(app, name="ana", role="rep")
    source = messy_leads(tmp_path)
    first = run(app, "leads", source, mapping=LEADS_MAPPING)
    before = (count(app, leads), count(app, ledger))
    again = run(app, "leads", source, mapping=LEADS_MAPPING)
    assert (count(app, leads), count(app, ledger)) == before == (3, 3)
    assert (again.imported, again.skipped, again.rejected, again.entries) == (0, first.imported, 5, 0)


# --- generic history ----------------------------------------------------------------------------------

HISTORY_MAPPING = """\
columns:
  lead: Lead
  at: When
  status: Status
  owner: Owner
  reason: Why
statuses:
  Working: attempting_contact
  Won: converted
  Lost: disqualified
  New: new
reasons:
  No budget: budget
"""


def test_history_rows_out_of_order_are_recorded_in_time_order_even_where_the_model_forbids_the_move(
    sqlite_app, tmp_path
):
    run(sqlite_app, "leads", write_csv(tmp_path / "l.csv", ["id", "email", "created"],
                                       [["L1", "a@x.io", "2025-01-01T00:00:00Z"]]),
        mapping="columns: {id: id, email: email, created_at: created}")  # fmt: skip
    history = write_csv(tmp_path / "h.csv", ["Lead", "When", "Status", "Owner", "Why"], [
        ["L1", "2025-01-10T00:00:00Z", "Won", "", ""],  # attempting -> converted: no such transition
        ["L2", "2025-02-03T00:00:00Z", "Lost", "", "No budget"],
        ["L1", "2025-01-05T00:00:00Z", "Working", "ben", ""],
        ["L1", "2025-01-12T00:00:00Z", "New", "", ""],  # out of Converted, which is locked
        ["L2", "2025-02-01T00:00:00Z", "Working", "", "Gut feeling"],  # an unknown lead: known from its first row
        ["L1", "2025-01-05T00:00:00Z", "Working", "ben", ""],  # the same row twice in an export
    ], bom=False, newline="\n")  # fmt: skip
    summary = run(sqlite_app, "history", history, mapping=HISTORY_MAPPING)

    assert (summary.read, summary.imported, summary.skipped, summary.rejected) == (6, 5, 1, 0)
    assert summary.off_model == 2 and summary.leads_created == 1 and summary.leads_updated == 1
    one = entries(sqlite_app, "L1")
    assert [(e.to_status, e.to_owner, e.off_model) for e in one] == [
        ("new", None, False), ("attempting_contact", "ben", False), ("converted", "ben", True), ("new", "ben", True),
    ]  # fmt: skip
    two = entries(sqlite_app, "L2")
    assert [(e.kind, e.at, e.to_status, e.reason, e.note) for e in two] == [
        ("created", utc("2025-02-01"), "new", None, None),
        ("change", utc("2025-02-01"), "attempting_contact", None, "reason in the file: Gut feeling"),
        ("change", utc("2025-02-03"), "disqualified", "budget", None),
    ]
    assert projection(sqlite_app, "L2").incomplete  # known from history only: no contact method
    for lead_id in ("L1", "L2"):
        assert_projection_is_the_last_instant(sqlite_app, lead_id)


def test_a_change_dated_before_the_lead_was_created_is_kept_at_its_creation_and_flagged(sqlite_app, tmp_path):
    """Real data: Olist has a deal won before its lead's first contact. The fact is kept, in order, and flagged."""
    run(sqlite_app, "leads", write_csv(tmp_path / "l.csv", ["id", "created"], [["L1", "2025-02-01"]]),
        mapping="columns: {id: id, created_at: created}")  # fmt: skip
    history = write_csv(tmp_path / "won.csv", ["id", "won"], [["L1", "2025-01-30 10:00:00"]])
    summary = run(sqlite_app, "history", history, mapping="columns: {lead: id, at: won}\ndefaults: {status: converted}")
    won = entries(sqlite_app, "L1")[-1]
    assert (won.at, won.to_status, won.to_stage, won.off_model) == (utc("2025-02-01"), "converted", "opportunity", True)
    assert won.note.startswith("dated 2025-01-30T10:00:00+00:00 in the file, before the lead was created")
    assert summary.off_model == 1 and projection(sqlite_app, "L1").status == "converted"


def test_with_create_leads_off_a_history_row_of_an_unknown_lead_is_rejected(sqlite_app, tmp_path):
    history = write_csv(tmp_path / "h.csv", ["Lead", "When", "Status"], [["NOPE", "2025-01-05T00:00:00Z", "Working"]])
    mapping = "columns: {lead: Lead, at: When, status: Status}\nstatuses: {Working: attempting_contact}\ncreate_leads: false\n"
    summary = run(sqlite_app, "history", history, mapping=mapping)
    assert rejects(summary) == [(2, "lead", "no lead 'NOPE' in LeadLedger (create_leads is off)")]
    assert count(sqlite_app, leads) == 0


def test_strict_makes_any_reject_fatal_and_writes_nothing(sqlite_app, tmp_path):
    source = messy_leads(tmp_path)
    with pytest.raises(ImportFailed, match="5 of 8 rows cannot be recorded") as failed:
        run(sqlite_app, "leads", source, mapping=LEADS_MAPPING, strict=True)
    assert count(sqlite_app, leads) == 0 and count(sqlite_app, ledger) == 0
    assert failed.value.summary is not None and len(rejects(failed.value.summary)) == 5


def test_a_dry_run_counts_what_an_import_would_do_and_writes_nothing(sqlite_app, tmp_path):
    source = messy_leads(tmp_path)
    dry = run(sqlite_app, "leads", source, mapping=LEADS_MAPPING, dry_run=True)
    assert count(sqlite_app, leads) == 0 and dry.run is None
    real = run(sqlite_app, "leads", source, mapping=LEADS_MAPPING)
    assert (dry.imported, dry.rejected, dry.leads_created, dry.entries) == (real.imported, real.rejected, 3, 3)


def test_only_ops_may_import(team_app, tmp_path):
    with pytest.raises(Forbidden, match="only ops"):
        run(team_app, "leads", messy_leads(tmp_path), mapping=LEADS_MAPPING, actor="ana")


def test_a_file_larger_than_a_partition_is_grouped_on_disk_with_the_same_result(sqlite_app, tmp_path, monkeypatch):
    rows = [[f"L{n % 40}", f"2025-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z", ("Working", "Lost")[n % 2], f"rep{n % 3}", ""]
            for n in range(400)]  # fmt: skip
    history = write_csv(tmp_path / "h.csv", ["Lead", "When", "Status", "Owner", "Why"], rows)
    monkeypatch.setattr(staging, "PARTITION_BYTES", 2_000)  # about ten partitions, on disk
    on_disk = run(sqlite_app, "history", history, mapping=HISTORY_MAPPING)
    assert on_disk.leads_created == 40 and on_disk.rejected == 0
    disk_timelines = {f"L{n}": instants(sqlite_app, f"L{n}") for n in range(40)}

    monkeypatch.setattr(staging, "PARTITION_BYTES", 48 * 2**20)
    other = build_app(db_url=f"sqlite:///{tmp_path / 'other.db'}", clock=sqlite_app.clock)
    from leadledger.services import models

    models.initialise(other)
    in_memory = run(other, "history", history, mapping=HISTORY_MAPPING)
    assert (in_memory.imported, in_memory.skipped, in_memory.entries) == (
        on_disk.imported,
        on_disk.skipped,
        on_disk.entries,
    )
    assert {lead: instants(other, lead) for lead in disk_timelines} == disk_timelines
    other.db.dispose()


# --- Salesforce -----------------------------------------------------------------------------------------

SF_MAPPING = """\
preset: salesforce
statuses:
  Nurturing - Q3: {status: nurture, reason: bad_timing}
users:
  Ana Lee: ana
  005A00000000001AAA: ana
"""
SF_LEAD_HEADER = ["ID", "ISDELETED", "FIRSTNAME", "LASTNAME", "EMAIL", "COMPANY", "STATUS", "OWNERID", "CREATEDDATE",
                  "DESCRIPTION"]  # fmt: skip
SF_HISTORY_HEADER = ["Id", "IsDeleted", "LeadId", "CreatedById", "CreatedDate", "Field", "DataType", "OldValue",
                     "NewValue"]  # fmt: skip
ANA, QUEUE = "005A00000000001AAA", "00G000000000001AAA"


def salesforce_files(folder: Path, prefix: str) -> tuple[Path, Path]:
    """Data Loader exports: upper-case headers in Lead.csv, history rows shuffled, owner changes written twice
    (ids, then names), a field the ledger does not track, a deleted row, an org label and an unmapped one."""
    p = prefix
    lead_rows = [
        [f"{p}1", "false", "Jo", "Doe", "jo@x.io", "Acme, Inc", "Working - Contacted", ANA,
         "2025-03-01T10:00:00.000+0000", "met at the fair,\nfollow up"],
        [f"{p}2", "false", "Al", "Bo", "", "Bo Ltd", "Closed - Converted", ANA, "2025-03-02T10:00:00.000+0000", ""],
        [f"{p}3", "false", "Cy", "Ng", "cy@x.io", "", "Open - Not Contacted", QUEUE, "2025-03-03T10:00:00.000+0000", ""],
        [f"{p}4", "false", "Di", "Ox", "di@x.io", "", "Nurturing - Q3", ANA, "2025-03-04T10:00:00.000+0000", ""],
        [f"{p}5", "true", "Ed", "Po", "ed@x.io", "", "Open - Not Contacted", ANA, "2025-03-04T10:00:00.000+0000", ""],
    ]  # fmt: skip
    history_rows = [
        [f"{p}h03", "false", f"{p}1", ANA, "2025-03-03T09:00:00.000+0000", "Status", "Picklist", "Open - Not Contacted", "Working - Contacted"],
        [f"{p}h01", "false", f"{p}1", ANA, "2025-03-01T10:00:00.000+0000", "created", "Text", "", ""],
        [f"{p}h02a", "false", f"{p}1", ANA, "2025-03-01T10:00:00.000+0000", "Owner", "EntityId", QUEUE, ANA],
        [f"{p}h02b", "false", f"{p}1", ANA, "2025-03-01T10:00:00.000+0000", "Owner", "Text", "Intake Queue", "Ana Lee"],
        [f"{p}h09", "false", f"{p}2", ANA, "2025-03-09T10:00:00.000+0000", "Status", "Picklist", "Working - Contacted", "Closed - Converted"],
        [f"{p}h05", "false", f"{p}2", ANA, "2025-03-02T10:00:00.000+0000", "created", "Text", "", ""],
        [f"{p}h06", "false", f"{p}2", ANA, "2025-03-05T10:00:00.000+0000", "Status", "Picklist", "Open - Not Contacted", "Working - Contacted"],
        [f"{p}h10", "false", f"{p}2", ANA, "2025-03-09T10:00:00.000+0000", "leadConverted", "Text", "", ""],
        [f"{p}h07", "false", f"{p}2", ANA, "2025-03-06T10:00:00.000+0000", "Rating", "Text", "Cold", "Hot"],
        [f"{p}h11", "false", f"{p}3", ANA, "2025-03-03T10:00:00.000+0000", "created", "Text", "", ""],
        [f"{p}h12", "false", f"{p}4", ANA, "2025-03-04T10:00:00.000+0000", "created", "Text", "", ""],
        [f"{p}h13", "false", f"{p}4", ANA, "2025-03-07T10:00:00.000+0000", "Status", "Picklist", "Open - Not Contacted", "Nurturing - Q3"],
        [f"{p}h14", "true", f"{p}4", ANA, "2025-03-08T10:00:00.000+0000", "Status", "Picklist", "Nurturing - Q3", "Open - Not Contacted"],
        [f"{p}h15", "false", f"{p}4", ANA, "2025-03-08T10:00:00.000+0000", "Status", "Picklist", "Nurturing - Q3", "Recycled - Q4"],
    ]  # fmt: skip
    return (
        write_csv(folder / f"{p}Lead.csv", SF_LEAD_HEADER, lead_rows),
        write_csv(folder / f"{p}LeadHistory.csv", SF_HISTORY_HEADER, history_rows, bom=False),
    )


def test_salesforce_history_sets_the_status_and_owner_at_creation_from_the_first_change(team_app, tmp_path):
    lead_file, history_file = salesforce_files(tmp_path, "A")
    leads_summary = run(team_app, "leads", lead_file, mapping=SF_MAPPING)
    assert (leads_summary.read, leads_summary.imported, leads_summary.ignored) == (5, 4, 1)  # A5 is deleted
    history = run(team_app, "history", history_file, mapping=SF_MAPPING)

    assert (history.read, history.imported, history.skipped, history.ignored, history.rejected) == (14, 5, 5, 3, 1)
    assert history.ignored_reasons == {
        "Salesforce field Rating is not status history": 1,
        "deleted in Salesforce (IsDeleted)": 1,
        "owner given by id: the row with the owner's name is recorded": 1,
    }
    assert rejects(history) == [
        (15, "status", "NewValue 'Recycled - Q4' is not mapped to a status (add it under statuses: in the mapping file)")
    ]  # fmt: skip
    assert instants(team_app, "A1") == [
        (utc("2025-03-01T10:00"), "new", "lead", "ana"),  # created by the queue, assigned to Ana the same second
        (utc("2025-03-03T09:00"), "attempting_contact", "lead", "ana"),
    ]
    one = entries(team_app, "A1")
    assert [(e.kind, e.to_status, e.to_owner) for e in one] == [
        ("created", "attempting_contact", "ana"),  # what Lead.csv said: its current status
        ("correction", "new", "Intake Queue"),  # appended once the history showed the status at creation
        ("change", "new", "ana"),
        ("change", "attempting_contact", "ana"),
    ]
    assert instants(team_app, "A2")[-1] == (utc("2025-03-09T10:00"), "converted", "opportunity", "ana")
    assert instants(team_app, "A3") == [
        (utc("2025-03-03T10:00"), "new", "lead", QUEUE)
    ]  # never changed: as Lead.csv says
    nurture = entries(team_app, "A4")[-1]
    assert (nurture.to_status, nurture.reason) == ("nurture", "bad_timing")
    assert projection(team_app, "A1").team == "east"
    for lead_id in ("A1", "A2", "A3", "A4"):
        assert_projection_is_the_last_instant(team_app, lead_id)


def test_salesforce_files_in_either_order_give_the_same_timeline(app, tmp_path):
    people.add_user(app, name="ana", role="rep")
    a_leads, a_history = salesforce_files(tmp_path, "A")
    b_leads, b_history = salesforce_files(tmp_path, "B")
    run(app, "leads", a_leads, mapping=SF_MAPPING)
    run(app, "history", a_history, mapping=SF_MAPPING)
    run(app, "history", b_history, mapping=SF_MAPPING)
    run(app, "leads", b_leads, mapping=SF_MAPPING)

    for n in range(1, 5):
        a, b = projection(app, f"A{n}"), projection(app, f"B{n}")
        assert instants(app, f"A{n}") == instants(app, f"B{n}")
        same = ("status", "stage", "owner", "team", "status_since", "stage_since", "created_at", "updated_at",
                "name", "email", "company", "incomplete", "reason", "prev_status")  # fmt: skip
        assert {k: getattr(a, k) for k in same} == {k: getattr(b, k) for k in same}, n
    history_first = entries(app, "B1")
    assert [e.kind for e in history_first] == ["created", "change", "correction", "change"]
    assert history_first[2].data == {"name": "Jo Doe", "email": "jo@x.io", "company": "Acme, Inc"}  # from Lead.csv
    assert history_first[2].note == "contact fields filled from the lead file"
    restated = entries(app, "B2")  # Lead.csv names an owner the history never changed: it held from the start
    assert [(e.kind, e.to_owner) for e in restated] == [
        ("created", None), ("correction", "ana"), ("change", None), ("correction", "ana"), ("change", None),
        ("correction", "ana"),
    ]  # fmt: skip
    # and again, in any order: nothing more
    before = count(app, ledger)
    for path, kind in ((b_leads, "leads"), (a_history, "history"), (b_history, "history"), (a_leads, "leads")):
        assert run(app, kind, path, mapping=SF_MAPPING).entries == 0
    assert count(app, ledger) == before


def test_history_that_arrives_late_corrects_the_start_by_an_appended_entry(sqlite_app, tmp_path):
    lead_file = write_csv(tmp_path / "Lead.csv", ["Id", "Status", "CreatedDate", "Email"],
                          [["Q1", "Closed - Converted", "2025-01-01T00:00:00.000+0000", "q@x.io"]])  # fmt: skip
    later = write_csv(tmp_path / "late.csv", SF_HISTORY_HEADER, [
        ["h2", "false", "Q1", "u", "2025-01-20T00:00:00.000+0000", "Status", "Picklist", "Working - Contacted", "Closed - Converted"],
    ])  # fmt: skip
    earlier = write_csv(tmp_path / "early.csv", SF_HISTORY_HEADER, [
        ["h1", "false", "Q1", "u", "2025-01-05T00:00:00.000+0000", "Status", "Picklist", "Open - Not Contacted", "Working - Contacted"],
    ])  # fmt: skip
    run(sqlite_app, "leads", lead_file, preset="salesforce")
    assert run(sqlite_app, "history", later, preset="salesforce").corrections == 1
    assert run(sqlite_app, "history", earlier, preset="salesforce").corrections == 1
    assert instants(sqlite_app, "Q1") == [
        (utc("2025-01-01"), "new", "lead", None),
        (utc("2025-01-05"), "attempting_contact", "lead", None),
        (utc("2025-01-20"), "converted", "opportunity", None),
    ]
    assert [e.kind for e in entries(sqlite_app, "Q1")] == ["created", "correction", "correction", "change", "change"]
    assert_projection_is_the_last_instant(sqlite_app, "Q1")


def test_a_history_row_already_recorded_on_another_lead_is_rejected_not_moved(sqlite_app, tmp_path):
    first = write_csv(tmp_path / "one.csv", SF_HISTORY_HEADER,
                      [["h1", "false", "Q1", "u", "2025-01-01T00:00:00.000+0000", "created", "Text", "", ""]])  # fmt: skip
    run(sqlite_app, "history", first, preset="salesforce")
    merged = write_csv(tmp_path / "two.csv", SF_HISTORY_HEADER, [
        ["h1", "false", "Q2", "u", "2025-01-01T00:00:00.000+0000", "created", "Text", "", ""],
        ["h2", "false", "Q3", "u", "2025-01-02T00:00:00.000+0000", "created", "Text", "", ""],
    ])  # fmt: skip
    summary = run(sqlite_app, "history", merged, preset="salesforce")
    assert rejects(summary) == [(2, "key", "already recorded on lead Q1 (sf:h1)")]
    assert summary.leads_created == 1 and count(sqlite_app, leads) == 2


# --- HubSpot ---------------------------------------------------------------------------------------------


def test_hubspot_contacts_bring_their_lifecycle_history_from_the_date_entered_columns(sqlite_app, tmp_path):
    header = ["Record ID", "First Name", "Last Name", "Email", "Contact owner", "Lead Status", "Lifecycle Stage",
              "Create Date", 'Date entered "Lead (Lifecycle Stage Pipeline)"',
              'Date entered "Marketing Qualified Lead (Lifecycle Stage Pipeline)"',
              'Date entered "Sales Qualified Lead (Lifecycle Stage Pipeline)"',
              'Date entered "Opportunity (Lifecycle Stage Pipeline)"', 'Date entered "Customer (Lifecycle Stage Pipeline)"',
              'Date entered "Partner (Lifecycle Stage Pipeline)"']  # fmt: skip
    rows = [
        ["101", "Jo", "Doe", "jo@x.io", "Ana Lee", "Open deal", "Opportunity", "2025-01-01 09:00",
         "2025-01-01 09:00", "2025-01-10 09:00", "2025-01-20 09:00", "2025-02-01 09:00", "", ""],
        ["102", "Al", "Bo", "al@x.io", "", "", "Customer", "2025-01-02 09:00",
         "2025-01-02 09:00", "", "", "2025-03-01 09:00", "2025-03-15 09:00", ""],
        ["103", "Cy", "Ng", "", "", "Attempted to contact", "Lead", "2025-01-03 09:00", "2025-01-03 09:00", "", "",
         "", "", "2025-01-04 09:00"],
    ]  # fmt: skip
    contacts = write_csv(tmp_path / "contacts.csv", header, rows)
    summary = run(sqlite_app, "leads", contacts, preset="hubspot")

    assert (summary.read, summary.imported, summary.rejected, summary.leads_created) == (3, 3, 0, 3)
    assert instants(sqlite_app, "101") == [
        (utc("2025-01-01T09:00"), "new", "lead", "Ana Lee"),
        (utc("2025-01-10T09:00"), "new", "mql", "Ana Lee"),
        (utc("2025-01-20T09:00"), "new", "sql", "Ana Lee"),
        (utc("2025-02-01T09:00"), "converted", "opportunity", "Ana Lee"),  # Open deal begins with the opportunity
    ]
    assert instants(sqlite_app, "102") == [  # no Lead Status: each stage sets what the model says it sets
        (utc("2025-01-02T09:00"), "new", "lead", None),
        (utc("2025-03-01T09:00"), "converted", "opportunity", None),
        (utc("2025-03-15T09:00"), "converted", "customer", None),
    ]
    assert instants(sqlite_app, "103") == [(utc("2025-01-03T09:00"), "attempting_contact", "lead", None)]
    assert summary.notes == [
        "column 'Date entered \"Partner (Lifecycle Stage Pipeline)\"': stage 'Partner' is not mapped (add it under stages:)"
    ]
    # the export has no status history: New in SQL, and New -> Converted, are moves the model does not make
    assert [(e.to_stage, e.off_model) for e in entries(sqlite_app, "101")] == [
        ("lead", False), ("mql", False), ("sql", True), ("opportunity", True),
    ]  # fmt: skip
    assert summary.off_model == 3 and summary.unknown_owners == {"Ana Lee": 1}
    assert run(sqlite_app, "leads", contacts, preset="hubspot").entries == 0


def test_an_owner_change_imported_late_is_carried_by_every_later_instant(sqlite_app, tmp_path):
    run(sqlite_app, "leads", write_csv(tmp_path / "l.csv", ["id", "created"], [["L1", "2025-01-01T00:00:00Z"]]),
        mapping="columns: {id: id, created_at: created}")  # fmt: skip
    header = ["Lead", "When", "Status", "Owner", "Why"]
    run(sqlite_app, "history", write_csv(tmp_path / "one.csv", header, [["L1", "2025-01-03T00:00:00Z", "Working", "", ""]]),
        mapping=HISTORY_MAPPING)  # fmt: skip
    late = write_csv(tmp_path / "two.csv", header, [
        ["L1", "2025-01-02T00:00:00Z", "", "ben", ""], ["L1", "2025-01-05T00:00:00Z", "Lost", "", ""],
    ])  # fmt: skip
    summary = run(sqlite_app, "history", late, mapping=HISTORY_MAPPING)
    assert instants(sqlite_app, "L1") == [
        (utc("2025-01-01"), "new", "lead", None),
        (utc("2025-01-02"), "new", "lead", "ben"),
        (utc("2025-01-03"), "attempting_contact", "lead", "ben"),  # restated: the entry said no owner
        (utc("2025-01-05"), "disqualified", "lead", "ben"),
    ]
    assert summary.corrections == 1 and summary.entries == 3
    assert_projection_is_the_last_instant(sqlite_app, "L1")
