"""Exports for a warehouse: Parquet and CSV round trips, incremental runs, and stints that reproduce the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from leadledger import analytics
from leadledger.analytics.store import source as source_module
from leadledger.bootstrap import build_app
from leadledger.cli.main import State
from leadledger.cli.main import app as cli
from leadledger.ops.export import export
from leadledger.services import demo, people
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.services.errors import Invalid
from leadledger.store.tables import activities, leads, ledger

US_PER_HOUR = 3_600_000_000


@pytest.fixture
def demo_app(app: App, tmp_path: Path, monkeypatch) -> App:
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "store.duckdb"))
    demo.generate(app, leads=120, seed=11, workers=1)
    return app


def _read(path: Path) -> list[dict[str, Any]]:
    """An export file's rows as a warehouse loader sees them (DuckDB), times as naive UTC."""
    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")
        reader = "read_parquet" if path.suffix == ".parquet" else "read_csv_auto"
        relation = conn.execute(f"SELECT * FROM {reader}('{path}')")
        names = [d[0] for d in relation.description]
        types = {d[0]: str(d[1]) for d in relation.description}
        cast = ", ".join(f'"{n}"::TIMESTAMP AS "{n}"' if "TIME ZONE" in types[n] else f'"{n}"' for n in names)
        rows = conn.execute(f"SELECT {cast} FROM {reader}('{path}')").fetchall()
        return [dict(zip(names, row, strict=True)) for row in rows]
    finally:
        conn.close()


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str) and value[:1] in "{[":
        return json.loads(value)
    if isinstance(value, (bytes, memoryview)):  # the chain's hashes are exported as lower-case hex text
        return bytes(value).hex()
    return value


def _database_rows(app: App, table: Any) -> dict[Any, dict[str, Any]]:
    with app.db.read() as conn:
        return {row.id: {k: _normal(v) for k, v in row._asdict().items()} for row in conn.execute(select(table))}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("table", [ledger, activities, leads], ids=lambda t: t.name)
def test_every_row_and_column_round_trips(demo_app: App, tmp_path: Path, fmt: str, table: Any):
    _assert_round_trip(demo_app, tmp_path, fmt, table)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("table", [ledger, activities], ids=lambda t: t.name)
def test_sqlite_big_exports_read_by_the_child_round_trip_the_same(
    sqlite_url: str, clock, tmp_path: Path, monkeypatch, fmt: str, table: Any
):
    """An id range of 50,000 rows or more leaves SQLite through the child process (store/source.py): every
    column as the batches give it, a nullable number, a JSON document and a hash included."""
    app = build_app(db_url=sqlite_url, clock=clock)
    demo.generate(app, leads=120, seed=11, workers=1)
    svc.create_lead(app, actor="admin", fields={"name": 'Zoë "q", x\nline', "email": "zoe@example.com"})
    monkeypatch.setattr(source_module, "CHILD_MIN_ROWS", 1)
    children = []
    monkeypatch.setattr(source_module.Source, "_from_child", _counting(source_module.Source._from_child, children))
    _assert_round_trip(app, tmp_path, fmt, table)
    assert children == [table.name]
    app.db.dispose()


def _counting(method: Any, calls: list[str]) -> Any:
    def counted(self: Any, database: str, table: str, *args: Any) -> Any:
        calls.append(table)
        return method(self, database, table, *args)

    return counted


def _assert_round_trip(app: App, tmp_path: Path, fmt: str, table: Any) -> None:
    demo_app = app
    out = tmp_path / f"{table.name}.{fmt}"
    summary = export(demo_app, table.name, out, fmt=fmt)
    expected = _database_rows(demo_app, table)
    exported = _read(out)
    assert summary.rows == len(exported) == len(expected) > 100
    assert list(exported[0]) == [c.name for c in table.columns]  # every column, in the table's order
    for row in exported:
        want = expected[row["id"]]
        got = {k: _normal(v) for k, v in row.items()}
        if fmt == "csv":  # CSV has no types: compare as text what the reader could not type back
            got = {k: v if type(v) is type(want[k]) or want[k] is None else type(want[k])(v) for k, v in got.items()}
        assert got == want, row["id"]


