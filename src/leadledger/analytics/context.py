"""What every report query needs besides the store: the as-of time, the period, and the model as tables.

The store holds raw facts; everything the status model says about them (families of sub-statuses,
categories, maximum ages, valid stages, calendars) is applied at query time from small temporary tables,
so a model change never leaves a stale answer behind.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from leadledger.analytics.benchmarks import family_of
from leadledger.analytics.calendar_days import business_us_since_origin
from leadledger.analytics.store.derive import ModelFacts, day_table_origin
from leadledger.domain.calendar import BusinessCalendar
from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.services.errors import Invalid
from leadledger.store.tables import teams, users

if TYPE_CHECKING:  # duckdb is imported where a store is opened: every CLI call would pay ~0.1 s for it
    import duckdb

GROUPINGS = ("owner", "team", "source", "campaign")
US_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class Options:
    """The knobs every report takes: as-of time, an optional period of dates, a grouping, extra funnel pairs."""

    as_of: datetime
    start: datetime | None = None  # inclusive, UTC midnight of --from
    end: datetime | None = None  # exclusive, UTC midnight after --to
    by: str | None = None
    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(
        cls,
        *,
        now: datetime,
        as_of: datetime | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        by: str | None = None,
        pairs: Sequence[tuple[str, str]] = (),
    ) -> Options:
        moment = as_of or now
        if moment.tzinfo is None:
            raise Invalid("--as-of must carry a time zone (or be given in UTC)")
        if moment > now:  # a report describes what has happened; a future as-of would look like a forecast
            raise Invalid(
                f"--as-of {moment.astimezone(UTC).isoformat()} is in the future (now is "
                f"{now.astimezone(UTC).isoformat(timespec='seconds')}): reports describe what has happened"
            )
        if by is not None and by not in GROUPINGS:
            raise Invalid(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
        start = datetime.combine(date_from, datetime.min.time(), tzinfo=UTC) if date_from else None
        end = datetime.combine(date_to, datetime.min.time(), tzinfo=UTC) + timedelta(days=1) if date_to else None
        if start and end and end <= start:
            raise Invalid("--to must not be before --from")
        return cls(moment.astimezone(UTC), start, end, by, tuple(pairs))

    def describe(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "from": self.start.date() if self.start else None,
            "to": (self.end - timedelta(days=1)).date() if self.end else None,
            "by": self.by,
        }


def cutoff_before(calendar: BusinessCalendar, end: datetime, age: timedelta, business: bool) -> datetime:
    """The latest instant from which `age` has elapsed by `end`: a lead in a status since before it has been
    there longer than `age`. Business ages in whole days are business days ("10d" = ten working days, the same
    time of day), as the time rules read them; other business ages are working time."""
    if not business:
        return end - age
    if age and age % timedelta(days=1) == timedelta(0):
        by_days = getattr(calendar, "subtract_business_days", None)
        if by_days is not None:
            moment: datetime = by_days(end, age // timedelta(days=1))
            return moment
    by_time = getattr(calendar, "subtract_business_time", None)
    if by_time is not None:
        found: datetime = by_time(end, age)
        return found
    lo, hi = end - max(age * 10, timedelta(days=400)), end
    while hi - lo > timedelta(microseconds=1):
        mid = lo + (hi - lo) / 2
        if calendar.business_time_between(mid, end) >= age:
            lo = mid
        else:
            hi = mid
    return lo


def naive(moment: datetime | None) -> datetime | None:
    """DuckDB holds naive UTC timestamps."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def hours(us: float | int | None) -> float | None:
    return None if us is None else us / US_PER_HOUR


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Query:
    """A report's view of the store: the connection, the model, the options, and parameters for SQL."""

    def __init__(self, app: App, conn: duckdb.DuckDBPyConnection, model: StatusModel, options: Options):
        self.app = app
        self.conn = conn
        self.model = model
        self.options = options
        self.memo: dict[tuple[Any, ...], Any] = {}
        self.facts = ModelFacts.of(model)
        self._install_model_tables()
        self._install_owner_table()
        origin = day_table_origin(conn)
        as_of = options.as_of
        self.cum_at_as_of = [
            business_us_since_origin(model.calendars[name], origin, as_of) if origin is not None else 0
            for name in self.facts.calendars
        ]
        self.default_calendar = self.facts.calendars.index(model.default_calendar)

    def with_options(self, **changes: Any) -> Query:
        """The same query with some options changed (shares the connection and the model tables)."""
        other = copy.copy(self)
        other.options = replace(self.options, **changes)
        other.memo = {}
        return other

    def memoised(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """A result several reports share (run_reports runs them on one Query): computed once."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    # --- parameters shared by the SQL of every report -----------------------------------------------

    def params(self, **extra: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "t": naive(self.options.as_of),
            "start": naive(self.options.start),
            "end": naive(self.options.end),
            "cum_t": self.cum_at_as_of,
            "default_cal": self.default_calendar,
        }
        values.update(extra)
        return values

    def rows(self, sql: str, **extra: Any) -> list[tuple[Any, ...]]:
        """Run SQL with the shared parameters (only those it names are bound)."""
        values = self.params(**extra)
        used = {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}
        return self.conn.execute(sql, used).fetchall()

    @staticmethod
    def in_period(column: str) -> str:
        """SQL: the column lies inside the period (always true without one)."""
        return f"(($start IS NULL OR {column} >= $start) AND ($end IS NULL OR {column} < $end))"

    @staticmethod
    def state_at(alias: str = "i") -> str:
        """SQL: the instant `alias` (a row of `inst`) holds its lead's state at the as-of time $t: the last
        instant at or before it. The one definition of "the status at T" every report uses."""
        return f"({alias}.ts <= $t AND ({alias}.next_ts IS NULL OR {alias}.next_ts > $t))"

    # business microseconds of a stint up to the as-of time, in the calendar of the owner who entered it
    BUSINESS_US = (
        "(CASE WHEN s.left_at IS NOT NULL AND s.left_at <= $t THEN list_extract(s.lc, coalesce(om.cal, $default_cal) + 1) "
        "ELSE list_extract($cum_t::BIGINT[], coalesce(om.cal, $default_cal) + 1) END "
        "- list_extract(s.ec, coalesce(om.cal, $default_cal) + 1))"
    )
    CALENDAR_US = "(epoch_us(CASE WHEN s.left_at IS NOT NULL AND s.left_at <= $t THEN s.left_at ELSE $t END) - epoch_us(s.entered_at))"

    # --- the model as tables ---------------------------------------------------------------------------

    def family(self, key: str) -> tuple[str, ...]:
        """A status and its sub-statuses (a sub-status alone is its own family)."""
        return family_of(self.model, key)

    def status_order(self, extra: Sequence[str] = ()) -> list[str]:
        known = list(self.model.statuses)
        return known + sorted(set(extra) - set(known))

    def stale_buckets(self) -> set[str]:
        """Sub-statuses their parent's exit rule moves overstaying leads into (Working -> Stale - Review)."""
        found = set()
        for status in self.model.statuses.values():
            target = status.exit.to
            child = self.model.statuses.get(target) if status.exit.then == "move" and target else None
            if child is not None and child.parent == status.key:
                found.add(child.key)
        return found

    def _install_model_tables(self) -> None:
        rows = []
        stale = self.stale_buckets()
        for status in self.model.statuses.values():
            max_age = status.exit.max_age
            rows.append(
                (
                    status.key,
                    status.parent or status.key,
                    status.category,
                    status.terminal or status.exit.terminal,
                    int(max_age // timedelta(microseconds=1)) if max_age else None,
                    status.exit.business_time,
                    status.key in stale,
                )
            )
        self.conn.execute(
            "CREATE OR REPLACE TEMP TABLE smap (status VARCHAR, family VARCHAR, category VARCHAR, terminal BOOLEAN, "
            "max_age_us BIGINT, business BOOLEAN, stale_bucket BOOLEAN)"
        )
        self._insert("smap", rows, 7)
        # per status with a max_age and per calendar: a lead in the status since before `cutoff` overstayed
        cutoffs = []
        for status in self.model.statuses.values():
            age = status.exit.max_age
            if not age:
                continue
            for index, name in enumerate(self.facts.calendars):
                moment = cutoff_before(self.model.calendars[name], self.options.as_of, age, status.exit.business_time)
                cutoffs.append((status.key, index, naive(moment)))
        self.conn.execute("CREATE OR REPLACE TEMP TABLE scut (status VARCHAR, cal INTEGER, cutoff TIMESTAMP)")
        self._insert("scut", cutoffs, 3)
        pairs = [(s.key, stage) for s in self.model.statuses.values() for stage in sorted(s.stages)]
        self.conn.execute("CREATE OR REPLACE TEMP TABLE sstage (status VARCHAR, stage VARCHAR)")
        self._insert("sstage", pairs, 2)

    def _install_owner_table(self) -> None:
        """owner -> team -> calendar index: the responsible team's calendar, else the model's default."""
        with self.app.db.read() as conn:
            people = list(conn.execute(select(users.c.name, users.c.role, users.c.team)))
            team_calendars = {row.name: row.calendar for row in conn.execute(select(teams.c.name, teams.c.calendar))}
        index = {name: i for i, name in enumerate(self.facts.calendars)}
        rows = []
        for person in people:
            calendar = team_calendars.get(person.team) if person.team else None
            rows.append((person.name, person.role, person.team, index.get(calendar) if calendar else None))
        self.conn.execute("CREATE OR REPLACE TEMP TABLE omap (owner VARCHAR, role VARCHAR, team VARCHAR, cal INTEGER)")
        self._insert("omap", rows, 4)

    def _insert(self, table: str, rows: list[tuple[Any, ...]], width: int) -> None:
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        names = [f"c{i}" for i in range(width)]
        unnests = ", ".join(f"unnest(${n})" for n in names)
        self.conn.execute(
            f"INSERT INTO {table} SELECT {unnests}", {n: list(c) for n, c in zip(names, columns, strict=True)}
        )

    # --- grouping ------------------------------------------------------------------------------------

    def group_sql(self, owner_column: str, lead_column: str, *, attributes: str | None = None) -> tuple[str, str]:
        """(SQL expression of the --by key, joins it needs) for a row with an owner and a lead id.

        `attributes` names a relation of the query that already carries the lead's source and campaign."""
        by = self.options.by
        if by is None:
            return "NULL", ""
        if by == "owner":
            return f"coalesce({owner_column}, '(none)')", ""
        if by == "team":
            return (
                "coalesce(gt.team, '(none)')",
                f"LEFT JOIN omap gt ON gt.owner = {owner_column}",
            )
        if attributes is not None:
            return f"coalesce({attributes}.{by}, '(none)')", ""
        return (
            f"coalesce(gl.{by}, '(none)')",
            f"LEFT JOIN leads_m gl ON gl.id = {lead_column}",
        )
