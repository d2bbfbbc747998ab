"""Realistic demo data: people, teams, sources and lead histories drawn from the seeds' rates and durations.

Seed 000's tables drive it: New -> Attempting ~100 %, Attempting -> Connected 30-50 %, Connected -> Qualified
40-60 %, Qualified -> Converted 70-85 %; New < 4 h, Attempting 3-7 d, Connected 5-10 d, Working 14-21 d,
Qualified 1-3 d. Every generated move is one the default model allows, with the data its entry rule needs
(a test replays demo histories through the engine to prove it). The same seed gives the same data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.services.history import LeadHistory, write_histories
from leadledger.store import repository as repo
from leadledger.store.tables import leads as leads_table

TEAMS = (("sdr-east", "default", "maria"), ("sdr-emea", "emea", "jonas"), ("ae", "default", "maria"))
MANAGERS = (("maria", "manager", None), ("jonas", "manager", None), ("marketing", "manager", None))
REPS = (
    ("ana", "sdr-east"), ("ben", "sdr-east"), ("carla", "sdr-east"), ("dev", "sdr-east"),
    ("elif", "sdr-emea"), ("frank", "sdr-emea"), ("greta", "sdr-emea"), ("hugo", "sdr-emea"),
)  # fmt: skip
AES = (("ines", "ae"), ("jamal", "ae"), ("kofi", "ae"))

# source: (weight, connect rate, qualify rate, campaigns); quality differs by source as it does in life
SOURCES: dict[str, tuple[float, float, float, tuple[str, ...]]] = {
    "web_form": (0.24, 0.46, 0.55, ("pricing-page", "demo-request")),
    "webinar": (0.12, 0.40, 0.45, ("webinar-q1", "webinar-q2")),
    "paid_search": (0.16, 0.33, 0.40, ("brand-search", "competitor-search")),
    "linkedin": (0.12, 0.36, 0.45, ("linkedin-abm",)),
    "referral": (0.08, 0.55, 0.62, ("partner-referral",)),
    "content_download": (0.14, 0.30, 0.38, ("ebook-status", "checklist")),
    "event": (0.08, 0.42, 0.50, ("trade-show",)),
    "list_import": (0.06, 0.25, 0.30, ("purchased-list",)),
}
FIRST = ("Alex", "Maya", "Noah", "Lea", "Omar", "Sofia", "Liam", "Yuki", "Ivan", "Zoe", "Raj", "Emma", "Luca", "Aisha")
LAST = ("Smith", "Garcia", "Müller", "Kowalski", "Okafor", "Tanaka", "Rossi", "Dubois", "Larsen", "Silva", "Novak")
COMPANY = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell")
SUFFIX = ("Inc", "GmbH", "Ltd", "LLC", "SA", "BV")
TERRITORIES = ("NA-East", "NA-West", "EMEA-North", "EMEA-South")
DISQ = ("budget", "no_authority", "competitor", "wrong_fit", "not_interested", "bad_timing")
NURTURE = ("bad_timing", "budget", "not_ready", "needs_education", "gone_cold")
REJECT = ("poor_fit", "not_ready", "wrong_role", "already_customer")
HOUR = 3600.0
DAY = 86400.0


@dataclass
class _Sim:
    """One lead's history under construction."""

    rng: random.Random
    lead_id: str
    t: float  # epoch seconds of the last event
    status: str
    stage: str
    owner: str | None
    entries: list[dict[str, Any]]
    activities: list[dict[str, Any]]

    def move(
        self,
        dt: float,
        *,
        actor: str,
        role: str,
        source: str,
        status: str | None = None,
        stage: str | None = None,
        owner: str | None = None,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
        rule: str | None = None,
        override_of_seq: int | None = None,
        override_rule: str | None = None,
    ) -> None:
        self.t += max(dt, 1.0)
        entry: dict[str, Any] = {
            "at": _dt(self.t), "actor": actor, "actor_role": role, "source": source,
            "from_status": self.status, "to_status": status or self.status,
            "from_stage": self.stage, "to_stage": stage or self.stage,
            "from_owner": self.owner, "to_owner": owner if owner is not None else self.owner,
            "reason": reason, "data": data, "rule": rule,
            "override_of_seq": override_of_seq, "override_rule": override_rule,
        }  # fmt: skip
        self.entries.append(entry)
        self.status, self.stage = entry["to_status"], entry["to_stage"]
        self.owner = entry["to_owner"]

    def log(self, dt: float, kind: str, actor: str | None, **data: Any) -> None:
        self.t += max(dt, 1.0)
        self.activities.append(
            {"type": kind, "at": _dt(self.t), "actor": actor, "source": "manual", "data": data or None}
        )


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _uniform_days(rng: random.Random, low: float, high: float, tail: float = 0.15) -> float:
    """Mostly inside the seed's range, sometimes beyond it (real pipelines have stragglers)."""
    if rng.random() < tail:
        return rng.uniform(high, high * 2.5) * DAY
    return rng.uniform(low, high) * DAY


