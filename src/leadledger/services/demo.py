"""Realistic demo data: people, teams, sources and lead histories drawn from the seeds' rates and durations.

Seed 000's tables drive it: New -> Attempting ~100 %, Attempting -> Connected 30-50 %, Connected -> Qualified
40-60 %, Qualified -> Converted 70-85 %; New < 4 h, Attempting 3-7 d, Connected 5-10 d, Working 14-21 d,
Qualified 1-3 d. Every generated move is one the default model allows, with the data its entry rule needs
(a test replays demo histories through the engine to prove it). The same seed gives the same data.

Speed (`leadledger demo --leads 1000000`): the simulation records table rows directly (times as epoch
seconds, turned into stored text once; JSON encoded once; the `leads` row folded as entries are
recorded, as `history.history_rows` folds a history). Leads are simulated in blocks with their own
random stream, so worker processes can simulate and pack chunks into SQLite images
(`history.sqlite_image`) while this process copies finished images in with `INSERT … SELECT`, one
transaction per chunk, in order. The data is the same with or without workers (a test checks it), and
memory stays flat: a few chunks in flight.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select

from leadledger.domain.contacts import email_key, phone_key
from leadledger.domain.timeline import Projection
from leadledger.services import people
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.services.history import (
    SQLITE_NULL,
    HistoryRows,
    insert_image,
    insert_rows,
    sqlite_image,
    stored_time,
)
from leadledger.store import chain
from leadledger.store import repository as repo
from leadledger.store.tables import LEDGER_COLUMNS
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
_T = TypeVar("_T")
HOUR = 3600.0
DAY = 86400.0
BLOCK = 1000  # leads per random stream: the unit of work, so any split across workers gives the same data
WORKERS_FROM = 20_000  # fewer leads than this are written in this process (starting workers costs ~1 s)

# JSON text of the `data` column, encoded once
_ENCODE = json.JSONEncoder(default=str).encode  # as SQLAlchemy's JSON type writes it
_NO_ANSWER = _ENCODE({"outcome": "no_answer"})
_CONNECTED = _ENCODE({"outcome": "connected"})
_POSITIVE = _ENCODE({"classification": "positive"})
_BOUNCED = _ENCODE({"invalid_detail": "bounced"})
_NEXT_STEPS = _ENCODE({"next_steps": "book discovery call"})
_MEETING = _ENCODE({"need": "status visibility", "timeline": "this quarter"})
_BANT = _ENCODE({"budget": "25-50k", "authority": "VP Sales", "need": "pipeline visibility", "timeline": "Q3"})
_BANT_RECYCLED = _ENCODE({"budget": "10k", "authority": "Head of Ops", "need": "visibility", "timeline": "Q4"})
_AFTER_DISCOVERY = _ENCODE({"disqualification_notes": "decided after discovery"})
_RECYCLE = _ENCODE({"recycle_trigger": "re-evaluation date reached"})


class _Sim:
    """One lead's history under construction, recorded straight into ledger and activity rows.

    Times are epoch seconds and always move forward. The first event past `now` has not happened yet:
    from there on the simulation goes on (it draws the same random numbers) but records nothing. The
    `leads` row is folded as entries are recorded (`domain.timeline.Projection`, as every writer folds); the
    data each change captured (BANT, the nurture re-evaluation date…) becomes the lead's fields, as it does
    when the service applies a change, so time rules that read a field (`re_evaluate_on`) see it.
    """

    __slots__ = ("activities", "data", "entries", "head", "lead_id", "now", "out", "over", "owner", "projection",
                 "rng", "seq", "stage", "status", "t")  # fmt: skip

    def __init__(self, rng: random.Random, lead_id: str, created: float, now: float, out: _Out) -> None:
        self.rng, self.lead_id, self.now, self.out = rng, lead_id, now, out
        self.t = created
        self.status = self.stage = ""
        self.owner: str | None = None
        self.seq = 0
        self.over = created > now  # past `now`: nothing more is recorded
        self.entries: list[tuple[Any, ...]] = []
        self.head: bytes | None = None  # the hash chain's head (store/chain.py), once `seal` ran
        self.activities: list[tuple[Any, ...]] = []
        self.data: list[str] = []  # the JSON data of recorded changes, folded into the lead's fields
        self.projection = Projection()

    def start(self, *, stage: str, source: str) -> None:
        """The `created` entry: New, no owner."""
        self._record("created", "system", "ops", source, "new", stage, None, None, None, None, None, None)

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
        data: str | None = None,  # JSON text
        rule: str | None = None,
        override_of_seq: int | None = None,
        override_rule: str | None = None,
    ) -> None:
        self.t += max(dt, 1.0)
        self._record(
            "change", actor, role, source, status or self.status, stage or self.stage,
            owner if owner is not None else self.owner, reason, data, rule, override_of_seq, override_rule,
        )  # fmt: skip

    def _record(
        self,
        kind: str,
        actor: str,
        role: str,
        source: str,
        to_status: str,
        to_stage: str,
        to_owner: str | None,
        reason: str | None,
        data: str | None,
        rule: str | None,
        override_of_seq: int | None,
        override_rule: str | None,
    ) -> None:
        from_status, from_stage, from_owner = self.status, self.stage, self.owner
        self.status, self.stage, self.owner = to_status, to_stage, to_owner
        if self.over or self.t > self.now:
            self.over = True
            return
        out = self.out
        null = out.null
        if data is not None:
            self.data.append(data)
        seq = self.seq = self.seq + 1
        at = _text(self.t)
        self.projection.add(at, seq, from_status or None, to_status, to_stage, to_owner, source, rule, reason)
        row = (  # LEDGER_COLUMNS but the constants (see _rows) and the hash
            self.lead_id, seq, at, kind, actor, role, source, from_status or null, to_status,
            from_stage or null, to_stage, null if from_owner is None else from_owner,
            null if to_owner is None else to_owner, null if reason is None else reason,
            null if data is None else data, null if rule is None else rule,
            null if override_of_seq is None else override_of_seq, null if override_rule is None else override_rule,
        )  # fmt: skip
        self.entries.append(row)  # hashed by `seal`, once the creation entry holds the lead's data

    def log(self, dt: float, kind: str, actor: str | None, data: str | None = None) -> None:
        self.t += max(dt, 1.0)
        if self.over or self.t > self.now:
            self.over = True
            return
        null = self.out.null
        self.activities.append((  # ACTIVITY_COLUMNS but the constants (see _rows)
            self.lead_id, kind, _text(self.t), null if actor is None else actor, null if data is None else data,
        ))  # fmt: skip

    def seal(self) -> None:
        """Hash the entries in seq order (store/chain.py), each row gaining its hash; the last is the head."""
        recorded = self.out.recorded  # the one constant that is not NULL or false (see _rows)
        head: bytes | None = None
        sealed = []
        for row in self.entries:
            values = dict(zip(_ENTRY_COLUMNS, row, strict=True))
            values["recorded_at"] = recorded
            head = chain.link(head, values)
            sealed.append((*row, head))
        self.entries, self.head = sealed, head

    def lead_row(self, lead: tuple[Any, ...], fields: str) -> tuple[Any, ...]:
        """The `leads` row (but its constants): the lead's columns, then its state after the last entry."""
        out = self.out
        null = out.null
        if self.data:
            merged = json.loads(fields)
            for data in self.data:
                merged.update(json.loads(data))
            fields = _ENCODE(merged)
        p = self.projection
        owner = p.owner
        team = out.owner_teams.get(owner) if owner is not None else None
        return (
            *lead, null if owner is None else owner, null if team is None else team, p.status, p.stage,
            p.status_since, p.stage_since, p.created_at, p.updated_at, p.version, p.status_entry_seq,
            p.status_source, null if p.status_rule is None else p.status_rule,
            null if p.prev_status is None else p.prev_status, null if p.reason is None else p.reason, fields,
            email_key(lead[2]) or null, null if lead[3] is null else phone_key(lead[3]),
            null if self.head is None else self.head,
        )  # fmt: skip


