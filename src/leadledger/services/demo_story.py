"""One demo lead's story: its moves drawn from seed 000's rates and durations, recorded as table rows.

Seed 000's tables drive it: New -> Attempting ~100 %, Attempting -> Connected 30-50 %, Connected -> Qualified
40-60 %, Qualified -> Converted 70-85 %; New < 4 h, Attempting 3-7 d, Connected 5-10 d, Working 14-21 d,
Qualified 1-3 d. Every generated move is one the default model allows, with the data its entry rule needs
(a test replays demo histories through the engine to prove it). `services.demo` writes the rows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from leadledger.domain.automation import RouteAction
from leadledger.domain.contacts import lead_keys
from leadledger.domain.statusmodel import StatusModel
from leadledger.domain.timeline import Projection
from leadledger.services.errors import Invalid
from leadledger.store import chain
from leadledger.store.tables import KEY_COLUMNS

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
ENCODE = json.JSONEncoder(default=str).encode  # as SQLAlchemy's JSON type writes it
_NO_ANSWER = ENCODE({"outcome": "no_answer"})
_CONNECTED = ENCODE({"outcome": "connected"})
_POSITIVE = ENCODE({"classification": "positive"})
_BOUNCED = ENCODE({"invalid_detail": "bounced"})
_NEXT_STEPS = ENCODE({"next_steps": "book discovery call"})
_MEETING = ENCODE({"need": "status visibility", "timeline": "this quarter"})
_BANT = ENCODE({"budget": "25-50k", "authority": "VP Sales", "need": "pipeline visibility", "timeline": "Q3"})
_BANT_RECYCLED = ENCODE({"budget": "10k", "authority": "Head of Ops", "need": "visibility", "timeline": "Q4"})
_AFTER_DISCOVERY = ENCODE({"disqualification_notes": "decided after discovery"})
_RECYCLE = ENCODE({"recycle_trigger": "re-evaluation date reached"})


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

    def __init__(self, rng: random.Random, lead_id: str, created: float, now: float, out: Out) -> None:
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
        self.entries.append((  # LEDGER_COLUMNS but the constants and the hash (see _rows, `seal`)
            self.lead_id, seq, at, kind, actor, role, source, from_status or null, to_status,
            from_stage or null, to_stage, null if from_owner is None else from_owner,
            null if to_owner is None else to_owner, null if reason is None else reason,
            null if data is None else data, null if rule is None else rule,
            null if override_of_seq is None else override_of_seq, null if override_rule is None else override_rule,
        ))  # fmt: skip

    def log(self, dt: float, kind: str, actor: str | None, data: str | None = None) -> None:
        self.t += max(dt, 1.0)
        if self.over or self.t > self.now:
            self.over = True
            return
        null = self.out.null
        self.activities.append((  # ACTIVITY_COLUMNS but the constants (see _rows)
            self.lead_id, kind, _text(self.t), null if actor is None else actor, null if data is None else data,
        ))  # fmt: skip

    def seal(self, columns: Sequence[str]) -> None:
        """Hash the entries in seq order (store/chain.py), each row gaining its hash; the last is the head.
        `columns` names an entry tuple's values; called once the creation entry holds the lead's data."""
        recorded = self.out.recorded  # the one constant that is not NULL or false (see _rows)
        head: bytes | None = None
        sealed = []
        for row in self.entries:
            values = dict(zip(columns, row, strict=True))
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
            fields = ENCODE(merged)
        keys = lead_keys(*(None if v is null else v for v in lead[2:5]))  # from email, phone, company
        p = self.projection
        owner = p.owner
        team = out.owner_teams.get(owner) if owner is not None else None
        return (
            *lead, null if owner is None else owner, null if team is None else team, p.status, p.stage,
            p.status_since, p.stage_since, p.created_at, p.updated_at, p.version, p.status_entry_seq,
            p.status_source, null if p.status_rule is None else p.status_rule,
            null if p.prev_status is None else p.prev_status, null if p.reason is None else p.reason, fields,
            *(null if (v := keys[c]) is None else v for c in KEY_COLUMNS),
            null,  # due_at: `store.due.refresh` sets it once the rows are in
            null if self.head is None else self.head,
        )  # fmt: skip


# columns that are the same in every demo row: written once per statement (HistoryRows.constants)


@dataclass(frozen=True)
class Out:
    """How rows are written for the target database (SQLite takes NaN for NULL: history.py), and the names
    the model gives the automation the story runs."""

    owner_teams: dict[str, str | None]
    null: Any
    rules: StoryRules
    recorded: Any = None  # the recorded_at every row carries (as stored), for the hash chain


# the statuses and stages the story moves leads through (the default model's lifecycle)
STORY_STATUSES = ("new", "assigned", "attempting_contact", "connected", "working", "qualified", "converted",
                  "disqualified", "rejected", "invalid", "duplicate", "nurture", "recycled", "stale_review")  # fmt: skip
STORY_STAGES = ("lead", "mql", "sal", "sql", "opportunity")


@dataclass(frozen=True)
class StoryRules:
    """The model's name for each piece of automation the story runs, found by what it does (the event it
    reacts to and the status it sets, the status a time rule watches and where it moves leads, the on-enter
    action that routes), so the demo's ledger names the rules of the model it is written under."""

    route_new: str
    first_email: str
    reply_connects: str
    meeting_to_working: str
    opportunity_converts: str
    nurture_to_marketing: str
    working_goes_stale: str
    stale_disqualified: str
    nurture_recycles: str

    @classmethod
    def of(cls, model: StatusModel) -> StoryRules:
        """The names in `model`; Invalid naming everything the story needs that the model lacks."""
        missing = [f"status {key}" for key in STORY_STATUSES if key not in model.statuses]
        missing += [f"stage {key}" for key in STORY_STAGES if key not in {s.key for s in model.stages}]
        if missing:
            raise Invalid(f"the demo tells the default model's story; this model lacks {', '.join(missing)}")
        auto = model.automation

        def event_rule(event: str, status: str) -> str:
            for rule in auto.rules:
                if event in rule.on and rule.set_status == status:
                    return rule.name
            missing.append(f"a rule moving leads to {status} on {event}")
            return ""

        def time_rule(watched: str, status: str) -> str:
            for rule in model.time_rules:
                if watched in rule.statuses and rule.action.kind == "move" and rule.action.status == status:
                    return rule.name
            missing.append(f"a time rule moving leads from {watched} to {status}")
            return ""

        def route(status: str) -> str:
            for action in auto.on_enter.get(status, ()):
                if isinstance(action.spec, RouteAction):
                    return action.name
            missing.append(f"a route action on entering {status}")
            return ""

        rules = cls(
            route_new=route(model.initial_status),
            first_email=event_rule("email_sent", "attempting_contact"),
            reply_connects=event_rule("email_replied", "connected"),
            meeting_to_working=event_rule("meeting_held", "working"),
            opportunity_converts=event_rule("opportunity_created", "converted"),
            nurture_to_marketing=route("nurture"),
            working_goes_stale=time_rule("working", "stale_review"),
            stale_disqualified=time_rule("stale_review", "disqualified"),
            nurture_recycles=time_rule("nurture", "recycled"),
        )
        if missing:
            raise Invalid(f"the demo tells the default model's story; this model has no {'; no '.join(missing)}")
        return rules