def _simulate(rng: random.Random, lead_id: str, created: float, now: float, source: str) -> _Sim | None:
    _, connect_rate, qualify_rate, _ = SOURCES[source]
    stage = "mql" if source in ("web_form", "webinar", "referral", "event") else "lead"
    sim = _Sim(rng, lead_id, created, "", "", None, [], [])
    sim.entries.append({
        "at": _dt(created), "kind": "created", "actor": "system", "actor_role": "ops",
        "source": "integration" if source != "list_import" else "import",
        "from_status": None, "to_status": "new", "from_stage": None, "to_stage": stage,
        "from_owner": None, "to_owner": None, "reason": None, "data": None, "rule": None,
    })  # fmt: skip
    sim.status, sim.stage = "new", stage
    team_reps = REPS[:4] if rng.random() < 0.6 else REPS[4:]
    rep = rng.choice(team_reps)[0]

    def before_now(dt: float) -> bool:
        return sim.t + dt < now

    # routing: New -> Assigned (minutes to hours; a few wait too long)
    wait = rng.uniform(0.05, 3.5) * HOUR if rng.random() < 0.93 else rng.uniform(6, 40) * HOUR
    if not before_now(wait):
        return sim
    sim.move(wait, actor="system", role="ops", source="automation", status="assigned", owner=rep, rule="route_new_lead")

    roll = rng.random()
    if roll < 0.015:  # data problems show up at first touch
        if before_now(HOUR):
            sim.move(
                rng.uniform(0.2, 4) * HOUR,
                actor=rep,
                role="rep",
                source="manual",
                status="invalid",
                reason=rng.choice(("bad_email", "bad_phone", "spam")),
                data={"invalid_detail": "bounced"},
            )
        return sim
    if roll < 0.027:
        if before_now(HOUR):
            sim.move(
                rng.uniform(0.2, 4) * HOUR,
                actor=rep,
                role="rep",
                source="manual",
                status="duplicate",
                reason="duplicate",
                data={"duplicate_of": f"{lead_id[:-3]}000"},
            )
        return sim
    if roll < 0.06:  # sales rejects the handoff
        if before_now(4 * HOUR):
            sim.move(
                rng.uniform(0.5, 6) * HOUR,
                actor=rep,
                role="rep",
                source="manual",
                status="rejected",
                reason=rng.choice(REJECT),
            )
        return sim
    if roll < 0.068:  # never touched: routing is broken for some (health check shows it)
        return sim

    # first outreach: Assigned -> Attempting Contact (automation on the first email)
    first = rng.uniform(0.2, 3.0) * HOUR
    if not before_now(first):
        return sim
    sim.log(first, "email_sent", rep)
    sim.move(
        60,
        actor="system",
        role="ops",
        source="automation",
        status="attempting_contact",
        rule="first_email_sent",
        data={"next_follow_up_at": _dt(sim.t + 2 * DAY).isoformat()},
    )
    attempting = _uniform_days(rng, 3, 7)
    if rng.random() >= connect_rate:
        # 8-10 attempts without connection -> Nurture or Disqualified
        attempts = rng.randint(6, 10)
        for _ in range(attempts):
            if not before_now(attempting / attempts):
                return sim
            sim.log(attempting / attempts, rng.choice(("call_logged", "email_sent")), rep, outcome="no_answer")
        if not before_now(HOUR):
            return sim
        if rng.random() < 0.55:
            _nurture(sim, rep, "no_response", now)
        else:
            sim.move(
                HOUR,
                actor=rep,
                role="rep",
                source="manual",
                status="disqualified",
                reason="no_response",
                data={"disqualification_notes": f"{attempts} attempts, no answer"},
            )
        return sim
    # a reply: Connected (automation on the reply); a few replies are unsubscribes a rep must override
    if not before_now(attempting):
        return sim
    sim.log(attempting, "email_replied", None, classification="positive")
    sim.move(
        120,
        actor="system",
        role="ops",
        source="automation",
        status="connected",
        rule="email_reply_connects",
        data={"next_steps": "book discovery call"},
    )
    if rng.random() < 0.04:
        seq = len(sim.entries)
        if before_now(2 * HOUR):
            sim.log(rng.uniform(0.5, 2) * HOUR, "email_sent", rep)  # the rep writes back, then undoes the rule
            sim.move(
                60,
                actor=rep,
                role="rep",
                source="manual",
                status="attempting_contact",
                override_of_seq=seq,
                override_rule="email_reply_connects",
            )
        return sim
    if sim.stage == "lead" and before_now(HOUR):
        sim.move(HOUR, actor=rep, role="rep", source="manual", stage="mql")
    connected = _uniform_days(rng, 5, 10)
    if not before_now(connected):
        return sim
    if sim.stage == "mql":
        sim.move(connected * 0.3, actor=rep, role="rep", source="manual", stage="sal")
    qualifies = rng.random() < qualify_rate
    if rng.random() < 0.8:  # most go through Working (meeting held)
        sim.log(connected * 0.7, "meeting_held", rep)
        sim.move(
            300,
            actor="system",
            role="ops",
            source="automation",
            status="working",
            rule="meeting_held_working",
            data={"need": "status visibility", "timeline": "this quarter"},
        )
        working = _uniform_days(rng, 14, 21)
        if not qualifies and rng.random() < 0.25:
            # stale: no activity for 30 days -> Stale - Review Required, and if nobody acts, Disqualified
            if not before_now(30 * DAY):
                return sim
            sim.move(
                30 * DAY,
                actor="system",
                role="ops",
                source="time_rule",
                status="stale_review",
                reason="no_response",
                rule="working_stale_30d",
            )
            if not before_now(14 * DAY):
                return sim
            if rng.random() < 0.5:
                sim.move(
                    14 * DAY,
                    actor="system",
                    role="ops",
                    source="time_rule",
                    status="disqualified",
                    reason="no_response",
                    rule="stale_review_no_response",
                )
            else:
                sim.log(rng.uniform(1, 10) * DAY, "call_logged", rep, outcome="connected")
                # back to Working after review: the engine records it as an override of the stale rule
                sim.move(
                    HOUR,
                    actor=rep,
                    role="rep",
                    source="manual",
                    status="working",
                    override_of_seq=len(sim.entries),
                    override_rule="working_stale_30d",
                )
                _lose(sim, rep, now, _uniform_days(rng, 5, 15))
            return sim
        if not before_now(working):
            return sim
        for _ in range(rng.randint(1, 3)):
            sim.log(working / 4, rng.choice(("call_logged", "meeting_held", "email_sent")), rep, outcome="connected")
        sim.t += working / 4
    elif not before_now(connected * 0.7):
        return sim
    else:
        sim.t += connected * 0.7
    if not qualifies:
        _lose(sim, rep, now, DAY)
        return sim
    sim.move(
        HOUR,
        actor=rep,
        role="rep",
        source="manual",
        status="qualified",
        stage="sql",
        reason="framework_met",
        data={"budget": "25-50k", "authority": "VP Sales", "need": "pipeline visibility", "timeline": "Q3"},
    )
    qualified = _uniform_days(rng, 1, 3, tail=0.1)
    if not before_now(qualified):
        return sim
    if rng.random() < 0.78:
        ae = rng.choice(AES)[0]
        value = round(rng.lognormvariate(10, 0.6), 2)
        sim.move(qualified, actor="system", role="ops", source="automation", status="converted", stage="opportunity",
                 owner=ae,
                 rule="opportunity_created", data={
                     "opportunity_id": f"OPP-{lead_id[-7:]}", "deal_value": value,
                     "expected_close_date": _dt(sim.t + 45 * DAY).date().isoformat()})  # fmt: skip
        won = rng.uniform(20, 90) * DAY
        if rng.random() < 0.3 and before_now(won):
            sim.move(won, actor=ae, role="rep", source="manual", stage="customer")
    else:
        _lose(sim, rep, now, qualified)
    return sim