# columns that are the same in every demo row: written once per statement (HistoryRows.constants)
_LEDGER_CONSTANTS = ("recorded_at", "note", "idempotency_key", "off_model")
_ACTIVITY_CONSTANTS = ("key", "recorded_at", "source")
_DATA = tuple(c for c in LEDGER_COLUMNS if c not in _LEDGER_CONSTANTS).index("data")  # in an entry tuple
_ENTRY_COLUMNS = tuple(c for c in LEDGER_COLUMNS if c not in (*_LEDGER_CONSTANTS, "hash"))  # a _Sim entry's


@dataclass(frozen=True)
class _Out:
    """How rows are written for the target database: SQLite takes NaN for NULL (history.py)."""

    owner_teams: dict[str, str | None]
    null: Any
    recorded: Any = None  # the recorded_at every row carries (as stored), for the hash chain


def _json(value: dict[str, Any]) -> str:
    return _ENCODE(value)


def _pick(rng: random.Random, options: Sequence[_T]) -> _T:
    """Like rng.choice, several times cheaper (one C call for the draw; no bias worth the name for few options)."""
    return options[int(rng.random() * len(options))]


def _text(seconds: float) -> str:
    """A demo time as stored ('YYYY-MM-DD HH:MM:SS.000000'): whole seconds, as CRM exports have them.

    Events are at least a second apart, so their order survives the truncation. Tables instead of
    datetime objects: a quarter of the cost of datetime.fromtimestamp + isoformat, per row (measured).
    """
    day, second = divmod(int(seconds), 86_400)
    minute, second = divmod(second, 60)
    prefix = _DAY_TEXT.get(day)
    if prefix is None:
        prefix = _DAY_TEXT[day] = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + " "
    return prefix + _HOUR_MINUTE[minute] + _SECOND[second]


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_TEXT: dict[int, str] = {}
_HOUR_MINUTE = [f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60)]
_SECOND = [f"{second:02d}.000000" for second in range(60)]


