"""`leads.account_key` is written by every writer from the one definition (`domain.contacts.lead_keys`): the
unit of work (create, a field change, a merge), the importer, the demo and migration lead_account_keys' backfill. Accounts
are grouped on it, so a writer that forgot it would drop its leads from every account."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, text, update

from leadledger.bootstrap import build_app
from leadledger.domain.contacts import account_key, lead_keys
from leadledger.importers import import_file
from leadledger.services import accounts, demo, models
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.changes import ChangeSpec
from leadledger.services.merge import merge_leads
from leadledger.store.db import migrate, script_location
from leadledger.store.tables import leads


def _migration(name: str) -> tuple[str, str]:
    """(revision, down_revision) of migration `NNNN_<name>.py`: numbers move as other branches land theirs."""
    from alembic.script import ScriptDirectory

    for revision in ScriptDirectory(script_location()).walk_revisions():
        if revision.path.endswith(f"_{name}.py"):
            return revision.revision, str(revision.down_revision)
    raise LookupError(name)


def stored(app: App) -> dict[str, tuple[str | None, str | None, str | None]]:
    with app.db.read() as conn:
        rows = conn.execute(select(leads.c.id, leads.c.company, leads.c.email, leads.c.account_key)).all()
    return {r.id: (r.company, r.email, r.account_key) for r in rows}


def assert_every_key_is_derived(app: App) -> None:
    for lead_id, (company, email, key) in stored(app).items():
        assert key == account_key(company, email), lead_id


def test_the_unit_of_work_writes_the_key_on_create_change_and_merge(team_app: App) -> None:
    keep = svc.create_lead(team_app, actor="maria", fields={"name": "Jo", "email": "jo@gmail.com"}).lead_id
    other = svc.create_lead(team_app, actor="maria",
                            fields={"name": "Jo", "phone": "+12025550143", "company": "Initech LLC"}).lead_id  # fmt: skip
    moved = svc.create_lead(team_app, actor="maria", fields={"name": "Al", "email": "al@acme.example"}).lead_id
    assert stored(team_app)[keep][2] is None and stored(team_app)[moved][2] == "acme.example"
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(moved, fields={"company": "Globex, Inc."}))
    assert stored(team_app)[moved][2] == "globex"
    merge_leads(team_app, survivor=keep, duplicate=other, actor="maria")  # the survivor takes the company
    assert stored(team_app)[keep][2] == "initech"
    assert_every_key_is_derived(team_app)
    assert [a["key"] for a in accounts.list_accounts(team_app, actor="maria")] == ["globex", "initech"]


def test_every_key_follows_the_contact_data_it_comes_from_and_only_that(team_app: App) -> None:
    """A change keeps the stored keys unless the e-mail, phone or company they come from changed (the unit of
    work then skips normalising them again): each key still equals what `lead_keys` makes of the row."""
    lead = svc.create_lead(team_app, actor="maria", fields={"name": "Bo", "email": "Bo@Acme.example"}).lead_id

    def keys() -> tuple[str | None, ...]:
        with team_app.db.read() as conn:
            row = conn.execute(select(leads).where(leads.c.id == lead)).one()
        assert lead_keys(row.email, row.phone, row.company) == {
            "email_key": row.email_key, "phone_key": row.phone_key, "account_key": row.account_key}  # fmt: skip
        return row.email_key, row.phone_key, row.account_key

    assert keys() == ("bo@acme.example", None, "acme.example")
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead, fields={"territory": "EMEA"}))
    assert keys() == ("bo@acme.example", None, "acme.example")
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead, fields={"phone": "+1 (202) 555-0143"}))
    assert keys()[1] is not None and keys()[0] == "bo@acme.example"
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead, fields={"email": "bo@initech.example"}))
    assert keys()[0] == "bo@initech.example" and keys()[2] == "initech.example"
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead, fields={"company": "Globex, Inc."}))
    assert keys()[2] == "globex"
    svc.change_lead(team_app, actor="maria", spec=ChangeSpec(lead, fields={"phone": None}))
    assert keys()[1] is None


def test_the_importer_writes_the_key(team_app: App, tmp_path: Path) -> None:
    source = tmp_path / "leads.csv"
    source.write_text("Lead ID,Name,E-mail,Company\nL1,Jo Doe,jo@x.io,\"Acme, Inc\"\nL2,Al Po,al@initech.example,\n"
                      "L3,Cy Ng,cy@gmail.com,\n")  # fmt: skip
    mapping = "columns:\n  id: Lead ID\n  name: Name\n  email: E-mail\n  company: Company\n"
    summary = import_file(team_app, kind="leads", path=source, mapping=mapping, actor="admin",
                          rejects_path=tmp_path / "rejects.csv")  # fmt: skip
    assert summary.imported == 3
    assert {k: v[2] for k, v in stored(team_app).items()} == {"L1": "acme", "L2": "initech.example", "L3": None}


def test_the_demo_writes_the_key(sqlite_url: str) -> None:
    app = build_app(db_url=sqlite_url)
    models.initialise(app)
    demo.generate(app, leads=120, seed=3, workers=0)
    found = stored(app)
    assert len(found) == 120 and all(key for _, _, key in found.values())
    assert_every_key_is_derived(app)
    app.db.dispose()


def test_the_lead_account_keys_migration_backfills_the_key(tmp_path: Path) -> None:
    app = build_app(db_url=f"sqlite:///{tmp_path / 'old.db'}")
    models.initialise(app)
    for n, (company, email) in enumerate([("Acme, Inc.", "a@x.io"), (None, "b@initech.example"), (None, "c@gmail.com")]):
        fields = {"name": f"L{n}", "email": email} | ({"company": company} if company else {})
        svc.create_lead(app, actor="admin", fields=fields)
    revision, before = _migration("lead_account_keys")
    with app.db.write() as conn:  # as a database before lead_account_keys holds them: no key
        conn.execute(update(leads).values(account_key=None))
        conn.execute(text("DROP INDEX ix_leads_account_key_status"))
        conn.execute(text("ALTER TABLE leads DROP COLUMN account_key"))
        conn.execute(text("UPDATE alembic_version SET version_num = :before"), {"before": before})
    migrate(app.db, revision)  # this migration alone: later ones find their own columns already there
    assert sorted(k for _, _, k in stored(app).values() if k) == ["acme", "initech.example"]
    assert_every_key_is_derived(app)
    app.db.dispose()
