"""The hash chain: every writer keeps it, and `leadledger verify` catches each kind of tampering behind its back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import select
from typer.testing import CliRunner

from leadledger.cli.main import State
from leadledger.cli.main import app as cli
from leadledger.importers import import_file
from leadledger.ops.backup import backup, restore
from leadledger.ops.verify import verify
from leadledger.services import demo, events, people
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.store.tables import leads, ledger


@pytest.fixture
def worked(app: App) -> App:
    """Leads written by the service (WriteBatch), with automation, events and several changes each."""
    people.add_user(app, name="maria", role="manager")
    people.add_team(app, name="east", calendar="default", manager="maria")
    people.add_user(app, name="ana", role="rep", team="east")
    for n in range(4):
        lead = svc.create_lead(app, actor="ana", fields={"name": f"L{n}", "email": f"l{n}@example.com",
                                                         "note_field": {"nested": [1, 2.5, None], "ü": "ß"}},
                               owner="ana")  # fmt: skip
        svc.change_lead(app, actor="ana", spec=ChangeSpec(lead.lead_id, status="attempting_contact",
                                                          log=ActivityIn("call_logged", data={"outcome": "no_answer"}),
                                                          note="left a voicemail\u001e with a separator"))  # fmt: skip
        events.apply_events(app, [{"id": f"e{n}", "type": "email_replied", "lead": lead.lead_id,
                                   "at": app.clock.now().isoformat(), "data": {"classification": "positive"}}],
                            actor="admin")  # fmt: skip
    return app


def _raw(app: App) -> Iterator[object]:
    """A connection outside the service, with the append-only guard dropped: what someone with file access has."""
    conn = app.db.engine.raw_connection()
    cursor = conn.cursor()
    if app.db.is_sqlite:
        cursor.execute("DROP TRIGGER ledger_no_update")
        cursor.execute("DROP TRIGGER ledger_no_delete")
    else:
        cursor.execute("ALTER TABLE ledger DISABLE TRIGGER USER")
    return conn, cursor  # type: ignore[return-value]


def _tamper(app: App, *statements: str) -> None:
    conn, cursor = _raw(app)  # type: ignore[misc]
    try:
        for statement in statements:
            cursor.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _entries(app: App, lead_id: str | None = None) -> list[dict]:
    query = select(ledger).order_by(ledger.c.lead_id, ledger.c.seq)
    if lead_id:
        query = query.where(ledger.c.lead_id == lead_id)
    with app.db.read() as conn:
        return [row._asdict() for row in conn.execute(query)]


def _middle(app: App) -> dict:
    rows = _entries(app)
    by_lead: dict[str, list[dict]] = {}
    for row in rows:
        by_lead.setdefault(row["lead_id"], []).append(row)
    mine = max(by_lead.values(), key=len)  # lead ids are random: not the first lead, the one with most entries
    assert len(mine) >= 3
    return mine[1]


def test_every_service_write_is_chained_and_verifies(worked: App):
    result = verify(worked)
    assert result.ok, result.as_dict()
    assert result.leads == 4 and result.entries == len(_entries(worked)) >= 12
    with worked.db.read() as conn:
        heads = dict(conn.execute(select(leads.c.id, leads.c.chain_head)).all())
    for lead_id, head in heads.items():
        assert head == _entries(worked, lead_id)[-1]["hash"] and len(head) == 32
        shown = svc.timeline(worked, lead_id)  # what `lead show` prints (JSON too): the hashes as hex text
        assert shown["lead"]["chain_head"] == shown["entries"][-1]["hash"] == head.hex()


@pytest.mark.parametrize("attack", ["edit a note", "edit json", "change the actor", "delete a middle entry",
                                    "swap two entries", "re-number an entry", "insert a forged entry",
                                    "delete the last entry", "replace a row"])  # fmt: skip
def test_tampering_behind_the_service_is_detected_and_named(worked: App, attack: str):
    victim = _middle(worked)
    vid, lead, seq = victim["id"], victim["lead_id"], victim["seq"]
    q = "'"
    last = _entries(worked, lead)[-1]
    partner = _next_id(worked, lead, seq)  # the entry after it, before the tampering
    statements = {
        "edit a note": [f"UPDATE ledger SET note = 'nothing happened' WHERE id = {vid}"],
        "edit json": [f"UPDATE ledger SET data = {q}{json.dumps({'outcome': 'connected'})}{q} WHERE id = {vid}"],
        "change the actor": [f"UPDATE ledger SET actor = 'maria' WHERE id = {vid}"],
        "delete a middle entry": [f"DELETE FROM ledger WHERE id = {vid}"],
        "swap two entries": [f"UPDATE ledger SET seq = -1 WHERE id = {vid}",
                             f"UPDATE ledger SET seq = {seq} WHERE lead_id = '{lead}' AND seq = {seq + 1}",
                             f"UPDATE ledger SET seq = {seq + 1} WHERE id = {vid}"],
        "re-number an entry": [f"UPDATE ledger SET seq = 99 WHERE id = {vid}"],
        "insert a forged entry": [
            "INSERT INTO ledger (lead_id, seq, at, recorded_at, kind, actor, actor_role, source, to_status, to_stage, "
            f"off_model) SELECT lead_id, 50, at, recorded_at, kind, actor, actor_role, source, to_status, to_stage, "
            f"off_model FROM ledger WHERE id = {last['id']}"],
        "delete the last entry": [f"DELETE FROM ledger WHERE id = {last['id']}"],
        # what a review did on SQLite: INSERT OR REPLACE rewrites a row in place (PostgreSQL: its upsert)
        "replace a row": [
            f"INSERT OR REPLACE INTO ledger SELECT id, lead_id, seq, at, recorded_at, kind, 'admin', actor_role, "
            f"source, from_status, to_status, from_stage, to_stage, from_owner, to_owner, reason, note, data, rule, "
            f"override_of_seq, override_rule, idempotency_key, off_model, hash FROM ledger WHERE id = {vid}"
            if worked.db.is_sqlite else
            f"UPDATE ledger SET actor = 'admin', to_owner = 'admin' WHERE id = {vid}"],
    }[attack]  # fmt: skip
    _tamper(worked, *statements)
    result = verify(worked)
    assert not result.ok
    first = result.first
    assert first is not None and first.lead_id == lead
    if attack == "delete the last entry":  # the chain that is left is intact: the lead's head says what is gone
        assert first.entry_id is None and "head" in first.what, first
    elif attack == "insert a forged entry":
        assert first.entry_id == max(r["id"] for r in _entries(worked)) and "missing" in first.what, first
    else:
        assert first.entry_id in (vid, partner, _next_id(worked, lead, seq)), first  # it, or the one after it
    # verify's answer does not depend on the tampering being recent: --since 0 checks the same leads
    assert not verify(worked, since="0").ok


def _next_id(app: App, lead: str, seq: int) -> int | None:
    rows = [r for r in _entries(app, lead) if r["seq"] > seq]
    return rows[0]["id"] if rows else None


def test_the_command_line_exits_1_naming_the_entry(worked: App, monkeypatch):
    monkeypatch.setenv("LEADLEDGER_DB", worked.db.url)
    monkeypatch.setattr(State, "_app", None)  # the command line builds its App once per process: not this test's
    ok = CliRunner().invoke(cli, ["verify", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True
    victim = _middle(worked)
    _tamper(worked, f"UPDATE ledger SET reason = 'budget' WHERE id = {victim['id']}")
    bad = CliRunner().invoke(cli, ["verify"])
    assert bad.exit_code == 1
    assert f"entry {victim['id']} (lead {victim['lead_id']}, seq {victim['seq']})" in bad.output.replace("\n", " ")


def test_verify_since_checks_the_leads_written_since(worked: App):
    top = max(r["id"] for r in _entries(worked))
    newer = svc.create_lead(worked, actor="ana", fields={"name": "New", "email": "new@example.com"})
    result = verify(worked, since=str(top))
    assert result.ok and result.leads == 1 and result.entries == len(_entries(worked, newer.lead_id))


def test_the_sweep_keeps_the_chain(worked: App):
    """Time rules move leads from the worker's sweep: the same write path, so the same chain."""
    from datetime import timedelta

    from leadledger.services.sweep import sweep

    lead = svc.create_lead(worked, actor="ana", fields={"name": "Quiet", "email": "quiet@example.com"}, owner="ana")
    for spec in (ChangeSpec(lead.lead_id, status="connected", log=ActivityIn("call_logged", data={"outcome": "connected"})),
                 ChangeSpec(lead.lead_id, stage="sal"), ChangeSpec(lead.lead_id, status="working")):  # fmt: skip
        svc.change_lead(worked, actor="ana", spec=spec)
    before = len(_entries(worked, lead.lead_id))
    worked.clock.at = worked.clock.now() + timedelta(days=31)  # type: ignore[attr-defined]
    assert sweep(worked).moved >= 1
    assert len(_entries(worked, lead.lead_id)) > before
    result = verify(worked)
    assert result.ok, result.as_dict()


