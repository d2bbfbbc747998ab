"""The seeds' benchmark numbers, in one place, each with the sentence that explains it.

They are defaults the health, funnel and bottleneck reports compare the data with. Status keys are the
default model's stable identifiers (README: "status keys are stable identifiers for scripts and mappings");
a model without one of these statuses simply gets no finding for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

from leadledger.domain.statusmodel import StatusModel

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class RateRange:
    """A conversion benchmark: the typical range, and which side of it is a problem."""

    low: float
    high: float | None
    flag: str  # "below" (only a low rate is a problem) or "outside" (either side is)
    explanation: str

    def describe(self) -> str:
        if self.high is None or self.high == self.low:
            return f"≥ {self.low:.0%}"
        return f"{self.low:.0%}–{self.high:.0%}"

    def violated_by(self, rate: float) -> bool:
        if rate < self.low:
            return True
        return self.flag == "outside" and self.high is not None and rate > self.high


@dataclass(frozen=True)
class DurationRange:
    """Seed 000's "average duration in each status": how long leads typically stay."""

    low: timedelta
    high: timedelta
    text: str

    def describe(self) -> str:
        return self.text


# Seed 000, "Funnel conversion by status".
FUNNEL_RANGES: dict[tuple[str, str], RateRange] = {
    ("new", "attempting_contact"): RateRange(1.0, 1.0, "below", "New → Attempting Contact should be 100% (if not, routing is broken)."),
    ("attempting_contact", "connected"): RateRange(0.30, 0.50, "outside", "Attempting Contact → Connected: 30-50% is typical."),
    ("connected", "qualified"): RateRange(0.40, 0.60, "outside", "Connected → Qualified: 40-60% range."),
    ("qualified", "converted"): RateRange(0.70, 0.85, "below", "Qualified → Converted: 70-85% (if much lower, qualification is weak)."),
    ("recycled", "converted"): RateRange(0.05, None, "below", "Recycled leads converting at <5% suggests you're recycling junk. Be more selective."),
}  # fmt: skip

# The statuses of seed 000's funnel table, in order; the default funnel walks the model's forward path
# through those of them the model has.
BENCHMARKED_PATH = ("new", "attempting_contact", "connected", "qualified", "converted")
RECYCLED_PAIR = ("recycled", "converted")

# Seed 000, "Average duration in each status".
DURATION_RANGES: dict[str, DurationRange] = {
    "new": DurationRange(timedelta(0), 4 * HOUR, "< 4 h"),
    "attempting_contact": DurationRange(3 * DAY, 7 * DAY, "3–7 d"),
    "connected": DurationRange(5 * DAY, 10 * DAY, "5–10 d"),
    "working": DurationRange(14 * DAY, 21 * DAY, "14–21 d"),
    "qualified": DurationRange(1 * DAY, 3 * DAY, "1–3 d"),
}
DURATION_EXPLANATION = (
    'Long durations signal problems. If leads sit in "Connected" for 30 days on average, reps aren\'t '
    "following up properly."
)

# Seed 000, Qualified red flag.
QUALIFIED_TO_CLOSED = RateRange(
    0.15, 0.20, "below", "If your qualified-to-closed rate is below 15-20%, your qualification standards are too loose."
)
# Seed 000, Disqualified red flag.
DISQUALIFIED_MAX_SHARE = 0.50
DISQUALIFIED_EXPLANATION = (
    "If more than 50% of your leads end up disqualified, you have a lead quality or targeting problem upstream."
)
# Seed 000, New red flag.
NEW_MAX_AGE = 24 * HOUR
NEW_EXPLANATION = 'If leads stay "New" for more than 24 hours, you have a routing or capacity problem.'
# Seed 000, Nurture red flag.
NURTURE_EXPLANATION = '"Nurture" becoming a black hole where leads disappear forever. Set re-evaluation schedules.'

# A status is "rarely used" when it holds less than this share of all status entries (governance).
RARE_STATUS_SHARE = 0.01


def family_of(model: StatusModel, key: str) -> tuple[str, ...]:
    """A status and its sub-statuses (a sub-status alone is its own family)."""
    status = model.statuses.get(key)
    if status is None or status.parent is not None:
        return (key,)
    return (key, *model.children.get(key, ()))


def default_funnel_pairs(model: StatusModel) -> list[tuple[str, str]]:
    """Consecutive pairs of seed 000's funnel statuses the model has, in forward-path order, plus Recycled ->
    Converted. A model without them walks its own forward path (sub-statuses folded into their parent)."""
    rank = {key: i for i, key in enumerate(model.forward_path)}
    path = [key for key in BENCHMARKED_PATH if key in model.statuses]
    if len(path) < 2:
        path = [key for key in model.forward_path if key in model.statuses and model.statuses[key].parent is None]
    path.sort(key=lambda key: rank.get(key, len(rank)))
    pairs = list(pairwise(path))
    if all(key in model.statuses for key in RECYCLED_PAIR):
        pairs.append(RECYCLED_PAIR)
    return pairs


# the reps report's two rates (seed 000, "Rep performance by status management")
REP_PAIRS = (("attempting_contact", "connected"), ("qualified", "converted"))


def standard_pairs(model: StatusModel) -> list[tuple[str, str]]:
    """Every funnel pair a built-in report asks for: the store precomputes these per lead."""
    pairs = default_funnel_pairs(model)
    for pair in (*FUNNEL_RANGES, *REP_PAIRS):
        if pair not in pairs and all(key in model.statuses for key in pair):
            pairs.append(pair)
    return pairs