def test_incremental_exports_take_exactly_what_is_new(demo_app: App, tmp_path: Path, clock):
    first = export(demo_app, "ledger", tmp_path / "a.parquet")
    lead_id = _read(tmp_path / "a.parquet")[0]["lead_id"]
    clock.advance(timedelta(minutes=1))  # the demo's entries were recorded at the clock's time
    svc.create_lead(demo_app, actor="admin", fields={"name": "New One", "email": "new@example.com"})
    with demo_app.db.read() as conn:
        before = conn.execute(select(ledger.c.to_status).where(ledger.c.lead_id == lead_id)
                              .order_by(ledger.c.seq.desc())).scalars().first()  # fmt: skip
    assert before is not None
    second = export(demo_app, "ledger", tmp_path / "b.parquet", since=str(first.next_since))
    new_rows = _read(tmp_path / "b.parquet")
    assert second.rows == len(new_rows) >= 1
    assert min(r["id"] for r in new_rows) == first.next_since + 1 and second.next_since == max(r["id"] for r in new_rows)
    leads_since = export(demo_app, "leads", tmp_path / "l.parquet", since=str(first.next_since))
    assert [r["name"] for r in _read(tmp_path / "l.parquet")] == ["New One"] and leads_since.rows == 1
    nothing = export(demo_app, "ledger", tmp_path / "c.parquet", since=str(second.next_since))
    assert nothing.rows == 0 and nothing.next_since == second.next_since and _read(tmp_path / "c.parquet") == []
    with pytest.raises(Invalid, match="beyond the last ledger id"):
        export(demo_app, "ledger", tmp_path / "d.parquet", since=str(second.next_since + 1000))
    recent = export(demo_app, "ledger", tmp_path / "e.csv", fmt="csv", since=(demo_app.clock.now()).isoformat())
    assert recent.rows == second.rows  # recorded at or after the clock's now: the lead created above


def test_stints_in_a_warehouse_reproduce_report_durations(demo_app: App, tmp_path: Path):
    out = tmp_path / "stints.parquet"
    summary = export(demo_app, "stints", out)
    report = analytics.report(demo_app, "durations")
    assert summary.as_of == report["as_of"]
    conn = duckdb.connect()
    try:  # what an analyst writes against the file, knowing only its documented columns
        figures = conn.execute(
            f"""SELECT status, count(*), count(*) FILTER (WHERE open),
                       avg(calendar_us), quantile_cont(calendar_us, [0.5, 0.9]),
                       avg(business_us), quantile_cont(business_us, [0.5, 0.9])
                FROM read_parquet('{out}') GROUP BY status"""
        ).fetchall()
    finally:
        conn.close()
    warehouse = {
        status: {"stints": n, "open": still, "mean_hours": mean / US_PER_HOUR, "median_hours": q[0] / US_PER_HOUR,
                 "p90_hours": q[1] / US_PER_HOUR, "business_mean_hours": bmean / US_PER_HOUR,
                 "business_median_hours": bq[0] / US_PER_HOUR, "business_p90_hours": bq[1] / US_PER_HOUR}
        for status, n, still, mean, q, bmean, bq in figures
    }  # fmt: skip
    reported = {entry["status"]: entry for entry in report["statuses"]}
    assert set(warehouse) == set(reported) and len(reported) >= 5
    for status, values in warehouse.items():
        for key, value in values.items():
            assert reported[status][key] == pytest.approx(value, rel=1e-12, abs=1e-9), (status, key)


def test_stints_since_take_every_stint_of_the_leads_that_moved(demo_app: App, tmp_path: Path, clock):
    first = export(demo_app, "stints", tmp_path / "a.parquet")
    people.add_user(demo_app, name="zoe", role="rep")
    lead = svc.create_lead(demo_app, actor="zoe", fields={"name": "Z", "email": "z@example.com"}, owner="zoe")
    clock.advance(timedelta(hours=3))
    svc.change_lead(demo_app, actor="zoe", spec=ChangeSpec(lead.lead_id, status="attempting_contact",
                                                           log=ActivityIn("call_logged", data={"outcome": "no_answer"})))  # fmt: skip
    second = export(demo_app, "stints", tmp_path / "b.parquet", since=str(first.next_since))
    rows = _read(tmp_path / "b.parquet")
    assert {r["lead_id"] for r in rows} == {lead.lead_id}
    assert [r["status"] for r in rows] == ["assigned", "attempting_contact"] and second.rows == 2
    assert rows[0]["calendar_us"] == 3 * US_PER_HOUR and rows[0]["open"] is False and rows[1]["open"] is True


def test_the_command_line_export(demo_app: App, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LEADLEDGER_DB", demo_app.db.url)
    monkeypatch.setattr(State, "_app", None)  # the command line builds its App once per process: not this test's
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["export", "stints", str(out), "--format", "csv", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["kind"] == "stints" and summary["rows"] > 100 and out.read_text().startswith("lead_id,status,")
    bad = CliRunner().invoke(cli, ["export", "ledger", str(out), "--since", "yesterday"])
    assert bad.exit_code != 0
