"""Manager review of status changes (seed 000's governance practices): list a team's changes, judge each one
"ok" or "wrong usage", and spot-check a stratified random sample of each rep's changes every month.

Who may do what, here and nowhere else: ops see and judge every change; a manager sees and judges the changes
of the reps in the teams they manage (`teams.manager`), never their own; a rep sees the changes they are
accountable for and the verdicts on them; integrations see nothing. A verdict is recorded in `reviews` (it
judges a ledger entry; it is not a change to the lead); "wrong usage" puts a notification with the status's
guide text in the rep's inbox. The web app's My work calls these functions as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select

from leadledger.analytics import governance_review as read
from leadledger.domain.changes import Actor
from leadledger.model.guide import status_guide_text
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid, NotFound
from leadledger.services.people import SYSTEM, resolve_actor
from leadledger.store.tables import ledger, notifications, teams, users
from leadledger.store.tables_governance import VERDICTS, review_sample_items, review_samples, reviews

NOTE_MAX = 4000
PAGE_MAX = 5000
PER_REP_MAX = 200
MONTH = re.compile(r"^(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])$")  # 1970-01 to 2199-12
EARLIEST, LATEST = date(1970, 1, 1), date(2199, 12, 31)


def check_period(date_from: date | None, date_to: date | None) -> None:
    """Dates between 1970 and 2199, in order (a period past year 9999 cannot even be computed)."""
    for name, day in (("--from", date_from), ("--to", date_to)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise Invalid(f"{name} must lie between {EARLIEST} and {LATEST}")
    if date_from is not None and date_to is not None and date_to < date_from:
        raise Invalid("--to must not be before --from")


@dataclass(frozen=True)
class Scope:
    """What an actor may review: every team (ops: `teams` None), some teams (a manager), or one rep's own."""

    who: Actor
    teams: tuple[str, ...] | None
    rep: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"actor": self.who.name, "role": self.who.role, "teams": self.teams, "rep": self.rep}


def managed_teams(conn: Connection, manager: str) -> tuple[str, ...]:
    return tuple(
        r[0] for r in conn.execute(select(teams.c.name).where(teams.c.manager == manager).order_by(teams.c.name))
    )


def review_scope(conn: Connection, actor: str) -> Scope:
    who = resolve_actor(conn, actor)
    if who.role == "ops":
        return Scope(who, None)
    if who.role == "manager":
        return Scope(who, managed_teams(conn, who.name))
    if who.role == "rep":
        return Scope(who, None, rep=who.name)
    raise Forbidden(f"{who.name} is an {who.role} user; reviews are for managers, ops and the reps reviewed")


def _narrow(scope: Scope, team: str | None, rep: str | None) -> read.ChangeFilter:
    """The scope, narrowed by the --team / --rep asked for; asking beyond one's scope is refused."""
    if scope.rep is not None:
        if rep not in (None, scope.rep) or team is not None:
            raise Forbidden(f"{scope.who.name} is a rep and sees only the changes they are accountable for")
        return read.ChangeFilter(rep=scope.rep)
    if scope.teams is None:
        return read.ChangeFilter(teams=(team,) if team else None, rep=rep)
    if not scope.teams:
        raise Forbidden(f"{scope.who.name} manages no team (`leadledger team add T --manager {scope.who.name}`)")
    if team is not None and team not in scope.teams:
        raise Forbidden(f"{scope.who.name} does not manage team {team!r} (manages {', '.join(scope.teams)})")
    return read.ChangeFilter(teams=(team,) if team else scope.teams, rep=rep)


def _family(app: App, status: str | None) -> tuple[str, ...]:
    if status is None:
        return ()
    model = app.loaded_model().model
    if status not in model.statuses:
        raise Invalid(f"unknown status {status!r}")
    return (status, *model.children.get(status, ()))


# --- the list of changes ----------------------------------------------------------------------------------


