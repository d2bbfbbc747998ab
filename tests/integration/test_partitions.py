"""PostgreSQL time partitions: the upgrade of an unpartitioned database, the worker's partitions ahead, the guards."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy.exc
from sqlalchemy import Connection, create_engine, func, select, text

from leadledger import analytics
from leadledger.bootstrap import build_app
from leadledger.domain.clock import FixedClock
from leadledger.ops.verify import verify
from leadledger.services import demo, models, worker
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.store import due, partitions
from leadledger.store.db import migrate, script_location
from leadledger.store.tables import activities, leads, ledger, metadata

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_pg(pg_server: str, request: pytest.FixtureRequest) -> str:
    name = f"ll_part_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()

    def drop() -> None:
        engine = create_engine(pg_server, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    request.addfinalizer(drop)
    return f"{pg_server.rpartition('/')[0]}/{name}"


def _revision_before(name: str) -> str:
    """The revision a migration (`NNNN_<name>.py`) upgrades from: its number moves as others land theirs."""
    from alembic.script import ScriptDirectory

    for revision in ScriptDirectory(script_location()).walk_revisions():
        if revision.path.endswith(f"_{name}.py"):
            return str(revision.down_revision)
    raise LookupError(name)


def _lend_later_schema(conn: Connection) -> Callable[[Connection], None]:
    """Add the tables and (nullable) columns this version's tables declare and the database lacks; returns
    what removes them again. Lets this version's writers and reports run on a database of an older revision."""
    found = sqlalchemy.inspect(conn)
    present = set(found.get_table_names())
    tables = [t for t in metadata.sorted_tables if t.name not in present]
    columns = [
        (table.name, column)
        for table in metadata.sorted_tables
        if table.name in present
        for have in [{c["name"] for c in found.get_columns(table.name)}]
        for column in table.columns
        if column.name not in have
    ]
    metadata.create_all(conn, tables=tables)
    for table_name, column in columns:
        conn.exec_driver_sql(
            f'ALTER TABLE "{table_name}" ADD COLUMN "{column.name}" {column.type.compile(dialect=conn.dialect)}'
        )

    def give_back(conn: Connection) -> None:
        for table_name, column in columns:
            conn.exec_driver_sql(f'ALTER TABLE "{table_name}" DROP COLUMN "{column.name}"')
        metadata.drop_all(conn, tables=tables)

    return give_back


