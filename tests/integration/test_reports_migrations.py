"""Reports read recorded status keys through the model's migrations, so a period spanning a rename or a merge is
comparable: on a hand-built ledger recorded partly under version 1, every report equals what the same ledger
gives with its keys mapped by hand (a second database), before, across and after the change.

Version 2 (applied on D = Mon Nov 16 12:00Z) renames Attempting Contact to Contacting and merges Rejected into
Disqualified. Leads in an old key at D get their migration entry at D (as `model apply` appends them):

  M1  ana  assigned Nov 2, attempting Nov 3, [D], connected Nov 18
  M2  ben  assigned Nov 5, attempting Nov 6 (ben), [D], still contacting
  M3  ana  assigned Nov 4, rejected (poor_fit) Nov 9, [D]
  M4  ana  created Nov 17, assigned, contacting Nov 18 (the new key), disqualified (budget) Nov 20
  M5  ben  assigned Nov 6, attempting Nov 7, connected by a rule Nov 8, back to attempting Nov 8 by ben
           (an override), [D]
  M6  -    imported Nov 3, rejected Nov 4 by the import (off-model), [D]
  M7  -    imported Nov 3 in `legacy_hot`, a key no model ever had (read as recorded in both)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from model_edits import default, dump, merge, rename, with_migrations
from test_reports_builder import Lead, add_people, at, write

from leadledger import analytics
from leadledger.bootstrap import build_app
from leadledger.services import models
from leadledger.services.errors import Invalid

D = at(16, 12)
MAPPING = {"attempting_contact": "contacting", "rejected": "disqualified"}


def v2_text() -> str:
    data = merge(rename(default(), "attempting_contact", "contacting"), "rejected", "disqualified")
    return dump(with_migrations(data, {"attempting_contact": "contacting",
                                       "rejected": {"to": "disqualified", "reason": "same action, same report"}}))  # fmt: skip


def ledger(k: Callable[[str], str]) -> list[Lead]:
    """The leads, with recorded keys written as `k` names them (identity: as recorded under version 1)."""
    a, r = k("attempting_contact"), k("rejected")

    def migrated(lead: Lead, to: str) -> Lead:
        return lead.to(D, to, source="migration", actor="system")

    return [
        migrated(Lead("M1", at(2)).to(at(2, 15), "assigned", owner="ana", actor="maria").to(at(3), a), "contacting")
        .to(at(18), "connected"),
        migrated(Lead("M2", at(5)).to(at(5, 15), "assigned", owner="ben", actor="maria").to(at(6), a, actor="ben"),
                 "contacting"),
        migrated(Lead("M3", at(4)).to(at(4, 15), "assigned", owner="ana", actor="maria")
                 .to(at(9), r, reason="poor_fit"), "disqualified"),
        Lead("M4", at(17)).to(at(17, 15), "assigned", owner="ana", actor="maria").to(at(18), "contacting")
        .to(at(20), "disqualified", reason="budget"),
        migrated(Lead("M5", at(6)).to(at(6, 15), "assigned", owner="ben", actor="maria").to(at(7), a, actor="ben")
                 .to(at(8), "connected", source="automation", rule="email_reply_connects", actor="system")
                 .to(at(8, 16), a, actor="ben", override_rule="email_reply_connects"), "contacting"),
        migrated(Lead("M6", at(3), entry_source="import").to(at(4), r, source="import", actor="importer",
                                                              off_model=True), "disqualified"),
        Lead("M7", at(3), status="legacy_hot", entry_source="import"),
    ]  # fmt: skip


@pytest.fixture
def worlds(app, second_db_url, tmp_path, monkeypatch):
    """(recorded, mapped): the ledger as recorded (version 1 keys), and with its keys mapped by hand."""
    mapped_app = build_app(db_url=second_db_url, clock=app.clock)
    for world in (app, mapped_app):
        add_people(world)
    write(app, *ledger(lambda key: key))
    write(mapped_app, *ledger(lambda key: MAPPING.get(key, key)))
    stores = {id(app): tmp_path / "recorded.duckdb", id(mapped_app): tmp_path / "mapped.duckdb"}

    def run(world, name: str, **options):
        monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(stores[id(world)]))
        return analytics.report(world, name, **options)

    yield app, mapped_app, run
    mapped_app.db.dispose()


PERIODS = [
    {},  # everything, as of now
    {"date_from": date(2026, 11, 1), "date_to": date(2026, 11, 15)},  # before the change
    {"date_from": date(2026, 11, 9), "date_to": date(2026, 11, 22)},  # across it
    {"date_from": date(2026, 11, 17), "date_to": date(2026, 11, 22)},  # after it
    {"as_of": at(12)},  # a moment before the change
]
REPORTS = ["distribution", "funnel", "durations", "bottlenecks", "reps", "governance", "sources", "health", "overrides"]


def test_every_report_reads_recorded_keys_through_the_migrations(worlds):
    recorded, mapped, run = worlds
    before = run(recorded, "durations")
    assert "attempting_contact" in {row["status"] for row in before["statuses"]}  # version 1: keys as recorded
    for world in (recorded, mapped):
        models.activate_model(world, text=v2_text(), file="v2.yaml", actor="admin")
    compared = 0
    for options in PERIODS:
        for name in REPORTS:
            try:
                expected = run(mapped, name, **options)
            except Invalid:
                continue  # a point-in-time report asked for a period, or the reverse
            assert run(recorded, name, **options) == expected, (name, options)
            compared += 1
    assert compared >= 35
    durations = {row["status"]: row for row in run(recorded, "durations")["statuses"]}
    assert "attempting_contact" not in durations and "rejected" not in durations
    # M1, M2 and M5's stints in Contacting run from their attempt, not from the migration at D
    assert durations["contacting"]["stints"] == 5  # M1, M2, M4, and M5 twice
    governance = run(recorded, "governance")
    assert governance["off_model"]["transitions"] == [{"from": "new", "to": "disqualified", "entries": 1}]
    ana = next(r for r in governance["rep_status_usage"] if r["rep"] == "ana")
    assert ana["by_status"] == {"contacting": 2, "disqualified": 2, "connected": 1}

    # history imported later under the old keys is read through the map too (the store maps what it copies)
    def late(k: Callable[[str], str]) -> Lead:
        return Lead("M8", at(10), entry_source="import").to(at(11), k("attempting_contact"), source="import",
                                                            actor="importer").to(at(12), k("rejected"), source="import",
                                                                                 actor="importer", reason="poor_fit")  # fmt: skip

    write(recorded, late(lambda key: key))
    write(mapped, late(lambda key: MAPPING.get(key, key)))
    for name in ("durations", "governance", "funnel"):
        assert run(recorded, name) == run(mapped, name), name
    assert {row["status"]: row for row in run(recorded, "durations")["statuses"]}["contacting"]["stints"] == 6
