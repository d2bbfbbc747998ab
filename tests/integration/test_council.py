"""The status council's pack on hand-built ledgers, and the detector of statuses that may not need to be
separate: one ledger where Attempting Contact and Connected are used identically (same next statuses, same
outcomes, same durations), one where they are not.

  identical:  40 leads Assigned -> Attempting Contact -> (Nurture | Disqualified, alternately) after 2 days
              40 leads Assigned -> Connected          -> (Nurture | Disqualified, alternately) after 2 days
  different:  40 leads Assigned -> Attempting Contact -> Nurture after 1 hour
              40 leads Assigned -> Connected          -> Disqualified after 10 days
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from test_reports_builder import Lead, at, new_world, write

from leadledger.analytics.council import similar_statuses, unclear_statuses
from leadledger.analytics.council_render import pack_html, pack_markdown
from leadledger.analytics.governance_review import governance_query
from leadledger.model.loader import default_model_text
from leadledger.services import council, models
from leadledger.services.errors import Forbidden
from leadledger.services.inbox import list_notifications

PERIOD = {"date_from": date(2026, 10, 1), "date_to": date(2026, 11, 30)}


def _leads(via: str, n: int, stay: timedelta, ends: tuple[str, ...], prefix: str, start_day: int = 1) -> list[Lead]:
    out = []
    for i in range(n):
        created = at(start_day + i % 20, 14, i, month=10)
        entered = created + timedelta(hours=2)
        end = ends[i % len(ends)]
        reason = {"nurture": "not_ready", "disqualified": "budget"}[end]
        data = {"re_evaluate_on": "2027-06-01"} if end == "nurture" else None
        rep = "ana" if i % 2 else "ben"
        lead = Lead(f"{prefix}{i}", created).to(created + timedelta(hours=1), "assigned", owner=rep, actor="maria")
        lead.to(entered, via, actor=rep).to(
            entered + stay + timedelta(minutes=i % 7), end, reason=reason, data=data, actor=rep
        )
        out.append(lead)
    return out


def _pair(result, a, b):
    return next(p for p in result["pairs"] if set(p["statuses"]) == {a, b})


@pytest.fixture
def identical(app, monkeypatch, tmp_path):
    new_world(app, monkeypatch, tmp_path)
    both = ("nurture", "disqualified")
    write(app, *_leads("attempting_contact", 40, timedelta(days=2), both, "A"),
          *_leads("connected", 40, timedelta(days=2), both, "C"))  # fmt: skip
    return app


@pytest.fixture
def different(app, monkeypatch, tmp_path):
    new_world(app, monkeypatch, tmp_path)
    write(app, *_leads("attempting_contact", 40, timedelta(hours=1), ("nurture",), "A"),
          *_leads("connected", 40, timedelta(days=10), ("disqualified",), "C"))  # fmt: skip
    return app


def test_two_statuses_used_identically_are_proposed_for_consolidation(identical):
    with governance_query(identical, **PERIOD) as q:
        result = similar_statuses(q)
    assert [p["statuses"] for p in result["proposed"]] == [["attempting_contact", "connected"]]
    pair = result["proposed"][0]
    assert pair["stints"] == [40, 40]
    for name in ("next_status", "outcome", "duration"):
        test = pair["tests"][name]
        assert test["test"] == "chi-square homogeneity" and test["n"] == [40, 40]
        assert test["p_value"] >= 0.05 and test["effect"] < 0.10
    assert pair["next_status"]["attempting_contact"] == {"nurture": 20, "disqualified": 20}
    assert pair["same_actions"] is False  # Connected sends the calendar link: the council weighs that
    assert "email" in " ".join(pair["actions"]["connected"])
    # Assigned (80 stints, followed by Attempting or Connected) is compared too, and differs
    assert _pair(result, "assigned", "connected")["similar"] is False
    assert result["rule"]["min_stints"] == 30 and result["compared"] == 6  # new, assigned, attempting, connected


def test_two_statuses_used_differently_are_not(different):
    with governance_query(different, **PERIOD) as q:
        result = similar_statuses(q)
    assert result["proposed"] == []
    pair = _pair(result, "attempting_contact", "connected")
    assert pair["similar"] is False
    assert pair["tests"]["next_status"]["p_value"] < 0.001 and pair["tests"]["next_status"]["effect"] == pytest.approx(
        1.0
    )
    assert pair["tests"]["duration"]["p_value"] < 0.001


def test_a_status_whose_use_differs_between_reps_is_flagged_as_unclear(app, monkeypatch, tmp_path):
    new_world(app, monkeypatch, tmp_path)
    leads = []
    for i in range(40):  # ana: half of her leads to Nurture; ben: none
        created = at(2 + i % 20, month=10)
        for rep in ("ana", "ben"):
            lead = Lead(f"{rep}{i}", created).to(created + timedelta(hours=1), "assigned", owner=rep, actor="maria")
            lead.to(created + timedelta(hours=2), "attempting_contact", actor=rep)
            if rep == "ana" and i % 2:
                lead.to(created + timedelta(days=1), "nurture", reason="not_ready", actor=rep,
                        data={"re_evaluate_on": "2027-06-01"})  # fmt: skip
            else:
                lead.to(created + timedelta(days=1), "disqualified", reason="budget", actor=rep)
            leads.append(lead)
    write(app, *leads)
    with governance_query(app, **PERIOD) as q:
        unclear = unclear_statuses(q)
    flagged = {u["status"]: u for u in unclear["flagged"]}
    assert set(flagged) == {"nurture", "disqualified"}
    assert flagged["nurture"]["shares"] == {"ana": 0.25, "ben": 0.0}
    assert flagged["nurture"]["test"]["p_value"] < 0.01
    assert "attempting_contact" not in flagged  # both reps: half of their changes


def test_the_pack_holds_every_section_in_three_formats_and_readers_only(identical):
    models.activate_model(identical, text=default_model_text().replace('version: "1"', 'version: "2"', 1),
                          file="v2.yaml", actor="admin")  # fmt: skip
    with pytest.raises(Forbidden):
        council.pack(identical, actor="ana", date_from=date(2026, 10, 1), date_to=date(2026, 12, 31))
    pack = council.pack(identical, actor="maria", date_from=date(2026, 10, 1), date_to=date(2026, 12, 31))
    for key in ("status_usage", "rarely_used", "rep_status_usage", "overrides", "rates", "sla", "spot_checks",
                "inconsistent_usage", "similar_statuses", "model_changes"):  # fmt: skip
        assert key in pack, key
    assert pack["leads"] == 80
    assert pack["rates"]["stale_status_rate"]["label"] == "Stale status rate"
    assert [v["version"] for v in pack["model_changes"]["versions"]] == ["1", "2"]  # both stored at T0
    assert pack["model_changes"]["changes"][0]["key"] == "version"
    md = pack_markdown(pack)
    assert "## 8. Statuses that may not need to be separate" in md
    assert "### attempting_contact and connected: proposed for consolidation" in md
    assert "Cramér's V" in md and "## 9. What changed in the model during the period" in md
    html = pack_html(pack)
    assert html.startswith("<!doctype html>") and "<h3>attempting_contact and connected: proposed" in html
    assert "<table>" in html and "<script" not in html


def test_the_worker_stores_the_last_quarters_pack_once_and_tells_ops_and_managers(identical):
    from leadledger.services import people

    people.add_user(identical, name="olga", role="ops")
    first = council.quarterly_pack(identical, now=datetime.fromisoformat("2027-01-01T06:00:00+00:00"))
    assert first is not None and first["quarter"] == "2026-Q4"
    assert (first["from"], first["to"]) == (date(2026, 10, 1), date(2026, 12, 31))
    assert {"maria", "olga", "admin"} <= set(first["notified"])
    assert council.quarterly_pack(identical, now=datetime.fromisoformat("2027-01-02T06:00:00+00:00")) is None
    (note,) = [n for n in list_notifications(identical, recipient="maria") if n["kind"] == "council_pack"]
    assert "2026-Q4" in note["message"]
    stored = council.stored_pack(identical, actor="olga", pack_id=first["pack"])
    assert stored["similar_statuses"]["proposed"][0]["statuses"] == ["attempting_contact", "connected"]
    assert stored["period"] == {"from": "2026-10-01", "to": "2026-12-31"}
