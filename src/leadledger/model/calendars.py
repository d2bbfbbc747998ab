"""Builds a BusinessCalendar from the model file's plain strings, resolving public holidays with `holidays`.

Every configuration mistake is a ValueError naming the bad value, so the caller can point at the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, time
from typing import TYPE_CHECKING, Any

from leadledger.domain.calendar import BusinessCalendar

if TYPE_CHECKING:
    import holidays as holidays_lib

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# ISO 3166 codes only: `holidays` resolves the country by attribute lookup on its module, so anything else
# could reach unrelated names.
_COUNTRY_CODE = re.compile(r"^[A-Z]{2,3}$")


def build_calendar(
    *,
    name: str,
    timezone: str,
    hours: Mapping[str, Sequence[str]],
    holidays_country: str | None = None,
    holidays_subdivision: str | None = None,
    days_off: Iterable[date] = (),
    check_holidays: bool = True,
) -> BusinessCalendar:
    """A calendar from e.g. ``{"mon": ["09:00-12:30", "13:30-17:00"]}``; missing weekdays have no hours.

    With `check_holidays=False` (a model already validated when it was stored) the holiday tables load on
    first use: importing them costs most of a second, which a command that never counts business time skips.
    """
    weekly = {}
    for key, intervals in hours.items():
        weekday = _weekday(key)
        if weekday in weekly:
            raise ValueError(f"weekday {key!r} is given more than once")
        if isinstance(intervals, str):  # a lone "09:00-17:00" would otherwise be iterated character by character
            intervals = [intervals]
        weekly[weekday] = [_interval(text, key) for text in intervals]
    public_holidays: Any = (
        _public_holidays(holidays_country, holidays_subdivision)
        if check_holidays
        else _LazyHolidays(holidays_country, holidays_subdivision)
    )
    return BusinessCalendar(
        name=name,
        timezone=timezone,
        hours=weekly,
        holidays=public_holidays if public_holidays is not None else frozenset(),
        days_off=days_off,
    )


def _weekday(key: object) -> int:
    normalized = key.strip().lower() if isinstance(key, str) else key
    if normalized not in WEEKDAY_KEYS:
        raise ValueError(f"unknown weekday {key!r}; use one of {', '.join(WEEKDAY_KEYS)}")
    return WEEKDAY_KEYS.index(normalized)


def _interval(text: object, weekday_key: str) -> tuple[time, time]:
    """ "09:00-17:00" -> (09:00, 17:00); an end of "24:00" becomes 00:00, the domain's end-of-day marker."""
    match = _INTERVAL.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{weekday_key}: bad working hours {text!r}; write HH:MM-HH:MM, e.g. 09:00-17:00")
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    if start_hour > 23 or start_minute > 59 or end_minute > 59 or end_hour > 24 or (end_hour == 24 and end_minute):
        raise ValueError(f"{weekday_key}: {text!r} is not a valid time range (00:00 to 24:00)")
    return time(start_hour, start_minute), time(end_hour % 24, end_minute)


class _LazyHolidays:
    """A holiday container that builds the `holidays` table the first time a date is looked up."""

    def __init__(self, country: str | None, subdivision: str | None):
        self._args = (country, subdivision)
        self._table: Any = None
        self._loaded = False

    def __contains__(self, day: object) -> bool:
        if not self._loaded:
            self._table = _public_holidays(*self._args)
            self._loaded = True
        return self._table is not None and day in self._table


def _public_holidays(country: str | None, subdivision: str | None) -> holidays_lib.HolidayBase | None:
    import holidays as holidays_lib

    if country is None:
        if subdivision is not None:
            raise ValueError(f"holiday subdivision {subdivision!r} needs a holiday country")
        return None
    code = country.strip().upper()
    if not _COUNTRY_CODE.match(code):
        raise ValueError(f"unknown holiday country {country!r}; use an ISO 3166 code such as US or DE")
    try:
        # Without `years` the object fills in each year on first lookup, so any span of years just works.
        national = holidays_lib.country_holidays(code)
    except NotImplementedError:
        raise ValueError(f"unknown holiday country {country!r}") from None
    if subdivision is None:
        return national
    # Codes are upper case ("BY") but aliases are not ("Bayern"), so try the text as written first.
    for spelling in dict.fromkeys((subdivision.strip(), subdivision.strip().upper())):
        try:
            return holidays_lib.country_holidays(code, subdiv=spelling)
        except NotImplementedError:
            continue
    raise ValueError(
        f"unknown holiday subdivision {subdivision!r} for {code}; known: {', '.join(national.subdivisions)}"
    )