def _iso(seconds: float) -> str:
    """An ISO 8601 UTC time for data fields (`next_follow_up_at`…)."""
    return _text(seconds).replace(" ", "T") + "+00:00"


def _date(seconds: float) -> str:
    return _text(seconds)[:10]


def _uniform_days(rng: random.Random, low: float, high: float, tail: float = 0.15) -> float:
    """Mostly inside the seed's range, sometimes beyond it (real pipelines have stragglers)."""
    if rng.random() < tail:
        return rng.uniform(high, high * 2.5) * DAY
    return rng.uniform(low, high) * DAY


def _simulate(rng: random.Random, lead_id: str, created: float, now: float, source: str, out: _Out) -> _Sim:
    _, connect_rate, qualify_rate, _ = SOURCES[source]
    stage = "mql" if source in ("web_form", "webinar", "referral", "event") else "lead"
    sim = _Sim(rng, lead_id, created, now, out)
    sim.start(stage=stage, source="integration" if source != "list_import" else "import")
    team_reps = REPS[:4] if rng.random() < 0.6 else REPS[4:]
    rep = _pick(rng, team_reps)[0]

    def before_now(dt: float) -> bool:
        return sim.t + dt < now

    # routing: New -> Assigned (minutes to hours; a few wait too long)
    wait = rng.uniform(0.05, 3.5) * HOUR if rng.random() < 0.93 else rng.uniform(6, 40) * HOUR
    if not before_now(wait):
        return sim
    sim.move(
        wait, actor="system", role="ops", source="automation", status="assigned", owner=rep, rule="new:route"
    )  # the model's on_enter route of New

    roll = rng.random()
    if roll < 0.015:  # data problems show up at first touch
        if before_now(HOUR):
            sim.move(
                rng.uniform(0.2, 4) * HOUR,
                actor=rep,
                role="rep",
                source="manual",
                status="invalid",
                reason=_pick(rng, ("bad_email", "bad_phone", "spam")),
                data=_BOUNCED,
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
                data=_json({"duplicate_of": f"{lead_id[:-3]}000"}),
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
                reason=_pick(rng, REJECT),
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
        data='{"next_follow_up_at": "' + _iso(sim.t + 2 * DAY) + '"}',  # JSON, as _json would write it
    )
    attempting = _uniform_days(rng, 3, 7)
    if rng.random() >= connect_rate:
        # 8-10 attempts without connection -> Nurture or Disqualified
        attempts = rng.randint(6, 10)
        for _ in range(attempts):
            if not before_now(attempting / attempts):
                return sim
            sim.log(attempting / attempts, _pick(rng, ("call_logged", "email_sent")), rep, _NO_ANSWER)
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
                data=_json({"disqualification_notes": f"{attempts} attempts, no answer"}),
            )
        return sim
    # a reply: Connected (automation on the reply); a few replies are unsubscribes a rep must override
    if not before_now(attempting):
        return sim
    sim.log(attempting, "email_replied", None, _POSITIVE)
    sim.move(
        120,
        actor="system",
        role="ops",
        source="automation",
        status="connected",
        rule="email_reply_connects",
        data=_NEXT_STEPS,
    )
    if rng.random() < 0.04:
        seq = sim.seq
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
            data=_MEETING,
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
                sim.log(rng.uniform(1, 10) * DAY, "call_logged", rep, _CONNECTED)
                # back to Working after review: the engine records it as an override of the stale rule
                sim.move(
                    HOUR,
                    actor=rep,
                    role="rep",
                    source="manual",
                    status="working",
                    override_of_seq=sim.seq,
                    override_rule="working_stale_30d",
                )
                _lose(sim, rep, now, _uniform_days(rng, 5, 15))
            return sim
        if not before_now(working):
            return sim
        for _ in range(rng.randint(1, 3)):
            sim.log(working / 4, _pick(rng, ("call_logged", "meeting_held", "email_sent")), rep, _CONNECTED)
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
        data=_BANT,
    )
    qualified = _uniform_days(rng, 1, 3, tail=0.1)
    if not before_now(qualified):
        return sim
    if rng.random() < 0.78:
        ae = _pick(rng, AES)[0]
        value = round(rng.lognormvariate(10, 0.6), 2)
        _opportunity(sim, qualified, ae, f"OPP-{lead_id[-7:]}", value, 45)
        won = rng.uniform(20, 90) * DAY
        if rng.random() < 0.3 and before_now(won):
            sim.move(won, actor=ae, role="rep", source="manual", stage="customer")
    else:
        _lose(sim, rep, now, qualified)
    return sim