def _json(value: dict[str, Any]) -> str:
    return ENCODE(value)


def pick(rng: random.Random, options: Sequence[_T]) -> _T:
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


def simulate(rng: random.Random, lead_id: str, created: float, now: float, source: str, out: Out) -> _Sim:
    _, connect_rate, qualify_rate, _ = SOURCES[source]
    stage = "mql" if source in ("web_form", "webinar", "referral", "event") else "lead"
    sim = _Sim(rng, lead_id, created, now, out)
    sim.start(stage=stage, source="integration" if source != "list_import" else "import")
    team_reps = REPS[:4] if rng.random() < 0.6 else REPS[4:]
    rep = pick(rng, team_reps)[0]

    def before_now(dt: float) -> bool:
        return sim.t + dt < now

    # routing: New -> Assigned (minutes to hours; a few wait too long)
    wait = rng.uniform(0.05, 3.5) * HOUR if rng.random() < 0.93 else rng.uniform(6, 40) * HOUR
    if not before_now(wait):
        return sim
    sim.move(
        wait, actor="system", role="ops", source="automation", status="assigned", owner=rep, rule=out.rules.route_new
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
                reason=pick(rng, ("bad_email", "bad_phone", "spam")),
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
                reason=pick(rng, REJECT),
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
        rule=sim.out.rules.first_email,
        data='{"next_follow_up_at": "' + _iso(sim.t + 2 * DAY) + '"}',  # JSON, as _json would write it
    )
    attempting = _uniform_days(rng, 3, 7)
    if rng.random() >= connect_rate:
        # 8-10 attempts without connection -> Nurture or Disqualified
        attempts = rng.randint(6, 10)
        for _ in range(attempts):
            if not before_now(attempting / attempts):
                return sim
            sim.log(attempting / attempts, pick(rng, ("call_logged", "email_sent")), rep, _NO_ANSWER)
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
        rule=sim.out.rules.reply_connects,
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
                override_rule=sim.out.rules.reply_connects,
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
            rule=sim.out.rules.meeting_to_working,
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
                rule=sim.out.rules.working_goes_stale,
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
                    rule=sim.out.rules.stale_disqualified,
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
                    override_rule=sim.out.rules.working_goes_stale,
                )
                _lose(sim, rep, now, _uniform_days(rng, 5, 15))
            return sim
        if not before_now(working):
            return sim
        for _ in range(rng.randint(1, 3)):
            sim.log(working / 4, pick(rng, ("call_logged", "meeting_held", "email_sent")), rep, _CONNECTED)
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
        ae = pick(rng, AES)[0]
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
             rule=sim.out.rules.opportunity_converts, data=_json({
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
            reason=pick(sim.rng, DISQ),
            data=_AFTER_DISCOVERY,
        )
    else:
        _nurture(sim, rep, pick(sim.rng, NURTURE), now, back_to_mql=True)


def _nurture(sim: _Sim, rep: str, reason: str, now: float, back_to_mql: bool = False) -> None:
    rng = sim.rng
    re_evaluate = sim.t + rng.uniform(45, 120) * DAY
    data = _json({"re_evaluate_on": _date(re_evaluate), "last_interaction_at": _iso(sim.t)})
    stage = "mql" if back_to_mql or sim.stage in ("sal", "sql") else None
    sim.move(HOUR, actor=rep, role="rep", source="manual", status="nurture", stage=stage, reason=reason, data=data)
    # seed 000: Nurture -> ownership moves from the SDR to marketing
    sim.move(
        60, actor="system", role="ops", source="automation", owner="marketing", rule=sim.out.rules.nurture_to_marketing
    )
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
            rule=sim.out.rules.nurture_recycles,
            data=_RECYCLE,
        )
        fresh = pick(rng, [r for r, _ in REPS if r != rep])
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
            rule=sim.out.rules.first_email,
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
