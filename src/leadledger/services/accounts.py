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
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from leadledger.domain.contacts import account_key
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


@dataclass(frozen=True)
class _Lead:
    id: str
    name: str | None
    email: str | None
    company: str | None
    status: str
    reason: str | None
    owner: str | None
    team: str | None


def _family(model: StatusModel, status: str) -> str:
    spec = model.statuses.get(status)
    return (spec.parent or status) if spec is not None else status


def _open(model: StatusModel, status: str) -> bool:
    spec = model.statuses.get(status)
    return spec is None or spec.category not in CLOSED_CATEGORIES


def needs_review(model: StatusModel, statuses: list[str]) -> bool:
    """Seed 000's condition on one account's lead statuses."""
    open_ = [s for s in statuses if _open(model, s)]
    return len(open_) >= MIN_LEADS and all(_family(model, s) == REVIEW_FAMILY for s in open_)


def _grouped(conn: Any, scope: LeadScope | None = None) -> dict[str, list[_Lead]]:
    query = select(leads.c.id, leads.c.name, leads.c.email, leads.c.company, leads.c.status, leads.c.reason,
                   leads.c.owner, leads.c.team).order_by(leads.c.id)  # fmt: skip
    if scope is not None:
        query = query.where(scope.where())
    found: dict[str, list[_Lead]] = defaultdict(list)
    for row in conn.execute(query):
        key = account_key(row.company, row.email)
        if key:
            found[key].append(_Lead(*row))
    return found


def refresh_flags(app: App) -> dict[str, int]:
    """Raise the flag of every account that now meets the condition, clear those that no longer do (one
    transaction). What changed: {"raised", "cleared", "flagged"}."""
    model = app.loaded_model().model
    now = app.clock.now()
    with app.db.write() as conn:
        accounts = _grouped(conn)
        meeting = {key: sum(_open(model, x.status) for x in members) for key, members in accounts.items()
                   if needs_review(model, [x.status for x in members])}  # fmt: skip
        live = {row.account: row.id for row in conn.execute(
            select(account_flags.c.account, account_flags.c.id).where(account_flags.c.cleared_at.is_(None)))}  # fmt: skip
        ended = sorted(flag for account, flag in live.items() if account not in meeting)
        if ended:
            conn.execute(update(account_flags).where(account_flags.c.id.in_(ended)).values(cleared_at=now))
        new = [{"account": k, "raised_at": now, "leads": n} for k, n in sorted(meeting.items()) if k not in live]
        if new:
            conn.execute(insert(account_flags), new)
        flagged = conn.execute(
            select(account_flags.c.id).where(account_flags.c.cleared_at.is_(None), account_flags.c.dismissed_at.is_(None))
        ).all()
    return {"raised": len(new), "cleared": len(ended), "flagged": len(flagged)}


def _flags(conn: Any) -> dict[str, dict[str, Any]]:
    """The live (not cleared) flag of each account, raised or dismissed."""
    rows = conn.execute(select(account_flags).where(account_flags.c.cleared_at.is_(None)))
    return {row.account: row._asdict() for row in rows}


def _summary(key: str, members: list[_Lead], flag: dict[str, Any] | None) -> dict[str, Any]:
    statuses: dict[str, int] = defaultdict(int)
    for lead in members:
        statuses[lead.status] += 1
    companies = sorted({m.company for m in members if m.company})
    return {
        "key": key,
        "company": companies[0] if companies else None,
        "leads": len(members),
        "statuses": dict(sorted(statuses.items())),
        "flagged": flag is not None and flag["dismissed_at"] is None,
        "raised_at": flag["raised_at"] if flag else None,
        "dismissed_at": flag["dismissed_at"] if flag else None,
        "dismissed_by": flag["dismissed_by"] if flag else None,
    }


def list_accounts(
    app: App, *, actor: str, flagged: bool | None = None, after: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The accounts with a lead the actor may see (a rep their leads, a manager their teams', ops all), by key,
    each with the visible leads' count per status and its review flag; `flagged`: only those flagged (True) or
    only those not (False); `after` / `limit`: the page after that key."""
    with app.db.read() as conn:
        scope = scope_in(conn, resolve_actor(conn, actor))
        accounts = _grouped(conn, scope)
        flags = _flags(conn)
    rows = [_summary(key, members, flags.get(key)) for key, members in sorted(accounts.items())
            if after is None or key > after]  # fmt: skip
    if flagged is not None:
        rows = [r for r in rows if r["flagged"] is flagged]
    return rows if limit is None else rows[:limit]


def show_account(app: App, key: str, *, actor: str) -> dict[str, Any]:
    """One account: its flag and the leads of it the actor may see, with their status."""
    with app.db.read() as conn:
        scope = scope_in(conn, resolve_actor(conn, actor))
        members = _grouped(conn, scope).get(key)
        flags = _flags(conn)
    if not members:
        raise NotFound(f"account: no account {key!r} among the leads you may see")
    return {
        **_summary(key, members, flags.get(key)),
        "members": [{k: getattr(m, k) for k in MEMBER_COLUMNS} for m in members],
    }


def dismiss_flag(app: App, key: str, *, actor: str) -> dict[str, Any]:
    """A manager or ops takes the account's review flag down (recorded); it stays down while the condition lasts."""
    now = app.clock.now()
    with app.db.write() as conn:
        who = resolve_actor(conn, actor)
        if who.role not in DISMISSERS:
            raise Forbidden("only a manager or ops may dismiss an account's review flag")
        if key not in _grouped(conn, scope_in(conn, who)):  # a manager decides for accounts of their teams
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
        return {a for a, f in _flags(conn).items() if f["dismissed_at"] is None}