def _where(app: App, table: str) -> dict[str, int]:
    with app.db.read() as conn:
        rows = conn.exec_driver_sql(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1").all()
    return {name: int(n) for name, n in rows}


def _refused(app: App, sql: str) -> None:
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"), app.db.write() as conn:
        conn.exec_driver_sql(sql)


def test_upgrading_an_unpartitioned_database_keeps_every_row_and_every_report(empty_pg, tmp_path, monkeypatch):
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    app = build_app(db_url=empty_pg, clock=clock)
    migrate(app.db, _revision_before("partitions"))  # a database from before partitioning
    with app.db.write() as conn:
        conn.exec_driver_sql("INSERT INTO users (name, role, active, created_at) VALUES ('admin', 'ops', true, now()), "
                             "('system', 'ops', true, now())")  # fmt: skip
    from leadledger.model.loader import default_model_text
    from leadledger.services.models import activate_model

    # this version's model activation, demo and reports use tables and columns of later revisions (the hash
    # chain, segment hooks, account flags and keys, the due-at): lend them until the upgrade, which then finds a
    # database from before them (it creates them, chains the entries, derives the keys, computes the due-at)
    with app.db.write() as conn:
        give_back = _lend_later_schema(conn)
    activate_model(app, text=default_model_text(), file="default_model.yaml", actor="admin")
    demo.generate(app, leads=80, seed=2, workers=1)
    with app.db.write() as conn:  # an old row with a key, written months before the upgrade
        conn.exec_driver_sql("INSERT INTO activities (key, actor, lead_id, type, at, recorded_at, source) "
                             "SELECT 'old-key', 'admin', id, 'call_logged', now() - interval '400 days', "
                             "now() - interval '400 days', 'manual' FROM leads LIMIT 1")  # fmt: skip
    assert not partitions.is_partitioned(app.db.engine.connect(), "ledger")
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "before.duckdb"))
    before = analytics.run_reports(app, list(analytics.REPORT_NAMES), skip_unavailable=True)
    with app.db.read() as conn:
        counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (ledger, activities)}

    with app.db.write() as conn:  # what was lent goes: the database is as one from before those revisions
        give_back(conn)
    models.initialise(app)  # `leadledger init` after installing the new version: upgrades to head
    app.db.dispose()

    with app.db.read() as conn:
        assert partitions.is_partitioned(conn, "ledger") and partitions.is_partitioned(conn, "activities")
        names = [p.name for p in partitions.partitions(conn, "ledger")]
        after = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (ledger, activities)}
    month = partitions.next_month(partitions.month_start(clock.now()))
    assert names[0] == f"ledger_upto_{month:%Y%m}" and names[-1] == "ledger_pdefault"
    assert len(names) == 1 + partitions.MONTHS_AHEAD + 1  # upto (this month included), the months ahead, default
    assert after == counts
    assert set(_where(app, "ledger")) == {f"ledger_upto_{month:%Y%m}"}  # attached as it was: no row moved
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "after.duckdb"))
    assert analytics.run_reports(app, list(analytics.REPORT_NAMES), skip_unavailable=True) == before
    assert verify(app).ok  # the upgrade chained the entries it found, partitioned or not
    with app.db.read() as conn:  # the due-at migration filled every lead (leads is not partitioned) as writers do
        stored_due = dict(conn.execute(select(leads.c.id, leads.c.due_at)).all())
        assert len(stored_due) == 80
        assert stored_due == due.compute(conn, app.loaded_model().model, list(stored_due), None)

    # writes after the upgrade land in their month's partition, through the unchanged code
    clock.at = month + timedelta(days=2)
    created = svc.create_lead(app, actor="admin", fields={"name": "After", "email": "after@example.com"})
    assert _where(app, "ledger")[f"ledger_p{month:%Y%m}"] >= 1  # created (and routed)
    # an idempotency key is unique per caller across partitions: the old one cannot be recorded again in a new
    # month by the same caller; another caller's identical key is another request
    with pytest.raises(sqlalchemy.exc.IntegrityError), app.db.write() as conn:
        conn.execute(activities.insert().values(key="old-key", actor="admin", lead_id=created.lead_id,
                                                type="call_logged", at=clock.now(), recorded_at=clock.now(),
                                                source="manual"))  # fmt: skip
    with app.db.write() as conn:
        conn.execute(activities.insert().values(key="old-key", actor="zapier", lead_id=created.lead_id,
                                                type="call_logged", at=clock.now(), recorded_at=clock.now(),
                                                source="manual"))  # fmt: skip
    # the ledger stays append-only through the parent and through each partition, old and new
    _refused(app, "UPDATE ledger SET note = 'x'")
    _refused(app, f"DELETE FROM ledger_upto_{month:%Y%m}")
    _refused(app, f"UPDATE ledger_p{month:%Y%m} SET note = 'x'")
    _refused(app, f"TRUNCATE ledger_p{month:%Y%m}")
    _refused(app, f"TRUNCATE ledger_upto_{month:%Y%m}")
    # a review must still name an entry that exists: the foreign key became a constraint trigger
    review = ("INSERT INTO reviews (entry_id, lead_id, entry_at, to_status, verdict, reviewer, reviewed_at) "
              "VALUES ({}, 'x', now(), 'Working', 'ok', 'admin', now())")  # fmt: skip
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="is not an id of ledger"), app.db.write() as conn:
        conn.exec_driver_sql(review.format(10**12))
    with app.db.write() as conn:
        conn.exec_driver_sql(review.format("(SELECT min(id) FROM ledger)"))
    app.db.dispose()


def test_the_worker_creates_partitions_ahead(pg_url: str):
    clock = FixedClock(datetime(2031, 5, 17, 12, tzinfo=UTC))
    app = build_app(db_url=pg_url, clock=clock)
    worker.run(app, once=True, deliver=False)
    with app.db.read() as conn:
        names = {p.name for p in partitions.partitions(conn, "activities")}
    assert {"activities_p203105", "activities_p203106", "activities_p203107", "activities_p203108"} <= names
    assert "activities_p203109" not in names
    worker.run(app, once=True, deliver=False)  # nothing new to create the second time
    lead = svc.create_lead(app, actor="admin", fields={"name": "Future", "email": "f@example.com"})
    assert set(_where(app, "ledger")) == {"ledger_p203105"}
    with app.db.read() as conn:
        assert partitions.default_rows(conn) == {"ledger": 0, "activities": 0}
    assert lead.lead_id
    app.db.dispose()


def test_a_row_for_a_month_without_partition_lands_in_the_default_one_and_stays_readable(pg_url: str):
    clock = FixedClock(datetime(2040, 1, 10, tzinfo=UTC))  # far past every partition the migration made
    app = build_app(db_url=pg_url, clock=clock)
    lead = svc.create_lead(app, actor="admin", fields={"name": "Stray", "email": "s@example.com"})
    assert set(_where(app, "ledger")) == {"ledger_pdefault"}
    worker.run(app, once=True, deliver=False)  # that month keeps its rows in the default partition
    with app.db.read() as conn:
        names = {p.name for p in partitions.partitions(conn, "ledger")}
        assert partitions.default_rows(conn)["ledger"] >= 1
        assert set(conn.execute(select(ledger.c.lead_id)).scalars()) == {lead.lead_id}
    assert "ledger_p204001" not in names and "ledger_p204002" in names
    app.db.dispose()