def _opportunity(sim: _Sim, dt: float, ae: str, opportunity_id: str, value: float, close_in_days: int) -> None:
    """The CRM reports an opportunity (the event the default rule `opportunity_created` reacts to); the rule
    converts the lead a second later with the data Converted requires, and the AE owns it from then on."""
    close = _date(sim.t + dt + close_in_days * DAY)
    sim.log(
        dt, "opportunity_created", ae, _json({"opportunity_id": opportunity_id, "amount": value, "close_date": close})
    )
    sim.move(1, actor="system", role="ops", source="automation", status="converted", stage="opportunity", owner=ae,
             rule="opportunity_created", data=_json({
                 "opportunity_id": opportunity_id, "deal_value": value, "expected_close_date": close}))  # fmt: skip


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
            reason=_pick(sim.rng, DISQ),
            data=_AFTER_DISCOVERY,
        )
    else:
        _nurture(sim, rep, _pick(sim.rng, NURTURE), now, back_to_mql=True)


def _nurture(sim: _Sim, rep: str, reason: str, now: float, back_to_mql: bool = False) -> None:
    rng = sim.rng
    re_evaluate = sim.t + rng.uniform(45, 120) * DAY
    data = _json({"re_evaluate_on": _date(re_evaluate), "last_interaction_at": _iso(sim.t)})
    stage = "mql" if back_to_mql or sim.stage in ("sal", "sql") else None
    sim.move(HOUR, actor=rep, role="rep", source="manual", status="nurture", stage=stage, reason=reason, data=data)
    # seed 000: Nurture -> ownership moves from the SDR to marketing
    sim.move(60, actor="system", role="ops", source="automation", owner="marketing", rule="transfer_to_marketing")
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
            data=_RECYCLE,
        )
        fresh = _pick(rng, [r for r, _ in REPS if r != rep])
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
            sim.log(5 * DAY, "call_logged", fresh, _CONNECTED)
            sim.move(60, actor=fresh, role="rep", source="manual", status="connected", stage="sal")
            sim.move(
                5 * DAY,
                actor=fresh,
                role="rep",
                source="manual",
                status="qualified",
                stage="sql",
                data=_BANT_RECYCLED,
            )
            _opportunity(sim, 2 * DAY, "ines", f"OPP-R-{sim.lead_id[-7:]}", 12000.0, 30)


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
            people.add_user(app, name=name, role="rep", team=team, email=f"{name}@example.com",
                            booking_url=f"https://calendar.example.com/{name}")  # fmt: skip
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
    workers: int | None = None,
) -> dict[str, Any]:
    """Write `leads` demo leads with histories spread over the last `days` days; returns counts and wall time.

    `workers`: processes that simulate while this one writes (None: two when there are at least
    WORKERS_FROM leads and two CPUs, else none). Each `chunk` (rounded to whole blocks of BLOCK leads)
    is one transaction. The data depends on the seed only, never on `workers` or `chunk`.
    """
    if leads < 0 or days < 1:
        raise Invalid("--leads must be >= 0 and --days >= 1")
    started = time.perf_counter()
    app.loaded_model()  # fail early with a clear message when `init` was not run
    if if_empty:
        with app.db.read() as conn:
            if conn.execute(select(func.count()).select_from(leads_table)).scalar():
                return {"leads": 0, "entries": 0, "activities": 0, "seconds": 0.0, "skipped": True}
    owner_teams = ensure_people(app)
    prefix = f"D{seed}-"
    with app.db.read() as conn:
        if repo.lead_row(conn, f"{prefix}{0:07d}") is not None:
            raise Invalid(f"demo data with seed {seed} is already in this database; use another --seed")
    now = app.clock.now()
    plan = _Plan(seed, now.timestamp(), days, now, owner_teams, app.db.is_sqlite)
    per_chunk = max(1, round(chunk / BLOCK)) * BLOCK
    chunks = [(first, min(leads, first + per_chunk)) for first in range(0, leads, per_chunk)]
    if workers is None:
        workers = 2 if leads >= WORKERS_FROM and (os.cpu_count() or 1) >= 2 else 0
    total_entries = total_activities = 0
    for (first, end), payload in zip(chunks, _payloads(plan, chunks, workers), strict=True):
        with app.db.write() as conn:
            if isinstance(payload, bytes):
                written, logged = insert_image(conn, payload)
            else:
                written, logged = insert_rows(conn, payload)
        total_entries += written
        total_activities += logged
        if progress:
            progress(end - first)
    return {
        "leads": leads,
        "entries": total_entries,
        "activities": total_activities,
        "seconds": time.perf_counter() - started,
        "skipped": False,
    }


