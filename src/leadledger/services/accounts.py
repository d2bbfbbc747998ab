"""Accounts: leads grouped by company, and seed 000's account-based review flag.

A lead's account is `domain.contacts.account_key`: its company name without case, accents, punctuation or
legal form ("Acme, Inc." and "ACME Incorporated" are one account), or, with no company, the domain of a work
e-mail address (never a free-mail provider's: gmail.com says nothing about a company).

Seed 000: "multiple leads from the same company all in Nurture -> flag for account-based review". An account is
flagged while it has at least two open leads (not won, lost or a data problem) and every one of them is in
Nurture (or a sub-status of it). The flag lasts (`account_flags`): raised once when the condition starts to
hold, cleared when it stops; a manager or ops may dismiss it, recorded with who and when, and a dismissed flag
stays down until the condition has ended and holds again.

The flag is computed by a worker step (`refresh_flags`, every round; `leadledger account refresh` once), not
at write time: it depends on every lead of an account, which the write path (one lead, hot, measured) does not
read, and bulk writers (imports, merges, the demo) change many accounts at once. It lags by one worker round.

The key is stored in `leads.account_key` (written by every writer through `domain.contacts.lead_keys`, indexed
with the status), so the condition, the list and an account's page are GROUP BY queries: nothing reads every
lead into Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, literal, not_, select, update

from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, NotFound
from leadledger.services.people import resolve_actor
from leadledger.services.visibility import LeadScope, scope_in
from leadledger.store.tables import leads
from leadledger.store.tables_marketing import account_flags

CLOSED_CATEGORIES = frozenset({"won", "lost", "data_problem"})
REVIEW_FAMILY = "nurture"
MIN_LEADS = 2
DISMISSERS = ("manager", "ops")
MEMBER_COLUMNS = ("id", "name", "email", "company", "status", "reason", "owner")


def _closed(model: StatusModel) -> list[str]:
    """Statuses whose leads do not count (won, lost, data problems); a status the model lacks counts as open."""
    return sorted(k for k, s in model.statuses.items() if s.category in CLOSED_CATEGORIES)


def _review_family(model: StatusModel) -> list[str]:
    """Nurture and its sub-statuses."""
    return sorted(k for k, s in model.statuses.items() if (s.parent or k) == REVIEW_FAMILY)


def _counted(model: StatusModel) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Per account (grouped rows of `leads`): its open leads, and its open leads outside Nurture."""
    open_ = not_(leads.c.status.in_(_closed(model)))
    nurture = leads.c.status.in_(_review_family(model))
    return (
        func.sum(case((open_, 1), else_=0)),
        func.sum(case((and_(open_, not_(nurture)), 1), else_=0)),
    )


def meeting_accounts(conn: Any, model: StatusModel) -> dict[str, int]:
    """Seed 000's condition, grouped in SQL on the indexed `leads.account_key`: the accounts whose open leads (two
    or more) are all in Nurture, with how many open leads each has."""
    open_count, elsewhere = _counted(model)
    query = (
        select(leads.c.account_key, open_count)
        .where(leads.c.account_key.is_not(None))
        .group_by(leads.c.account_key)
        .having(and_(open_count >= MIN_LEADS, elsewhere == 0))
    )
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def refresh_flags(app: App) -> dict[str, int]:
    """Raise the flag of every account that now meets the condition, clear those that no longer do (one
    transaction). What changed: {"raised", "cleared", "flagged"}."""
    model = app.loaded_model().model
    now = app.clock.now()
    with app.db.write() as conn:
        meeting = meeting_accounts(conn, model)
        live = {row.account: row.id for row in conn.execute(
            select(account_flags.c.account, account_flags.c.id).where(account_flags.c.cleared_at.is_(None)))}  # fmt: skip
        ended = sorted(flag for account, flag in live.items() if account not in meeting)
        if ended:
            conn.execute(update(account_flags).where(account_flags.c.id.in_(ended)).values(cleared_at=now))
        new = [{"account": k, "raised_at": now, "leads": n} for k, n in sorted(meeting.items()) if k not in live]
        if new:
            conn.execute(insert(account_flags), new)
        flagged = conn.execute(
            select(func.count()).select_from(account_flags)
            .where(account_flags.c.cleared_at.is_(None), account_flags.c.dismissed_at.is_(None))
        ).scalar_one()  # fmt: skip
    return {"raised": len(new), "cleared": len(ended), "flagged": int(flagged)}


