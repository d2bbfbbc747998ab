"""The services the web app reads through: sessions, who sees which leads, the filtered and paged lead list."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

import pytest

from leadledger.domain.clock import FixedClock
from leadledger.services import auth, leadquery, people, sessions, views
from leadledger.services.app import App
from leadledger.services.changes import ActivityIn, ChangeSpec
from leadledger.services.errors import Invalid, NotFound
from leadledger.services.leadquery import LeadFilter
from leadledger.services.leads import change_lead, create_lead
from leadledger.services.visibility import require_visible, scope_for

PASSWORD = "a-long-enough-password"


@pytest.fixture
def org(team_app: App, give_password: Callable[[App, Iterable[str], str], None]) -> App:
    """team_app (maria manages east: ana, ben) plus jonas managing west (wes), oscar (ops), all with passwords."""
    people.add_user(team_app, name="jonas", role="manager")
    people.add_team(team_app, name="west", calendar="default", manager="jonas")
    people.add_user(team_app, name="wes", role="rep", team="west")
    people.add_user(team_app, name="oscar", role="ops")
    people.add_user(team_app, name="mkt", role="manager")  # no team: an organisation-wide manager
    give_password(team_app, ("maria", "ana", "ben", "jonas", "wes", "oscar", "mkt"), PASSWORD)
    return team_app


def lead(app: App, name: str, owner: str | None = None, **fields: str) -> str:
    return create_lead(app, actor="oscar", fields={"name": name, "email": f"{name}@example.com", **fields},
                       owner=owner).lead_id  # fmt: skip


# --- sessions -----------------------------------------------------------------------------------------


def test_a_session_is_stored_as_a_hash_and_resumes_the_user(org: App) -> None:
    secret, session = sessions.start_session(org, name="ana", password=PASSWORD)
    resumed = sessions.resume_session(org, secret)
    assert (resumed.user.name, resumed.user.role) == ("ana", "rep")
    assert resumed.csrf == session.csrf == sessions.csrf_for(secret)
    with org.db.read() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT session_hash FROM web_sessions")]
    assert secret not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_a_wrong_password_opens_no_session(org: App) -> None:
    with pytest.raises(auth.Unauthenticated):
        sessions.start_session(org, name="ana", password="wrong-password-here")


def test_a_session_ends_after_the_idle_time(org: App, clock: FixedClock) -> None:
    secret, _ = sessions.start_session(org, name="ana", password=PASSWORD)
    clock.advance(timedelta(minutes=20))
    sessions.resume_session(org, secret, idle=timedelta(minutes=30))  # in use: the idle time starts again
    sessions.forget_cached_sessions(org)
    clock.advance(timedelta(minutes=29))
    sessions.resume_session(org, secret, idle=timedelta(minutes=30))
    sessions.forget_cached_sessions(org)
    clock.advance(timedelta(minutes=31))
    with pytest.raises(auth.Unauthenticated):
        sessions.resume_session(org, secret, idle=timedelta(minutes=30))


def test_logout_a_password_change_and_disabling_the_user_each_end_a_session(org: App) -> None:
    first, _ = sessions.start_session(org, name="ana", password=PASSWORD)
    sessions.end_session(org, first)
    with pytest.raises(auth.Unauthenticated):
        sessions.resume_session(org, first)

    second, _ = sessions.start_session(org, name="ana", password=PASSWORD)
    auth.set_password(org, name="ana", password="another-long-password")
    sessions.forget_cached_sessions(org)
    with pytest.raises(auth.Unauthenticated):
        sessions.resume_session(org, second)

    third, _ = sessions.start_session(org, name="ben", password=PASSWORD)
    auth.set_user_active(org, actor=None, name="ben", active=False)
    sessions.forget_cached_sessions(org)
    with pytest.raises(auth.Unauthenticated):
        sessions.resume_session(org, third)


def test_a_session_has_an_absolute_end(org: App, clock: FixedClock) -> None:
    secret, _ = sessions.start_session(org, name="ana", password=PASSWORD)
    elapsed = timedelta()
    while True:  # busy all day, never idle: the session still ends SESSION_LIFETIME after it began
        clock.advance(timedelta(minutes=59))
        elapsed += timedelta(minutes=59)
        sessions.forget_cached_sessions(org)
        try:
            sessions.resume_session(org, secret, idle=timedelta(hours=1))
        except auth.Unauthenticated:
            break
        assert elapsed < sessions.SESSION_LIFETIME
    assert elapsed >= sessions.SESSION_LIFETIME


# --- who sees what ------------------------------------------------------------------------------------


def test_reps_see_their_own_and_unowned_leads_managers_their_teams_ops_everything(org: App) -> None:
    ana = lead(org, "a1", owner="ana")
    ben = lead(org, "b1", owner="ben")
    wes = lead(org, "w1", owner="wes")
    nobody = lead(org, "n1")

    def visible(user: str) -> set[str]:
        page = leadquery.find_leads(org, scope_for(org, user), LeadFilter(), limit=100)
        return {row["id"] for row in page.rows}

    assert visible("ana") == {ana, nobody}
    assert visible("maria") == {ana, ben, nobody}
    assert visible("jonas") == {wes, nobody}
    assert visible("oscar") == visible("mkt") == {ana, ben, wes, nobody}
    for user in ("ana", "maria", "jonas", "oscar", "mkt"):  # the one-lead check a change makes agrees, lead by lead
        assert {i for i in (ana, ben, wes, nobody) if leadquery.is_visible(org, scope_for(org, user), i)} == visible(user)
    assert not leadquery.is_visible(org, scope_for(org, "oscar"), "no-such-lead")
    with pytest.raises(NotFound):
        require_visible(scope_for(org, "ana"), leadquery.find_leads(org, scope_for(org, "oscar"),
                        LeadFilter(ids=(ben,))).rows[0])  # fmt: skip


# --- the list: filters, order, pages --------------------------------------------------------------------


def test_several_statuses_include_their_sub_statuses_and_other_filters_combine(org: App) -> None:
    new = lead(org, "new1")
    assigned = lead(org, "asg1", owner="ana", source="webinar")
    attempting = lead(org, "att1", owner="ben", source="webinar", campaign="q1")
    change_lead(org, actor="ben", spec=ChangeSpec(attempting, status="attempting_contact",
                log=ActivityIn("call_logged", data={"outcome": "no_answer"})))  # fmt: skip
    scope = scope_for(org, "oscar")

    def ids(where: LeadFilter) -> set[str]:
        return {row["id"] for row in leadquery.find_leads(org, scope, where).rows}

    assert ids(LeadFilter(statuses=("new",))) == {new, assigned}  # Assigned is a sub-status of New
    assert ids(LeadFilter(statuses=("new", "attempting_contact"), sources=("webinar",))) == {assigned, attempting}
    assert ids(LeadFilter(campaigns=("q1",), teams=("east",))) == {attempting}
    assert ids(LeadFilter(owners=(leadquery.UNOWNED,))) == {new}
    assert ids(LeadFilter(owners=(leadquery.UNOWNED, "ana"))) == {new, assigned}
    with pytest.raises(Invalid, match="status: unknown status 'nope'"):
        ids(LeadFilter(statuses=("nope",)))


def test_age_sla_and_stale_filters(org: App, clock: FixedClock) -> None:
    old = lead(org, "old1", owner="ana")  # Assigned: a first-contact SLA clock of 2 business hours starts
    clock.advance(timedelta(days=2))  # Wednesday (Thursday is Thanksgiving on the default US calendar)
    fresh = lead(org, "fresh1", owner="ana")
    scope = scope_for(org, "oscar")

    def ids(where: LeadFilter) -> set[str]:
        return {row["id"] for row in leadquery.find_leads(org, scope, where).rows}

    assert ids(LeadFilter(in_status_longer_than=timedelta(days=1))) == {old}
    assert ids(LeadFilter(sla="breached")) == {old}  # its clock ran out (the sweep has not even run yet)
    assert ids(LeadFilter(sla="due_soon")) == {fresh}
    assert ids(LeadFilter(stale=True)) == {old}  # Assigned for more than its 24 h exit rule


def test_keyset_pages_cover_every_lead_once_in_each_order(org: App, clock: FixedClock) -> None:
    made = []
    for i in range(23):
        made.append(lead(org, f"p{i:02d}", owner="ana" if i % 2 else None))
        clock.advance(timedelta(minutes=7 * (i % 3) + 1))
    scope = scope_for(org, "oscar")
    for sort in leadquery.SORTS:
        seen: list[str] = []
        cursor = None
        while True:
            page = leadquery.find_leads(org, scope, LeadFilter(), sort=sort, cursor=cursor, limit=5)
            seen.extend(row["id"] for row in page.rows)
            assert page.count == 23 and not page.count_capped
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(made), sort
        assert len(seen) == len(set(seen)), sort
    newest = [r["id"] for r in leadquery.find_leads(org, scope, LeadFilter(), sort="newest", limit=3).rows]
    assert newest == sorted(made, reverse=True)[:3]
    with pytest.raises(Invalid, match="cursor"):
        leadquery.find_leads(org, scope, LeadFilter(), cursor="not-a-cursor!")


def test_the_count_stops_at_its_cap(org: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leadquery, "COUNT_CAP", 3)
    for i in range(5):
        lead(org, f"c{i}")
    page = leadquery.find_leads(org, scope_for(org, "oscar"), LeadFilter())
    assert (page.count, page.count_capped) == (3, True)


def test_saved_views_keep_only_list_filters_per_person(org: App) -> None:
    saved = views.save_view(org, user="ana", name="  My  stale ", query="status=working&stale=1&evil=x&sort=oldest")
    assert saved["name"] == "My stale" and saved["query"] == "status=working&stale=1&sort=oldest"
    views.save_view(org, user="ana", name="My stale", query="status=nurture")  # same name: replaced
    assert [v["query"] for v in views.list_views(org, user="ana")] == ["status=nurture"]
    assert views.list_views(org, user="ben") == []
    with pytest.raises(NotFound):
        views.delete_view(org, user="ben", view_id=views.list_views(org, user="ana")[0]["id"])