def test_the_importer_keeps_the_chain(worked: App, tmp_path: Path):
    existing = _entries(worked)[0]["lead_id"]
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns: {lead: lead, at: at, status: status, actor: actor}\n")
    history = tmp_path / "history.csv"
    history.write_text(f"lead,at,status,actor\n{existing},2026-11-23T14:59:00Z,working,ana\n"
                       "NEW-1,2026-11-20T10:00:00Z,new,ana\nNEW-1,2026-11-21T10:00:00Z,attempting_contact,ana\n")  # fmt: skip
    summary = import_file(worked, kind="history", path=history, mapping_path=mapping, actor="admin",
                          rejects_path=tmp_path / "rejects.csv").as_dict()  # fmt: skip
    assert summary["imported"] >= 2 and summary["rejected"] == 0, summary
    result = verify(worked)
    assert result.ok, result.as_dict()
    assert len(_entries(worked, "NEW-1")) >= 2


def test_the_demo_keeps_the_chain(app: App):
    demo.generate(app, leads=40, seed=8, workers=1)
    result = verify(app)
    assert result.ok and result.leads == 40, result.as_dict()


def test_a_restored_backup_verifies(worked: App, tmp_path: Path):
    from leadledger.bootstrap import build_app

    backup(worked, tmp_path / "b.bak")
    target = build_app(db_url=f"sqlite:///{tmp_path / 'restored.db'}", clock=worked.clock)
    restore(target, tmp_path / "b.bak")
    assert verify(target).ok and verify(target).digest == verify(worked).digest
    target.db.dispose()