def _lose(sim: _Sim, rep: str, now: float, dt: float) -> None:
    if sim.t + dt >= now:
        return
    if sim.rng.random() < 0.7 or sim.stage not in ("sal", "sql"):
        sim.move(
            dt,
            actor=rep,
            role="rep",
            source="manual",
            status="disqualified",
            reason=sim.rng.choice(DISQ),
            data={"disqualification_notes": "decided after discovery"},
        )
    else:
        _nurture(sim, rep, sim.rng.choice(NURTURE), now, back_to_mql=True)


def _nurture(sim: _Sim, rep: str, reason: str, now: float, back_to_mql: bool = False) -> None:
    rng = sim.rng
    re_evaluate = sim.t + rng.uniform(45, 120) * DAY
    data = {"re_evaluate_on": _dt(re_evaluate).date().isoformat(), "last_interaction_at": _dt(sim.t).isoformat()}
    stage = "mql" if back_to_mql or sim.stage in ("sal", "sql") else None
    sim.move(HOUR, actor=rep, role="rep", source="manual", status="nurture", stage=stage, reason=reason, data=data)
    # seed 000: Nurture -> ownership moves from the SDR to marketing
    sim.move(60, actor="system", role="ops", source="automation", owner="marketing", rule="nurture_to_marketing")
    # re-evaluation: some nurtured leads come back as Recycled, worked by a different rep (seed 000)
    if re_evaluate < now and rng.random() < 0.35:
        sim.t = re_evaluate
        sim.move(
            rng.uniform(1, 48) * HOUR,
            actor="system",
            role="ops",
            source="time_rule",
            status="recycled",
            reason="timing_window",
            rule="nurture_re_evaluation",
            data={"recycle_trigger": "re-evaluation date reached"},
        )
        fresh = rng.choice([r for r, _ in REPS if r != rep])
        if sim.t + DAY >= now:
            return
        sim.log(DAY, "email_sent", fresh)
        sim.move(
            60,
            actor="system",
            role="ops",
            source="automation",
            status="attempting_contact",
            owner=fresh,
            rule="first_email_sent",
        )
        if rng.random() < 0.12 and sim.t + 10 * DAY < now:  # a few recycled leads convert
            sim.log(5 * DAY, "call_logged", fresh, outcome="connected")
            sim.move(60, actor=fresh, role="rep", source="manual", status="connected", stage="sal")
            sim.move(
                5 * DAY,
                actor=fresh,
                role="rep",
                source="manual",
                status="qualified",
                stage="sql",
                data={"budget": "10k", "authority": "Head of Ops", "need": "visibility", "timeline": "Q4"},
            )
            sim.move(
                2 * DAY,
                actor="system",
                role="ops",
                source="automation",
                status="converted",
                stage="opportunity",
                owner="ines",
                rule="opportunity_created",
                data={
                    "opportunity_id": f"OPP-R-{sim.lead_id[-7:]}",
                    "deal_value": 12000.0,
                    "expected_close_date": _dt(sim.t + 30 * DAY).date().isoformat(),
                },
            )