def list_transitions(
    app: App,
    *,
    actor: str,
    team: str | None = None,
    rep: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    status: str | None = None,
    overrides_only: bool = False,
    unreviewed: bool = False,
    sample_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> dict[str, Any]:
    """The status changes in the actor's scope, oldest first, with actor, rule, reason, note, the time the lead
    had spent in the status it left, and the latest verdict (if any). `total` counts every match."""
    if not 1 <= limit <= PAGE_MAX or offset < 0:
        raise Invalid(f"limit is 1 to {PAGE_MAX} and offset is not negative")
    check_period(date_from, date_to)
    with app.db.read() as conn:
        scope = review_scope(conn, actor)
        selection = _narrow(scope, team, rep)
        ids = None
        if sample_id is not None:
            sample = _sample_row(conn, sample_id)
            if scope.teams is not None and scope.rep is None and sample.manager != scope.who.name:
                raise Forbidden(f"sample #{sample_id} is {sample.manager}'s")
            ids = tuple(int(r[0]) for r in conn.execute(
                select(review_sample_items.c.entry_id).where(review_sample_items.c.sample_id == sample_id)))  # fmt: skip
            selection = read.ChangeFilter(rep=scope.rep, entry_ids=ids)  # the sample was drawn within its scope
    selection = read.ChangeFilter(
        teams=selection.teams,
        rep=selection.rep,
        statuses=_family(app, status),
        overrides_only=overrides_only,
        entry_ids=selection.entry_ids,
    )
    with read.governance_query(app, date_from=date_from, date_to=date_to) as q:
        if unreviewed:
            total, rows = read.changes(q, selection)
            judged = _latest_verdicts(app, [r["entry"] for r in rows])
            rows = [r for r in rows if r["entry"] not in judged]
            total, rows = len(rows), rows[offset : offset + limit]
        else:
            total, rows = read.changes(q, selection, limit=limit, offset=offset)
    verdicts = _latest_verdicts(app, [r["entry"] for r in rows])
    notes = _notes(app, [r["entry"] for r in rows])
    for row in rows:
        row["note"] = notes.get(row["entry"])
        row["verdict"] = verdicts.get(row["entry"])
    return {"scope": scope.describe(), "total": total, "offset": offset, "changes": rows}


def _latest_verdicts(app: App, entry_ids: list[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    with app.db.read() as conn:
        for start in range(0, len(entry_ids), 900):
            part = entry_ids[start : start + 900]
            for row in conn.execute(
                select(reviews).where(reviews.c.entry_id.in_(part)).order_by(reviews.c.id)
            ):  # later rows overwrite earlier ones: the latest verdict counts
                out[row.entry_id] = {
                    "verdict": row.verdict,
                    "note": row.note,
                    "reviewer": row.reviewer,
                    "reviewed_at": row.reviewed_at,
                }
    return out


def _notes(app: App, entry_ids: list[int]) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    with app.db.read() as conn:
        for start in range(0, len(entry_ids), 900):
            part = entry_ids[start : start + 900]
            for row in conn.execute(select(ledger.c.id, ledger.c.note).where(ledger.c.id.in_(part))):
                out[int(row.id)] = row.note
    return out


# --- verdicts ------------------------------------------------------------------------------------------


def _accountable(conn: Connection, entry: Any) -> tuple[str | None, str | None]:
    """(rep, their team) accountable for a change: its actor if a rep, else the lead's owner after it."""
    rep = entry.actor if entry.actor_role == "rep" else entry.to_owner
    if rep is None:
        return None, None
    team = conn.execute(select(users.c.team).where(users.c.name == rep)).scalar()
    return rep, team


def record_verdict(app: App, *, actor: str, entry_id: int, verdict: str, note: str | None = None) -> dict[str, Any]:
    """Judge one status change "ok" or "wrong_usage" (a note is required for wrong usage: it is the feedback).

    Recorded in `reviews` with the reviewer and the time; the latest verdict on an entry counts. Wrong usage
    notifies the accountable rep with the guide text of the status they moved the lead to."""
    verdict = verdict.replace("-", "_").strip().lower()
    if verdict not in VERDICTS:
        raise Invalid(f"a verdict is one of {', '.join(VERDICTS)}, not {verdict!r}")
    note = (note or "").strip() or None
    if note is not None and (len(note) > NOTE_MAX or "\x00" in note):
        raise Invalid(f"a note has at most {NOTE_MAX} characters and no NUL")
    if verdict == "wrong_usage" and note is None:
        raise Invalid("say what was wrong: a wrong-usage verdict needs a note (it is the rep's feedback)")
    now = app.clock.now()
    model = app.loaded_model().model
    with app.db.write() as conn:
        scope = review_scope(conn, actor)
        if scope.rep is not None:
            raise Forbidden(f"{scope.who.name} is a rep; managers and ops give verdicts")
        entry = conn.execute(select(ledger).where(ledger.c.id == entry_id)).first()
        if entry is None:
            raise NotFound(f"no ledger entry #{entry_id}")
        if entry.kind != "change" or entry.from_status == entry.to_status:
            raise Invalid(f"entry #{entry_id} is not a status change; reviews judge status changes")
        if entry.actor == scope.who.name:
            raise Forbidden("a change is reviewed by someone else than the person who made it")
        rep, team = _accountable(conn, entry)
        if scope.teams is not None and team not in scope.teams:
            raise Forbidden(f"{scope.who.name} does not manage the team of this change ({team or 'no team'})")
        result = conn.execute(
            insert(reviews).values(
                entry_id=entry_id,
                lead_id=entry.lead_id,
                entry_at=entry.at,
                rep=rep,
                team=team,
                from_status=entry.from_status,
                to_status=entry.to_status,
                verdict=verdict,
                note=note,
                reviewer=scope.who.name,
                reviewed_at=now,
            )
        )
        assert result.inserted_primary_key is not None
        notified = None
        if verdict == "wrong_usage" and rep is not None and rep != SYSTEM.name:
            message = (
                f"{scope.who.name} reviewed your change of lead {entry.lead_id} from {entry.from_status} to "
                f"{entry.to_status} ({entry.at:%Y-%m-%d %H:%M} UTC) as wrong usage: {note}\n\n"
                f"Status guide - {status_guide_text(model, entry.to_status)}"
            )
            conn.execute(
                insert(notifications).values(
                    recipient=rep,
                    lead_id=entry.lead_id,
                    kind="review",
                    message=message[: NOTE_MAX * 2],
                    created_at=now,
                )
            )
            notified = rep
    return {
        "review": int(result.inserted_primary_key[0]),
        "entry": entry_id,
        "lead": entry.lead_id,
        "rep": rep,
        "team": team,
        "verdict": verdict,
        "note": note,
        "reviewer": scope.who.name,
        "reviewed_at": now,
        "notified": notified,
    }


# --- monthly spot-checks -------------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[date, date]:
    """'2026-11' -> (first day, last day) of that month."""
    found = MONTH.match(month or "")
    if not found:
        raise Invalid(f"a month is written YYYY-MM between 1970-01 and 2199-12 (e.g. 2026-11), not {month!r}")
    first = date(int(found.group(1)), int(found.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def previous_month(moment: datetime) -> str:
    first = moment.astimezone(UTC).date().replace(day=1)
    last = first - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _sample_row(conn: Connection, sample_id: int) -> Any:
    row = conn.execute(select(review_samples).where(review_samples.c.id == sample_id)).first()
    if row is None:
        raise NotFound(f"no review sample #{sample_id}")
    return row


def draw_sample(
    app: App,
    *,
    actor: str,
    month: str,
    per_rep: int = 10,
    manager: str | None = None,
    seed: str | None = None,
) -> dict[str, Any]:
    """The month's spot-check for a manager (default: the actor): `per_rep` of each rep's own status changes,
    stratified by the status they moved leads to, drawn with a seed so the same month gives the same sample.

    Stored once per month and manager: asking again returns the stored sample (verdicts stay attached).
    Ops may draw it for any manager; a manager for themselves."""
    first, last = month_bounds(month)
    if not 1 <= per_rep <= PER_REP_MAX:
        raise Invalid(f"--per-rep is 1 to {PER_REP_MAX}")
    if seed is not None and not (1 <= len(seed) <= 64 and seed.isprintable()):
        raise Invalid("a seed has 1 to 64 printable characters")
    with app.db.read() as conn:
        scope = review_scope(conn, actor)
        if scope.rep is not None:
            raise Forbidden(f"{scope.who.name} is a rep; spot-checks are drawn by managers and ops")
        target = manager or scope.who.name
        if scope.teams is not None and target != scope.who.name:
            raise Forbidden(f"{scope.who.name} may draw their own spot-check only")
        target_row = resolve_actor(conn, target)
        if target_row.role != "manager":
            raise Invalid(f"{target} is not a manager; a spot-check is drawn for a manager's teams")
        covered = managed_teams(conn, target)
        if not covered:
            raise Invalid(f"{target} manages no team")
        existing = conn.execute(
            select(review_samples.c.id).where(review_samples.c.month == month, review_samples.c.manager == target)
        ).scalar()
    if existing is not None:
        return sample_view(app, actor=actor, sample_id=int(existing))
    seed = seed or read.default_seed(month, target)
    with read.governance_query(app, date_from=first, date_to=last) as q:
        drawn = read.draw(q, read.ChangeFilter(teams=covered), per_rep=per_rep, seed=seed)
    now = app.clock.now()
    with app.db.write() as conn:
        again = conn.execute(
            select(review_samples.c.id).where(review_samples.c.month == month, review_samples.c.manager == target)
        ).scalar()
        if again is not None:  # drawn meanwhile by another process (the worker): theirs counts
            sample_id = int(again)
        else:
            result = conn.execute(
                insert(review_samples).values(
                    month=month,
                    manager=target,
                    teams=list(covered),
                    per_rep=per_rep,
                    seed=seed,
                    size=len(drawn),
                    created_at=now,
                    created_by=scope.who.name,
                )
            )
            assert result.inserted_primary_key is not None
            sample_id = int(result.inserted_primary_key[0])
            if drawn:
                conn.execute(
                    insert(review_sample_items),
                    [
                        {
                            "sample_id": sample_id,
                            "entry_id": d.change["entry"],
                            "lead_id": d.change["lead"],
                            "entry_at": d.change["at"],
                            "rep": d.change["rep"],
                            "team": d.change["team"],
                            "from_status": d.change["from_status"],
                            "to_status": d.change["to_status"],
                            "stratum_changes": d.stratum_changes,
                        }
                        for d in drawn
                    ],
                )
    return sample_view(app, actor=actor, sample_id=sample_id)


def sample_view(app: App, *, actor: str, sample_id: int) -> dict[str, Any]:
    """A stored sample: how it was drawn and its changes, each with its latest verdict."""
    with app.db.read() as conn:
        scope = review_scope(conn, actor)
        sample = _sample_row(conn, sample_id)
        if scope.rep is None and scope.teams is not None and sample.manager != scope.who.name:
            raise Forbidden(f"sample #{sample_id} is {sample.manager}'s")
        query = select(review_sample_items).where(review_sample_items.c.sample_id == sample_id)
        if scope.rep is not None:
            query = query.where(review_sample_items.c.rep == scope.rep)
        items = [
            r._asdict() for r in conn.execute(query.order_by(review_sample_items.c.rep, review_sample_items.c.entry_at))
        ]
    verdicts = _latest_verdicts(app, [int(i["entry_id"]) for i in items])
    per_rep: dict[str, dict[str, int]] = {}
    for item in items:
        item["verdict"] = verdicts.get(int(item["entry_id"]))
        counts = per_rep.setdefault(item["rep"], {"drawn": 0, "reviewed": 0, "ok": 0, "wrong_usage": 0})
        counts["drawn"] += 1
        if item["verdict"] is not None:
            counts["reviewed"] += 1
            counts[item["verdict"]["verdict"]] += 1
    return {
        "sample": sample.id,
        "month": sample.month,
        "manager": sample.manager,
        "teams": list(sample.teams),
        "per_rep": sample.per_rep,
        "seed": sample.seed,
        "size": sample.size,
        "created_at": sample.created_at,
        "created_by": sample.created_by,
        "reps": per_rep,
        "items": items,
    }


def list_samples(app: App, *, actor: str, month: str | None = None) -> list[dict[str, Any]]:
    """Samples in the actor's scope (ops: all; a manager: their own), newest first, with review progress."""
    with app.db.read() as conn:
        scope = review_scope(conn, actor)
        if scope.rep is not None:
            raise Forbidden(f"{scope.who.name} is a rep; samples belong to managers")
        query = select(review_samples).order_by(review_samples.c.month.desc(), review_samples.c.manager)
        if scope.teams is not None:
            query = query.where(review_samples.c.manager == scope.who.name)
        if month is not None:
            month_bounds(month)
            query = query.where(review_samples.c.month == month)
        rows = list(conn.execute(query))
        judged: dict[int, int] = dict(
            conn.execute(
                select(review_sample_items.c.sample_id, func.count(func.distinct(reviews.c.entry_id)))
                .join(reviews, reviews.c.entry_id == review_sample_items.c.entry_id)
                .group_by(review_sample_items.c.sample_id)
            ).all()
        )
    return [
        {
            "sample": r.id,
            "month": r.month,
            "manager": r.manager,
            "teams": list(r.teams),
            "per_rep": r.per_rep,
            "size": r.size,
            "reviewed": int(judged.get(r.id, 0)),
            "created_at": r.created_at,
            "created_by": r.created_by,
        }
        for r in rows
    ]


def monthly_samples(app: App, *, month: str, per_rep: int = 10) -> list[dict[str, Any]]:
    """The worker's job on the 1st: last month's sample for every manager with a team (drawn once), and an
    inbox item telling each manager it is ready."""
    with app.db.read() as conn:
        managers = [
            r[0]
            for r in conn.execute(
                select(teams.c.manager).where(teams.c.manager.is_not(None)).distinct().order_by(teams.c.manager)
            )
        ]
        active = {
            r[0] for r in conn.execute(select(users.c.name).where(users.c.active.is_(True), users.c.role == "manager"))
        }
        done = {r[0] for r in conn.execute(select(review_samples.c.manager).where(review_samples.c.month == month))}
    out = []
    for manager in managers:
        if manager not in active or manager in done:
            continue
        sample = draw_sample(app, actor=SYSTEM.name, month=month, per_rep=per_rep, manager=manager)
        with app.db.write() as conn:
            conn.execute(
                insert(notifications).values(
                    recipient=manager,
                    kind="review_sample",
                    message=(
                        f"Your spot-check for {month} is ready: {sample['size']} changes of your reps "
                        f"(`leadledger review transitions --sample {sample['sample']}`)."
                    ),
                    created_at=app.clock.now(),
                )
            )
        out.append({"manager": manager, "sample": sample["sample"], "size": sample["size"]})
    return out
