"""Accounts (leads grouped by company or work e-mail domain) and seed 000's account-based review flag: raised
when an account's open leads (two or more) are all in Nurture, kept, cleared when that stops, dismissed by a
manager (recorded), scoped like the lead list. Leads move through the real change path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from leadledger.services import accounts, people
from leadledger.services import leads as svc
from leadledger.services.errors import Forbidden, NotFound
from leadledger.services.leads import ChangeSpec


def lead(app, name: str, email: str, company: str | None = None, owner: str | None = None) -> str:
    fields = {"name": name, "email": email} | ({"company": company} if company else {})
    return svc.create_lead(app, actor="admin", fields=fields, owner=owner).lead_id


def nurture(app, lead_id: str) -> None:
    svc.change_lead(app, actor="admin", spec=ChangeSpec(lead_id, status="nurture", reason="bad_timing",
                                                        fields={"re_evaluate_on": "2027-03-01"}))  # fmt: skip


@pytest.fixture
def org(team_app):
    people.add_user(team_app, name="eva", role="rep")
    return team_app


def test_leads_group_by_normalised_company_or_work_domain_never_free_mail(org):
    lead(org, "A", "a@acme.example", "Acme, Inc.")
    lead(org, "B", "b@other.example", "ACME Incorporated")
    lead(org, "C", "c@émile.example", "Émile SARL")
    lead(org, "D", "d@emile.example", "emile")
    lead(org, "E", "e@initech.example")  # no company: the work domain
    lead(org, "F", "f@gmail.com")  # no company, free mail: no account
    rows = {r["key"]: r for r in accounts.list_accounts(org, actor="admin")}
    assert set(rows) == {"acme", "emile", "initech.example"}
    assert rows["acme"]["leads"] == 2 and rows["emile"]["leads"] == 2 and rows["initech.example"]["leads"] == 1


def test_the_review_flag_is_raised_kept_cleared_and_raised_again(org, clock):
    one, two = lead(org, "A", "a@acme.example", "Acme"), lead(org, "B", "b@acme.example", "Acme Ltd")
    lone = lead(org, "L", "l@solo.example", "Solo")
    nurture(org, one)
    nurture(org, lone)
    assert accounts.refresh_flags(org)["raised"] == 0  # one of two in Nurture; Solo has one lead
    nurture(org, two)
    raised_at = clock.now()
    assert accounts.refresh_flags(org) == {"raised": 1, "cleared": 0, "flagged": 1}
    clock.advance(timedelta(hours=1))
    assert accounts.refresh_flags(org) == {"raised": 0, "cleared": 0, "flagged": 1}  # kept, not raised twice
    (flagged,) = accounts.list_accounts(org, actor="admin", flagged=True)
    assert flagged["key"] == "acme" and flagged["raised_at"] == raised_at and flagged["statuses"] == {"nurture": 2}
    # a closed lead does not keep the flag down; a third open lead outside Nurture does
    third = lead(org, "C", "c@acme.example", "ACME")
    assert accounts.refresh_flags(org)["cleared"] == 1 and accounts.flagged_accounts(org) == set()
    svc.change_lead(org, actor="admin", spec=ChangeSpec(third, status="disqualified", reason="competitor"))
    clock.advance(timedelta(hours=1))
    assert accounts.refresh_flags(org)["raised"] == 1
    assert accounts.show_account(org, "acme", actor="admin")["raised_at"] == clock.now()


def test_a_manager_dismisses_the_flag_and_it_stays_down_while_the_condition_lasts(org, clock):
    for name in ("A", "B"):
        nurture(org, lead(org, name, f"{name.lower()}@acme.example", "Acme"))
    accounts.refresh_flags(org)
    with pytest.raises(Forbidden):
        accounts.dismiss_flag(org, "acme", actor="ana")
    clock.advance(timedelta(minutes=5))
    done = accounts.dismiss_flag(org, "acme", actor="maria")
    assert done["dismissed_by"] == "maria" and done["dismissed_at"] == clock.now()
    accounts.refresh_flags(org)
    shown = accounts.show_account(org, "acme", actor="admin")
    assert not shown["flagged"] and shown["dismissed_by"] == "maria"
    assert accounts.list_accounts(org, actor="admin", flagged=True) == []
    with pytest.raises(NotFound):
        accounts.dismiss_flag(org, "acme", actor="maria")  # nothing raised to dismiss


def test_reps_see_the_accounts_of_their_leads_managers_their_teams(org):
    lead(org, "A", "a@acme.example", "Acme", owner="ana")
    lead(org, "B", "b@acme.example", "Acme", owner="eva")  # eva is in no team
    lead(org, "C", "c@globex.example", "Globex", owner="eva")
    assert [r["key"] for r in accounts.list_accounts(org, actor="ana")] == ["acme"]
    assert accounts.show_account(org, "acme", actor="ana")["leads"] == 1  # eva's lead is not shown to ana
    with pytest.raises(NotFound):
        accounts.show_account(org, "globex", actor="ana")
    assert [r["key"] for r in accounts.list_accounts(org, actor="maria")] == ["acme"]
    assert {r["key"] for r in accounts.list_accounts(org, actor="admin")} == {"acme", "globex"}


def test_the_cli_lists_flagged_accounts_as_json_and_csv(org, db_url, monkeypatch):
    import json

    from leadledger.cli.main import app as cli
    from leadledger.cli.state import State

    for name in ("A", "B"):
        nurture(org, lead(org, name, f"{name.lower()}@acme.example", "=Acme"))
    runner = CliRunner()
    monkeypatch.setattr(State, "_app", org)

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--db", db_url, *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    monkeypatch.setattr(State, "app", classmethod(lambda cls: org))
    assert json.loads(run("account", "refresh", "--format", "json"))["raised"] == 1
    (row,) = json.loads(run("account", "list", "--flagged", "--format", "json"))
    assert row["key"] == "acme" and row["flagged"]
    assert "'=Acme" in run("account", "list", "--format", "csv")  # spreadsheet-safe