def _flags(conn: Any, keys: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The live (not cleared) flag of each account (of `keys` when given), raised or dismissed."""
    query = select(account_flags).where(account_flags.c.cleared_at.is_(None))
    if keys is not None:
        query = query.where(account_flags.c.account.in_(keys))
    return {row.account: row._asdict() for row in conn.execute(query)}


def _raised() -> Any:
    """The accounts whose flag is up now (raised, not cleared, not dismissed)."""
    return select(account_flags.c.account).where(
        account_flags.c.cleared_at.is_(None), account_flags.c.dismissed_at.is_(None)
    )


def _summary(key: str, company: str | None, statuses: dict[str, int], flag: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "key": key,
        "company": company,
        "leads": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "flagged": flag is not None and flag["dismissed_at"] is None,
        "raised_at": flag["raised_at"] if flag else None,
        "dismissed_at": flag["dismissed_at"] if flag else None,
        "dismissed_by": flag["dismissed_by"] if flag else None,
    }


def _grouped(conn: Any, scope: LeadScope, keys: list[str]) -> list[dict[str, Any]]:
    """Each of `keys` summarised from the leads the scope sees: one GROUP BY over (account, status)."""
    if not keys:
        return []
    company = func.min(func.nullif(leads.c.company, literal("")))
    rows = conn.execute(
        select(leads.c.account_key, leads.c.status, func.count(), company)
        .where(leads.c.account_key.in_(keys), scope.where())
        .group_by(leads.c.account_key, leads.c.status)
    ).all()
    statuses: dict[str, dict[str, int]] = {k: {} for k in keys}
    companies: dict[str, list[str]] = {k: [] for k in keys}
    for key, status, n, name in rows:
        statuses[key][status] = int(n)
        if name:
            companies[key].append(name)
    flags = _flags(conn, keys)
    return [_summary(k, min(companies[k], default=None), statuses[k], flags.get(k)) for k in keys]


def list_accounts(
    app: App, *, actor: str, flagged: bool | None = None, after: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The accounts with a lead the actor may see (a rep their leads, a manager their teams', ops all), by key,
    each with the visible leads' count per status and its review flag; `flagged`: only those flagged (True) or
    only those not (False); `after` / `limit`: the page after that key."""
    with app.db.read() as conn:
        scope = scope_in(conn, resolve_actor(conn, actor))
        query = select(leads.c.account_key).distinct().where(leads.c.account_key.is_not(None), scope.where())
        if after is not None:
            query = query.where(leads.c.account_key > after)
        if flagged is True:
            query = query.where(leads.c.account_key.in_(_raised()))
        elif flagged is False:
            query = query.where(leads.c.account_key.not_in(_raised()))
        query = query.order_by(leads.c.account_key)
        if limit is not None:
            query = query.limit(limit)
        keys = [row[0] for row in conn.execute(query)]
        return _grouped(conn, scope, keys)


def show_account(app: App, key: str, *, actor: str) -> dict[str, Any]:
    """One account: its flag and the leads of it the actor may see (by id), with their status."""
    with app.db.read() as conn:
        scope = scope_in(conn, resolve_actor(conn, actor))
        members = conn.execute(
            select(*(leads.c[c] for c in MEMBER_COLUMNS))
            .where(leads.c.account_key == key, scope.where())
            .order_by(leads.c.id)
        ).all()  # fmt: skip
        if not members:
            raise NotFound(f"account: no account {key!r} among the leads you may see")
        (summary,) = _grouped(conn, scope, [key])
    return {**summary, "members": [row._asdict() for row in members]}


def _visible(conn: Any, scope: LeadScope, key: str) -> bool:
    found = conn.execute(select(leads.c.id).where(leads.c.account_key == key, scope.where()).limit(1)).first()
    return found is not None


def dismiss_flag(app: App, key: str, *, actor: str) -> dict[str, Any]:
    """A manager or ops takes the account's review flag down (recorded); it stays down while the condition lasts."""
    now = app.clock.now()
    with app.db.write() as conn:
        who = resolve_actor(conn, actor)
        if who.role not in DISMISSERS:
            raise Forbidden("only a manager or ops may dismiss an account's review flag")
        if not _visible(conn, scope_in(conn, who), key):  # a manager decides for accounts of their teams
            raise NotFound(f"account: no account {key!r} among the leads you may see")
        result = conn.execute(
            update(account_flags)
            .where(account_flags.c.account == key, account_flags.c.cleared_at.is_(None),
                   account_flags.c.dismissed_at.is_(None))
            .values(dismissed_at=now, dismissed_by=who.name)
        )  # fmt: skip
        if result.rowcount != 1:
            raise NotFound(f"account: {key!r} has no raised review flag")
    return {"key": key, "dismissed_at": now, "dismissed_by": who.name}


def flagged_accounts(app: App) -> set[str]:
    """The keys of the accounts flagged for review now."""
    with app.db.read() as conn:
        return {row[0] for row in conn.execute(_raised())}
