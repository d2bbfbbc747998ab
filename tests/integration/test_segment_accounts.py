"""The account_review segment: open leads of an account flagged for review (seed 000's "several leads of one
company all in Nurture"), as of any time, through the real change path, the flag's worker step and a manager's
dismissal. Suppression still wins."""

from __future__ import annotations

from datetime import timedelta

from test_reports_builder import private_store

from leadledger.marketing import segments as seg
from leadledger.services import accounts
from leadledger.services import leads as svc
from leadledger.services.leads import ChangeSpec


def lead(app, name: str, company: str) -> str:
    fields = {"name": name, "email": f"{name.lower()}@{company.lower()}.example", "company": company}
    return svc.create_lead(app, actor="admin", fields=fields).lead_id


def nurture(app, lead_id: str, **fields) -> None:
    spec = ChangeSpec(lead_id, status="nurture", reason="bad_timing", fields={"re_evaluate_on": "2027-03-01", **fields})
    svc.change_lead(app, actor="admin", spec=spec)


def review(app, as_of=None) -> set[str]:
    return {row["id"] for row in seg.export_rows(app, "account_review", as_of=as_of)}


def test_leads_of_a_flagged_account_are_in_account_review_from_the_flag_until_its_dismissal(
    team_app, clock, monkeypatch, tmp_path
):
    app = team_app
    private_store(monkeypatch, tmp_path)
    one, two = lead(app, "Ann", "Acme"), lead(app, "Bob", "Acme")
    unsubscribed = lead(app, "Cat", "Acme")
    lone = lead(app, "Dan", "Solo")  # one lead: its account is never flagged
    clock.advance(timedelta(hours=1))
    for lead_id in (one, two, lone):
        nurture(app, lead_id)
    nurture(app, unsubscribed, unsubscribed=True)
    clock.advance(timedelta(hours=1))
    before = clock.now()
    assert review(app) == set()  # every Acme lead is in Nurture, but nobody has flagged the account yet
    clock.advance(timedelta(hours=1))
    assert accounts.refresh_flags(app)["raised"] == 1
    raised = clock.now()
    # in as of now and as of the very moment it was raised; the unsubscribed lead of the account is suppressed
    assert review(app) == review(app, as_of=raised) == {one, two}
    assert unsubscribed in seg.memberships(app, ["suppress"])["suppress"]
    assert review(app, as_of=before) == set()  # not before the flag was raised, though the ledger is the same
    shown = seg.show_segment(app, "account_review")
    assert shown["members"] == 2 and shown["by_status"] == [{"status": "nurture", "members": 2}]

    clock.advance(timedelta(hours=1))
    accounts.dismiss_flag(app, "acme", actor="maria")
    dismissed = clock.now()
    clock.advance(timedelta(minutes=10))
    assert review(app) == review(app, as_of=dismissed) == set()  # out once dismissed
    assert review(app, as_of=dismissed - timedelta(seconds=1)) == {one, two}  # the past stays as it was
    changes = seg.segment_changes(app, "account_review", since=raised, until=clock.now())
    assert {row["id"] for row in changes["left"]} == {one, two} and changes["entered"] == []


def test_a_cleared_flag_takes_the_accounts_leads_out_and_a_closed_lead_is_never_in(
    team_app, clock, monkeypatch, tmp_path
):
    app = team_app
    private_store(monkeypatch, tmp_path)
    one, two = lead(app, "Ann", "Acme"), lead(app, "Bob", "Acme")
    for lead_id in (one, two):
        nurture(app, lead_id)
    clock.advance(timedelta(hours=1))
    accounts.refresh_flags(app)
    assert review(app) == {one, two}
    clock.advance(timedelta(hours=1))
    svc.change_lead(app, actor="admin", spec=ChangeSpec(two, status="disqualified", reason="competitor"))
    assert review(app) == {one}  # the flag is still up (the worker has not run), but a lost lead is not open
    clock.advance(timedelta(hours=1))
    assert accounts.refresh_flags(app)["cleared"] == 1  # one open lead left: the condition no longer holds
    assert review(app) == set()

