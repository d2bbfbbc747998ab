"""Business-hours arithmetic for SLA clocks: how much of a team's working time lies between two instants,
and when a given amount of working time will have elapsed. Standard library only, so the domain stays pure.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["BusinessCalendar", "WorkingHours"]

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)
# One year of margin inside date.min/date.max, so converting a local midnight to UTC can never overflow.
_MIN_YEAR = date.min.year + 1
_MAX_YEAR = date.max.year - 1
# Searching forward gives up after this many consecutive years without working time (e.g. a holidays
# container claiming every date) instead of grinding on towards year 9998.
_MAX_IDLE_YEARS = 10


@dataclass(frozen=True)
class WorkingHours:
    """One working interval of a weekday in local wall-clock time; ``end == 00:00`` means 24:00."""

    start: time
    end: time

    @property
    def ends_at_midnight(self) -> bool:
        return self.end == _MIDNIGHT


@dataclass(frozen=True, slots=True)
class _IntervalTable:
    """Working intervals of the local years [first_year, end_year) as integer microseconds since the epoch.

    Integers keep every sum exact, and cumulative sums turn "business time up to instant x" into one bisect.
    Index 0 is a zero-length sentinel at ``lo_us`` so a bisect never falls off the front.
    """

    first_year: int
    end_year: int
    lo_us: int  # local midnight starting first_year
    hi_us: int  # local midnight starting end_year
    starts: list[int]
    lengths: list[int]
    cum_before: list[int]  # business time from lo_us to starts[i]
    cum_after: list[int]  # cum_before[i] + lengths[i]

    def business_us_until(self, instant_us: int) -> int:
        """Business microseconds between lo_us and instant_us (which must lie within the table)."""
        i = bisect_right(self.starts, instant_us) - 1
        into_interval = instant_us - self.starts[i]
        length = self.lengths[i]
        return self.cum_before[i] + min(length, into_interval)


# lo above hi: no instant falls inside, so the first lookup always builds a real table.
_EMPTY_TABLE = _IntervalTable(0, 0, 1 << 200, -(1 << 200), [], [], [], [])


def _instant_us(moment: datetime) -> int:
    try:
        return (moment - _EPOCH) // _ONE_US
    except TypeError:
        # Subtracting an aware from a naive datetime is the only TypeError here; reuse it as the check so
        # the hot path pays nothing for validation. A naive datetime is the right type with a wrong value.
        if isinstance(moment, datetime):
            message = f"expected a timezone-aware datetime, got naive {moment!r}"
            raise ValueError(message) from None
        raise TypeError(f"expected a datetime, got {type(moment).__name__}") from None


def _utc_from_us(instant_us: int) -> datetime:
    return _EPOCH + _ONE_US * instant_us


def _validated_hours(
    hours: Mapping[int, Sequence[tuple[time, time]]],
) -> tuple[tuple[WorkingHours, ...], ...]:
    weekly: list[tuple[WorkingHours, ...]] = [()] * 7
    for weekday, intervals in hours.items():
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be an int 0 (Monday) .. 6 (Sunday), got {weekday!r}")
        day_name = WEEKDAY_NAMES[weekday]
        parsed: list[WorkingHours] = []
        for start, end in intervals:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"{day_name}: working hours are local wall-clock times, got a tz-aware time")
            slot = WorkingHours(start, end)
            if not slot.ends_at_midnight and start >= end:
                raise ValueError(f"{day_name}: interval {start}-{end} does not start before it ends")
            if parsed:
                previous = parsed[-1]
                if previous.ends_at_midnight or start < previous.end:
                    raise ValueError(
                        f"{day_name}: interval {start}-{end} overlaps or precedes "
                        f"{previous.start}-{previous.end}; intervals must be sorted and non-overlapping"
                    )
            parsed.append(slot)
        weekly[weekday] = tuple(parsed)
    return tuple(weekly)


class BusinessCalendar:
    """A team's working time: time zone, working intervals per weekday, public holidays and company days off.

    Working hours are local wall-clock times; every answer is measured in real elapsed time, so a night shift
    spanning a DST change counts the hour that was skipped or repeated. Results are cached internally per
    local year, so holidays must not change after construction.
    """

    __slots__ = (
        "_days_off",
        "_holidays",
        "_lock",
        "_name",
        "_neighbours",
        "_table",
        "_timezone",
        "_tz",
        "_weekly",
        "_years",
    )

    def __init__(
        self,
        *,
        name: str,
        timezone: str,
        hours: Mapping[int, Sequence[tuple[time, time]]],
        holidays: Container[date] = frozenset(),
        days_off: Iterable[date] = (),
    ) -> None:
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {timezone!r}") from error
        self._name = name
        self._timezone = timezone
        self._weekly = _validated_hours(hours)
        self._holidays = holidays
        self._days_off = frozenset(days_off)
        self._table = _EMPTY_TABLE
        self._years: dict[int, list[tuple[int, int]]] = {}  # local year -> its working intervals
        self._lock = threading.Lock()
        self._neighbours: dict[tuple[date, int], date] = {}  # business-day steps, cached like the interval table

    @property
    def name(self) -> str:
        return self._name

    @property
    def timezone(self) -> str:
        return self._timezone

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def hours(self) -> tuple[tuple[WorkingHours, ...], ...]:
        """Working intervals indexed by weekday, 0 = Monday."""
        return self._weekly

    @property
    def days_off(self) -> frozenset[date]:
        return self._days_off

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self._name!r}, timezone={self._timezone!r})"

    def is_business_day(self, d: date) -> bool:
        """Whether the local date has working hours: a working weekday, not a holiday, not a day off."""
        if isinstance(d, datetime):
            # A datetime never equals a date in the holiday sets, so it would silently read as a business day.
            raise TypeError("is_business_day takes a date; convert the datetime to the calendar's local date")
        return bool(self._weekly[d.weekday()]) and d not in self._holidays and d not in self._days_off

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Real elapsed time inside working intervals between two aware instants; negative if end < start."""
        start_us = _instant_us(start)
        end_us = _instant_us(end)
        sign = 1
        if end_us < start_us:
            start_us, end_us, sign = end_us, start_us, -1
        table = self._table
        if start_us < table.lo_us or end_us > table.hi_us:
            table = self._covering(start_us, end_us)
        return _ONE_US * (sign * (table.business_us_until(end_us) - table.business_us_until(start_us)))

    def add_business_time(self, start: datetime, delta: timedelta) -> datetime:
        """The earliest instant (UTC) at which ``delta`` of business time has elapsed since ``start``."""
        if delta < timedelta(0):
            raise ValueError(f"delta must not be negative, got {delta}")
        start_us = _instant_us(start)
        if not delta:
            return start.astimezone(UTC)
        self._require_working_time()
        delta_us = delta // _ONE_US
        table = self._covering(start_us, start_us)
        idle_guard = _IdleGuard(self._name)
        while True:
            # Recomputed after every extension: cumulative sums are relative to the table's first year.
            target_us = table.business_us_until(start_us) + delta_us
            if target_us <= table.cum_after[-1]:
                break
            table = self._extended_forward(table, start_us, idle_guard)
        i = bisect_left(table.cum_after, target_us)
        # Landing exactly on an interval's end yields that end (e.g. Friday 17:00), not the next start: it is
        # the earliest instant at which the time has elapsed.
        return _utc_from_us(table.starts[i] + (target_us - table.cum_before[i]))

    def next_business_instant(self, t: datetime) -> datetime:
        """``t`` (in UTC) if it lies in working time, else the start of the next working interval."""
        instant_us = _instant_us(t)
        self._require_working_time()
        table = self._covering(instant_us, instant_us)
        i = bisect_right(table.starts, instant_us) - 1
        if instant_us < table.starts[i] + table.lengths[i]:
            return t.astimezone(UTC)
        idle_guard = _IdleGuard(self._name)
        while (i := bisect_right(table.starts, instant_us)) >= len(table.starts):
            table = self._extended_forward(table, instant_us, idle_guard)
        return _utc_from_us(table.starts[i])

    def subtract_business_time(self, end: datetime, delta: timedelta) -> datetime:
        """The latest instant (UTC) from which at least ``delta`` of business time has elapsed by ``end``.

        A lead in a status since an instant at or before this has been there ``delta`` business time:
        one comparison in SQL instead of a calendar computation per lead.
        """
        if delta < timedelta(0):
            raise ValueError(f"delta must not be negative, got {delta}")
        end_us = _instant_us(end)
        if not delta:
            return end.astimezone(UTC)
        self._require_working_time()
        delta_us = delta // _ONE_US
        table = self._covering(end_us, end_us)
        years = 1
        while table.business_us_until(end_us) - delta_us < 0:
            years *= 2
            if years > 64:
                raise ValueError(f"calendar {self._name!r}: not enough working time before {end}")
            table = self._rebuilt(table.first_year - years, table.end_year)
        target_us = table.business_us_until(end_us) - delta_us
        i = bisect_right(table.cum_before, target_us) - 1
        if target_us < table.cum_after[i] or i + 1 >= len(table.starts):
            return _utc_from_us(table.starts[i] + (target_us - table.cum_before[i]))
        # business time stands still between intervals: the latest instant is the next interval's start
        return _utc_from_us(table.starts[i + 1])

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """The same local time of day ``days`` business days later (from the next business instant).

        A time outside that day's working hours is moved to its first start or last end. This is what
        people mean by "within 5 business days": Monday 14:00 -> next Monday 14:00, one day later per holiday.
        """
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        local = self.next_business_instant(start).astimezone(self._tz)
        day = local.date()
        for _ in range(days):
            day = self._next_business_day(day, +1)
        return self._at_on(day, local.time())

    def last_business_instant(self, t: datetime) -> datetime:
        """``t`` (in UTC) if it lies in working time, else the end of the last working interval before it."""
        instant_us = _instant_us(t)
        self._require_working_time()
        table = self._covering(instant_us, instant_us)
        for _ in range(64):
            i = bisect_right(table.starts, instant_us) - 1
            if i > 0:  # index 0 is the table's zero-length sentinel: look a year further back
                end_us = table.starts[i] + table.lengths[i]
                return t.astimezone(UTC) if instant_us < end_us else _utc_from_us(end_us)
            table = self._rebuilt(table.first_year - 1, table.end_year)
        raise ValueError(f"calendar {self._name!r} has no working time in the 64 years before {t}")

    def subtract_business_days(self, end: datetime, days: int) -> datetime:
        """The latest start from which ``add_business_days(start, days)`` has come by ``end``.

        Counted from the last business instant at or before ``end``: when no business time passes (evenings,
        weekends, 08:30 before a 09:00 start) the answer does not move, so nobody becomes "stale" overnight.
        A close of work maps to the close ``days`` business days earlier; any other time of day to the same
        time of day then.
        """
        if days < 0:
            raise ValueError(f"days must not be negative, got {days}")
        last = self.last_business_instant(end)
        local = last.astimezone(self._tz)
        day = local.date()
        if not self.is_business_day(day) or last < self._day_bounds(day)[0]:
            day = self._next_business_day(day, -1)  # the close of the previous working day (an interval ending at 24:00)
        closes = self._day_bounds(day)[1]
        for _ in range(days):
            day = self._next_business_day(day, -1)
        if last >= closes:
            return self._day_bounds(day)[1]
        return self._at_on(day, local.time().replace(tzinfo=None))

    def _next_business_day(self, day: date, step: int) -> date:
        cached = self._neighbours.get((day, step))
        if cached is not None:
            return cached
        self._require_working_time()
        probe = day
        for _ in range(3660):
            probe = probe + timedelta(days=step)
            if self.is_business_day(probe):
                if len(self._neighbours) > 100_000:
                    self._neighbours.clear()
                self._neighbours[(day, step)] = probe
                return probe
        raise ValueError(f"calendar {self._name!r} has no business day within ten years of {day}")

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        slots = self._weekly[day.weekday()]
        first = datetime.combine(day, slots[0].start, tzinfo=self._tz)
        last_slot = slots[-1]
        last_day = day + timedelta(days=1) if last_slot.ends_at_midnight else day
        last = datetime.combine(last_day, last_slot.end, tzinfo=self._tz)
        return first.astimezone(UTC), last.astimezone(UTC)

    def _at_on(self, day: date, wall: time) -> datetime:
        first, last = self._day_bounds(day)
        moment = datetime.combine(day, wall.replace(tzinfo=None), tzinfo=self._tz).astimezone(UTC)
        return min(max(moment, first), last)

    # --- cache ------------------------------------------------------------------------------------------

    def _require_working_time(self) -> None:
        if not any(self._weekly):
            raise ValueError(f"calendar {self._name!r} has no working hours on any weekday")

    def _local_year(self, instant_us: int) -> int:
        try:
            return _utc_from_us(instant_us).astimezone(self._tz).year
        except OverflowError:
            return date.min.year if instant_us < 0 else date.max.year

    def _covering(self, start_us: int, end_us: int) -> _IntervalTable:
        table = self._table
        if table.lo_us <= start_us and end_us <= table.hi_us:
            return table
        first_year = self._local_year(start_us)
        last_year = self._local_year(end_us)
        if table.first_year < table.end_year:  # keep the range contiguous with what is cached
            first_year = min(first_year, table.first_year)
            last_year = max(last_year, table.end_year - 1)
        return self._rebuilt(first_year, last_year + 1)

    def _extended_forward(self, table: _IntervalTable, since_us: int, idle_guard: _IdleGuard) -> _IntervalTable:
        # Doubling the covered span keeps long searches to a logarithmic number of rebuilds.
        years_added = table.end_year - table.first_year
        extended = self._rebuilt(table.first_year, table.end_year + years_added)
        idle_guard.record(years_added, extended.cum_after[-1] - extended.business_us_until(since_us))
        return extended

    def _rebuilt(self, first_year: int, end_year: int) -> _IntervalTable:
        if first_year < _MIN_YEAR or end_year - 1 > _MAX_YEAR:
            raise ValueError(f"instants must fall within local years {_MIN_YEAR}..{_MAX_YEAR}")
        with self._lock:
            table = self._table
            if table.first_year < table.end_year:
                # Never shrink: another thread may have widened the table while this one waited.
                first_year = min(first_year, table.first_year)
                end_year = max(end_year, table.end_year)
                if (first_year, end_year) == (table.first_year, table.end_year):
                    return table
            starts = [self._local_us(date(first_year, 1, 1), _MIDNIGHT)]
            ends = [starts[0]]
            for year in range(first_year, end_year):
                intervals = self._years.get(year)
                if intervals is None:
                    intervals = self._years[year] = self._year_intervals(year)
                starts.extend(start for start, _ in intervals)
                ends.extend(end for _, end in intervals)
            lengths = [end - start for start, end in zip(starts, ends, strict=True)]
            cum_after = list(accumulate(lengths))
            cum_before = [total - length for total, length in zip(cum_after, lengths, strict=True)]
            table = _IntervalTable(
                first_year=first_year,
                end_year=end_year,
                lo_us=starts[0],
                hi_us=self._local_us(date(end_year, 1, 1), _MIDNIGHT),
                starts=starts,
                lengths=lengths,
                cum_before=cum_before,
                cum_after=cum_after,
            )
            self._table = table  # one assignment: readers see either the old or the new table, never a mix
            return table

    def _local_us(self, day: date, wall_time: time) -> int:
        # fold=0 throughout. A wall time repeated at a fall-back change means its first occurrence. A wall
        # time skipped at a spring-forward change is read with the pre-change offset, so it lands that much
        # after the change (Berlin 02:30 on 2026-03-29 is 03:30 CEST). One rule for every boundary keeps each
        # day's end identical to the next day's start.
        return (datetime.combine(day, wall_time, tzinfo=self._tz) - _EPOCH) // _ONE_US

    def _year_intervals(self, year: int) -> list[tuple[int, int]]:
        intervals: list[tuple[int, int]] = []
        day = date(year, 1, 1)
        day_start_us = self._local_us(day, _MIDNIGHT)
        while day.year == year:
            next_day = day + _ONE_DAY
            next_day_start_us = self._local_us(next_day, _MIDNIGHT)
            if self.is_business_day(day):
                intervals.extend(self._day_intervals(day, day_start_us, next_day_start_us))
            day, day_start_us = next_day, next_day_start_us
        return intervals

    def _day_intervals(self, day: date, day_start_us: int, next_day_start_us: int) -> list[tuple[int, int]]:
        """One local day's working intervals as real instants: clipped to the day, sorted, and merged.

        Wall times inside a spring-forward gap map past the gap (see _local_us), which can reorder or overlap
        intervals on that day; merging keeps every real instant counted at most once.
        """
        spans = []
        for slot in self._weekly[day.weekday()]:
            start_us = max(self._local_us(day, slot.start), day_start_us)
            end_us = next_day_start_us if slot.ends_at_midnight else self._local_us(day, slot.end)
            end_us = min(end_us, next_day_start_us)
            if start_us < end_us:
                spans.append((start_us, end_us))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for start_us, end_us in spans:
            if merged and start_us <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end_us))
            else:
                merged.append((start_us, end_us))
        return merged


class _IdleGuard:
    """Stops forward searches through calendars whose remaining years hold no working time at all."""

    __slots__ = ("available_us", "calendar_name", "idle_years")

    def __init__(self, calendar_name: str) -> None:
        self.calendar_name = calendar_name
        self.idle_years = 0
        self.available_us = -1

    def record(self, years_added: int, available_us: int) -> None:
        """Note an extension by years_added, after which available_us of business time lies ahead."""
        self.idle_years = self.idle_years + years_added if available_us == self.available_us else 0
        self.available_us = available_us
        if self.idle_years >= _MAX_IDLE_YEARS:
            raise ValueError(
                f"calendar {self.calendar_name!r} has no working time in {self.idle_years} consecutive years"
            )
