"""The lead list's marketing filters: several statuses, not a status, reason, campaign, company, team, segment."""

from __future__ import annotations

import pytest

from leadledger.marketing.segments import segment_members
from leadledger.services import leads as svc
from leadledger.services import people
from leadledger.services.errors import Invalid
from leadledger.services.leads import ChangeSpec


@pytest.fixture
def listed(team_app, monkeypatch, tmp_path):
    """ana and ben (team east), eva (team west); six leads across statuses, reasons, campaigns and companies."""
    monkeypatch.setenv("LEADLEDGER_ANALYTICS_DB", str(tmp_path / "analytics.duckdb"))
    people.add_team(team_app, name="west", calendar="default", manager="maria")
    people.add_user(team_app, name="eva", role="rep", team="west")
    made = {}
    for key, owner, campaign, company in (
        ("new", None, "webinar-q1", "Acme Inc"),
        ("assigned", "ana", "webinar-q1", "ACME INC"),
        ("nurture", "ben", "webinar-q2", "Globex"),
        ("rejected", "eva", "webinar-q2", "Globex"),
        ("disqualified", "ben", "brand-search", "Initech"),
        ("rejected2", "ana", "brand-search", "Initech"),
    ):
        fields = {"name": key, "email": f"{key}@example.com", "campaign": campaign, "company": company}
        made[key] = svc.create_lead(team_app, actor="maria", fields=fields, owner=owner).lead_id
    change = {
        "nurture": ChangeSpec(made["nurture"], status="nurture", reason="bad_timing", fields={"re_evaluate_on": "2027-03-01"}),
        "rejected": ChangeSpec(made["rejected"], status="rejected", reason="poor_fit"),
        "disqualified": ChangeSpec(made["disqualified"], status="disqualified", reason="competitor"),
        "rejected2": ChangeSpec(made["rejected2"], status="rejected", reason="not_ready"),
    }  # fmt: skip
    for spec in change.values():
        svc.change_lead(team_app, actor="maria", spec=spec)
    return team_app, made


def names(rows) -> set[str]:
    return {row["name"] for row in rows}


def test_several_statuses_mean_any_of_them_and_not_status_excludes(listed):
    app, _ = listed
    assert names(svc.list_leads(app, status=["nurture", "disqualified"])) == {"nurture", "disqualified"}
    assert names(svc.list_leads(app, status=["new"])) == {"new", "assigned"}  # with the sub-status
    assert names(svc.list_leads(app, not_status=["new", "rejected"])) == {"nurture", "disqualified"}


def test_reason_campaign_company_and_team(listed):
    app, _ = listed
    assert names(svc.list_leads(app, reason=["poor_fit", "competitor"])) == {"rejected", "disqualified"}
    assert names(svc.list_leads(app, campaign=["webinar-q2"])) == {"nurture", "rejected"}
    assert names(svc.list_leads(app, company="acme inc")) == {"new", "assigned"}
    assert names(svc.list_leads(app, team=["west"])) == {"rejected"}
    assert names(svc.list_leads(app, team=["east"], status=["rejected"])) == {"rejected2"}


def test_segment_membership_filters_and_pages(listed):
    app, made = listed
    review = segment_members(app, ["review_before_inclusion"])
    assert review == {made["rejected"], made["rejected2"]}
    assert names(svc.list_leads(app, lead_ids=review, campaign=["brand-search"])) == {"rejected2"}
    first = svc.list_leads(app, lead_ids=review, limit=1)
    second = svc.list_leads(app, lead_ids=review, limit=1, after=first[0]["id"])
    assert [first[0]["id"], second[0]["id"]] == sorted(review)
    assert segment_members(app, ["suppress", "suppress_sales_owned"]) == {made["assigned"]}
    with pytest.raises(Invalid, match="segment: unknown segment"):
        segment_members(app, ["nope"])


def test_an_unknown_status_or_reason_is_an_error_naming_the_option(listed):
    app, _ = listed
    with pytest.raises(Invalid, match="status: unknown status 'hot'"):
        svc.list_leads(app, status=["new", "hot"])
    with pytest.raises(Invalid, match="not_status: unknown status"):
        svc.list_leads(app, not_status=["nope"])
    with pytest.raises(Invalid, match="reason: unknown reason"):
        svc.list_leads(app, reason=["because"])