@dataclass(frozen=True)
class _Plan:
    """What every block needs to know (small and picklable: it travels to the workers)."""

    seed: int
    now: float  # epoch seconds
    days: int
    recorded_at: datetime
    owner_teams: dict[str, str | None]
    sqlite: bool


def _payloads(plan: _Plan, chunks: list[tuple[int, int]], workers: int) -> Iterator[HistoryRows | bytes]:
    """Each chunk's rows, in order: built here, or by `workers` processes a few chunks ahead of the writer."""
    if workers <= 0:
        for first, end in chunks:
            yield _rows(plan, first, end)
        return
    # Linux: fork, so workers start at once and need no importable __main__; they only compute and never
    # touch the database connections they inherit. Elsewhere fork is unsafe or missing: spawn.
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[HistoryRows | bytes]] = deque()
        ahead = iter(chunks)
        try:
            for first, end in ahead:
                pending.append(pool.submit(_chunk_payload, plan, first, end))
                if len(pending) > workers + 1:  # bounded: memory stays flat however many leads
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _chunk_payload(plan: _Plan, first: int, end: int) -> HistoryRows | bytes:
    """In a worker: the chunk's rows, packed as a SQLite image when the database is SQLite."""
    rows = _rows(plan, first, end)
    return sqlite_image(rows) if plan.sqlite else rows