def test_the_upgrade_chains_the_entries_written_before_the_chain_existed(worked: App):
    """A database from before the chain (its migration's downgrade drops the columns) is chained by the upgrade
    exactly as the writers chain: every hash and head comes back as it was, and verify passes."""
    from alembic import command
    from alembic.config import Config

    from leadledger.store.db import migrate, script_location

    before = {r["id"]: r["hash"] for r in _entries(worked)}
    with worked.db.read() as conn:
        heads = dict(conn.execute(select(leads.c.id, leads.c.chain_head)).all())
    config = Config()
    config.set_main_option("script_location", script_location())
    config.set_main_option("sqlalchemy.url", worked.db.url.replace("%", "%%"))
    from alembic.script import ScriptDirectory

    # back to the revision before the chain's migration (its number, and the migrations after it, move as
    # other branches land theirs: "-1" stopped being the chain when account keys and due-at followed it)
    script = ScriptDirectory.from_config(config)
    before_chain = next(str(r.down_revision) for r in script.walk_revisions() if r.path.endswith("_chain.py"))
    with worked.db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, before_chain)
        columns = {c["name"] for c in sqlalchemy.inspect(conn).get_columns("ledger")}
    assert "hash" not in columns
    worked.db.dispose()
    migrate(worked.db)
    assert {r["id"]: r["hash"] for r in _entries(worked)} == before
    with worked.db.read() as conn:
        assert dict(conn.execute(select(leads.c.id, leads.c.chain_head)).all()) == heads
    assert verify(worked).ok
    # and the guard is back: the upgrade lifted it only for its own pass
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), worked.db.write() as conn:
        conn.exec_driver_sql("UPDATE ledger SET note = 'x'")


def test_a_recorded_digest_catches_a_rewrite_that_recomputed_the_chain(worked: App):
    """Someone who can write the database can edit an entry and recompute its lead's chain and head: the chain
    alone then verifies. The digest recorded earlier (outside the database) at a ledger id does not."""
    from leadledger.store import chain

    recorded = verify(worked)
    assert recorded.ok and recorded.digest_at == max(r["id"] for r in _entries(worked))
    lead = svc.create_lead(worked, actor="ana", fields={"name": "Later", "email": "later@example.com"}, owner="ana")
    later = verify(worked)
    assert later.digest != recorded.digest  # the heads moved on...
    assert verify(worked, at=recorded.digest_at).digest == recorded.digest  # ...but the digest then is the same
    assert verify(worked, at=recorded.digest_at, expect=recorded.digest).ok

    victim = _middle(worked)
    rows = _entries(worked, victim["lead_id"])
    statements = [f"UPDATE ledger SET note = 'rewritten' WHERE id = {victim['id']}"]
    head = None
    for row in rows:
        if row["id"] == victim["id"]:
            row["note"] = "rewritten"
        head = chain.link(head, row)
        statements.append(f"UPDATE ledger SET hash = X'{head.hex()}' WHERE id = {row['id']}" if worked.db.is_sqlite
                          else f"UPDATE ledger SET hash = '\\x{head.hex()}'::bytea WHERE id = {row['id']}")  # fmt: skip
    assert head is not None
    statements.append(f"UPDATE leads SET chain_head = X'{head.hex()}' WHERE id = '{victim['lead_id']}'"
                      if worked.db.is_sqlite else
                      f"UPDATE leads SET chain_head = '\\x{head.hex()}'::bytea WHERE id = '{victim['lead_id']}'")  # fmt: skip
    _tamper(worked, *statements)
    assert verify(worked).ok  # a consistent forgery: the chain alone cannot tell
    caught = verify(worked, at=recorded.digest_at, expect=recorded.digest)
    assert not caught.ok and "rewritten" in caught.first.what  # type: ignore[union-attr]
    assert lead.lead_id  # written after the digest was recorded: it does not change the digest at that id

    runner = CliRunner()
    bad = runner.invoke(cli, ["verify", "--at", str(recorded.digest_at), "--expect", recorded.digest],
                        env={"LEADLEDGER_DB": worked.db.url})  # fmt: skip
    assert bad.exit_code == 1 and "not the one recorded" in " ".join(bad.output.split())
