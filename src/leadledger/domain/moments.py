"""One parser and one accepted range for every time the product takes in: events, activities, changes, `--at`,
`--now`, report bounds.

A time outside 1970-2200 is a typo or an attack (`0001-01-01T00:00:00+14:00` overflows when converted to
UTC, `9999-12-31` overflows when a day is added to it); both are refused with a sentence the caller prefixes
with the field's name, never an exception from deep inside a report.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
FIRST_DAY = EARLIEST.date()
LAST_DAY = LATEST.date() - timedelta(days=1)
RANGE = "between 1970 and 2200"


def parse_moment(text: str, *, naive_is_utc: bool = True) -> datetime:
    """An ISO 8601 time as an aware UTC datetime; without a zone it is UTC (or refused, `naive_is_utc=False`)."""
    if not isinstance(text, str) or not 1 <= len(text) <= 64:
        raise ValueError("an ISO 8601 time is required (e.g. 2026-11-23T14:05:00Z)")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-23T14:05:00Z)") from None
    if moment.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"{text!r} has no time zone (add Z or +01:00)")
        moment = moment.replace(tzinfo=UTC)
    return check_moment(moment)


def check_moment(moment: datetime) -> datetime:
    """The time in UTC when it lies in the accepted range; ValueError otherwise (overflow included)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"times must lie {RANGE}") from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(f"times must lie {RANGE}")
    return utc


def parse_day(text: str) -> date:
    """An ISO 8601 date (2026-11-23) in the accepted range."""
    try:
        day = date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return check_day(day)


def check_day(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"dates must lie {RANGE}")
    return day