def _rows(plan: _Plan, first: int, end: int) -> HistoryRows:
    """Leads first..end-1 as the rows of the three tables, block by block."""
    sqlite = plan.sqlite
    recorded = stored_time(plan.recorded_at, sqlite)
    out = _Out(owner_teams=plan.owner_teams, null=SQLITE_NULL if sqlite else None, recorded=recorded)
    constants = {
        "leads": {"incomplete": False},
        "ledger": dict(zip(_LEDGER_CONSTANTS, (recorded, None, None, False), strict=True)),
        "activities": dict(zip(_ACTIVITY_CONSTANTS, (None, recorded, "manual"), strict=True)),
    }
    rows = HistoryRows([], [], [], sqlite, constants)
    for block in range(first // BLOCK, (end + BLOCK - 1) // BLOCK):
        _block(plan, out, block, max(first, block * BLOCK), min(end, (block + 1) * BLOCK), rows)
    return rows


def _block(plan: _Plan, out: _Out, block: int, low: int, high: int, rows: HistoryRows) -> None:
    """Leads low..high-1 of a block: its own random stream, so it is the same wherever it is simulated."""
    rng = random.Random(f"leadledger-demo/{plan.seed}/{block}")
    now = plan.now
    start = now - plan.days * DAY
    names = list(SOURCES)
    cumulative = list(itertools.accumulate(SOURCES[s][0] for s in names))
    prefix = f"D{plan.seed}-"
    null = out.null
    for n in range(block * BLOCK, high):
        lead_id = f"{prefix}{n:07d}"
        source = rng.choices(names, cum_weights=cumulative)[0]
        created = start + (now - start) * (rng.random() ** 0.8)  # more recent leads than old ones
        sim = _simulate(rng, lead_id, created, now, source, out)
        first, last = _pick(rng, FIRST), _pick(rng, LAST)
        company = f"{_pick(rng, COMPANY)} {_pick(rng, SUFFIX)}"
        phone = f"+1202555{n % 10000:04d}" if rng.random() < 0.5 else null
        campaign = _pick(rng, SOURCES[source][3])
        territory = _pick(rng, TERRITORIES)
        value = round(rng.lognormvariate(9.5, 0.8), 2)
        if n < low:  # simulated only to advance the stream to where this chunk starts
            continue
        email = f"{first}.{last}{n}@{company.split()[0].lower()}.example".lower()
        lead = (lead_id, f"{first} {last}", email, phone, company, source, campaign)
        fields = f'{{"territory": "{territory}", "estimated_value": {value!r}}}'  # JSON, as _ENCODE would write it
        # the creation entry captures the lead's data, as the service's does (the ledger folds to the fields)
        captured = {"name": lead[1], "email": email, "phone": phone, "company": company, "source": source,
                    "campaign": campaign, "territory": territory, "estimated_value": value}  # fmt: skip
        if phone is null:
            del captured["phone"]
        first_entry = sim.entries[0]
        sim.entries[0] = (*first_entry[:_DATA], _ENCODE(captured), *first_entry[_DATA + 1 :])
        sim.seal()
        rows.leads.append(sim.lead_row(lead, fields))
        rows.ledger.extend(sim.entries)
        rows.activities.extend(sim.activities)
