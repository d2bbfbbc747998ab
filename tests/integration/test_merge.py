"""Merging two leads and undoing it: both ledgers kept entry for entry, fields merged by the stated rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from leadledger.services import leads as svc
from leadledger.services.errors import ChangeRefused, Invalid
from leadledger.services.leads import ChangeSpec
from leadledger.services.merge import merge_leads, merged_timelines, unmerge
from leadledger.store.tables import ledger


def rows(app) -> list[tuple]:
    """Every ledger row as stored (what no merge or unmerge may change)."""
    with app.db.read() as conn:
        return [tuple(r) for r in conn.execute(select(ledger).order_by(ledger.c.id))]


@pytest.fixture
def pair(team_app):
    keep = svc.create_lead(
        team_app, actor="maria", owner="ana",
        fields={"name": "Jo Doe", "email": "jo@acme.example", "company": "Acme", "source": "webinar"},
    ).lead_id  # fmt: skip
    other = svc.create_lead(
        team_app, actor="maria", owner="ben",
        fields={"name": "Jo Doe", "phone": "+12025550143", "company": "Acme Inc", "title": "CFO", "campaign": "q1"},
    ).lead_id  # fmt: skip
    svc.change_lead(team_app, actor="ben", spec=ChangeSpec(other, status="attempting_contact",
                                                           log=svc.ActivityIn("call_logged", data={"outcome": "no_answer"})))  # fmt: skip
    return team_app, keep, other


def test_merge_fills_what_the_survivor_lacks_lists_conflicts_and_keeps_both_ledgers(pair):
    app, keep, other = pair
    before = rows(app)
    result = merge_leads(app, survivor=keep, duplicate=other, actor="maria", note="same person, two forms")
    assert result["filled"] == ["campaign", "phone", "title"]
    assert result["conflicts"] == [{"field": "company", "kept": "Acme", "other": "Acme Inc"}]
    assert rows(app)[: len(before)] == before  # nothing earlier changed: two entries appended
    assert len(rows(app)) == len(before) + 2
    survivor, duplicate = svc.get_lead(app, keep), svc.get_lead(app, other)
    assert (survivor["phone"], survivor["company"], survivor["fields"]["title"]) == ("+12025550143", "Acme", "CFO")
    assert (duplicate["status"], duplicate["reason"], duplicate["fields"]["duplicate_of"]) == (
        "duplicate",
        "duplicate",
        keep,
    )
    (merged,) = merged_timelines(app, keep)
    assert merged["lead_id"] == other
    assert [e["to_status"] for e in merged["entries"]] == ["assigned", "attempting_contact", "duplicate"]
    assert merged["activities"][0]["type"] == "call_logged"
    assert "merged" in svc.timeline(app, keep)["entries"][-1]["note"]


def test_unmerge_restores_by_appended_entries(pair):
    app, keep, other = pair
    merge_leads(app, survivor=keep, duplicate=other, actor="maria")
    before = rows(app)
    result = unmerge(app, duplicate=other, actor="maria")
    assert result["restored_status"] == "attempting_contact"
    assert rows(app)[: len(before)] == before and len(rows(app)) == len(before) + 2
    duplicate = svc.get_lead(app, other)
    assert (duplicate["status"], duplicate["owner"]) == ("attempting_contact", "ben")
    assert "duplicate_of" not in duplicate["fields"]
    survivor = svc.get_lead(app, keep)
    assert survivor["phone"] is None and "title" not in survivor["fields"] and survivor["company"] == "Acme"
    assert merged_timelines(app, keep) == []
    assert svc.timeline(app, other)["entries"][-1]["kind"] == "unmerge"
    with pytest.raises(Invalid, match="not merged"):
        unmerge(app, duplicate=other, actor="maria")


def test_a_merge_the_model_refuses_writes_nothing(pair):
    app, keep, other = pair
    before = rows(app)
    with pytest.raises(Invalid, match="merged into itself"):
        merge_leads(app, survivor=keep, duplicate=keep, actor="maria")
    svc.change_lead(app, actor="maria", spec=ChangeSpec(keep, status="invalid", reason="bad_email"))
    converted = svc.create_lead(app, actor="maria", fields={"name": "C", "email": "c@x.example"}).lead_id
    before = rows(app)
    with pytest.raises(ChangeRefused):  # Invalid -> Duplicate is not an allowed transition
        merge_leads(app, survivor=converted, duplicate=keep, actor="maria")
    assert rows(app) == before  # the survivor's half was not written either
    merge_leads(app, survivor=keep, duplicate=other, actor="maria")
    with pytest.raises(Invalid, match="already a duplicate"):
        merge_leads(app, survivor=converted, duplicate=other, actor="maria")