def ensure_people(app: App) -> dict[str, str | None]:
    """The demo's teams and users (created once); returns owner -> team."""
    existing = {u["name"]: u for u in people.list_users(app)}
    for name, role, team in MANAGERS:
        if name not in existing:
            people.add_user(app, name=name, role=role, team=team)
    teams = {t["name"] for t in people.list_teams(app)}
    for team, calendar, manager in TEAMS:
        if team not in teams:
            people.add_team(app, name=team, calendar=calendar, manager=manager)
    for name, team in REPS + AES:
        if name not in existing:
            people.add_user(app, name=name, role="rep", team=team, email=f"{name}@example.com")
    return {u["name"]: u["team"] for u in people.list_users(app)}


def generate(
    app: App,
    *,
    leads: int,
    seed: int = 7,
    days: int = 180,
    chunk: int = 5000,
    progress: Callable[[int], None] | None = None,
    if_empty: bool = False,
) -> dict[str, Any]:
    """Write `leads` demo leads with histories spread over the last `days` days; returns counts and wall time."""
    if leads < 0 or days < 1:
        raise Invalid("--leads must be >= 0 and --days >= 1")
    started = time.perf_counter()
    app.loaded_model()  # fail early with a clear message when `init` was not run
    if if_empty:
        with app.db.read() as conn:
            if conn.execute(select(func.count()).select_from(leads_table)).scalar():
                return {"leads": 0, "entries": 0, "activities": 0, "seconds": 0.0, "skipped": True}
    owner_teams = ensure_people(app)
    rng = random.Random(seed)
    now = app.clock.now().timestamp()
    start = now - days * DAY
    names = list(SOURCES)
    weights = [SOURCES[s][0] for s in names]
    prefix = f"D{seed}-"
    with app.db.read() as conn:
        if repo.lead_row(conn, f"{prefix}{0:07d}") is not None:
            raise Invalid(f"demo data with seed {seed} is already in this database; use another --seed")
    total_entries = total_activities = 0
    for offset in range(0, leads, chunk):
        batch: list[LeadHistory] = []
        for n in range(offset, min(leads, offset + chunk)):
            lead_id = f"{prefix}{n:07d}"
            source = rng.choices(names, weights)[0]
            created = start + (now - start) * (rng.random() ** 0.8)  # more recent leads than old ones
            sim = _simulate(rng, lead_id, created, now, source)
            assert sim is not None
            # the simulation may step a little past `now`; the future has not happened yet
            cut = _dt(now)
            entries = [e for e in sim.entries if e["at"] <= cut]
            activities = [a for a in sim.activities if a["at"] <= cut]
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = f"{rng.choice(COMPANY)} {rng.choice(SUFFIX)}"
            email = f"{first}.{last}{n}@{company.split()[0].lower()}.example".lower()
            phone = f"+1202555{n % 10000:04d}" if rng.random() < 0.5 else None
            batch.append(LeadHistory(
                lead={"id": lead_id, "name": f"{first} {last}", "email": email, "phone": phone, "company": company,
                      "source": source, "campaign": rng.choice(SOURCES[source][3]),
                      "fields": {"territory": rng.choice(TERRITORIES),
                                 "estimated_value": round(rng.lognormvariate(9.5, 0.8), 2)}},
                entries=entries,
                activities=activities,
            ))  # fmt: skip
        with app.db.write() as conn:
            written, logged = write_histories(conn, batch, recorded_at=app.clock.now(), owner_teams=owner_teams)
        total_entries += written
        total_activities += logged
        if progress:
            progress(len(batch))
    return {
        "leads": leads,
        "entries": total_entries,
        "activities": total_activities,
        "seconds": time.perf_counter() - started,
        "skipped": False,
    }
