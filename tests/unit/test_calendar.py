"""Business-hours calendars: the working time SLA clocks and duration reports rely on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadledger.domain.calendar import BusinessCalendar
from leadledger.model.calendars import build_calendar

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
NINE_TO_FIVE = ("09:00-17:00",)


def office(timezone: str = "America/New_York", **overrides) -> BusinessCalendar:
    """Monday to Friday 9-17, no holidays unless given."""
    options = {"name": "office", "timezone": timezone, "hours": dict.fromkeys(WEEKDAYS, NINE_TO_FIVE)}
    options.update(overrides)
    return build_calendar(**options)


def around_the_clock(timezone: str) -> BusinessCalendar:
    return BusinessCalendar(
        name="24/7", timezone=timezone, hours={weekday: [(time(0), time(0))] for weekday in range(7)}
    )


def at(tz: ZoneInfo, text: str) -> datetime:
    """A local wall-clock instant, e.g. at(NEW_YORK, "2026-11-20 16:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def hours(amount: float) -> timedelta:
    return timedelta(hours=amount)


US_OFFICE = office(holidays_country="US")
US_OFFICE_WITH_LUNCH = office(hours=dict.fromkeys(WEEKDAYS, ("09:00-12:30", "13:30-17:00")), holidays_country="US")
BERLIN_OFFICE = office("Europe/Berlin", holidays_country="DE", holidays_subdivision="BY")


# --- spans ------------------------------------------------------------------------------------------------


def test_a_span_within_one_working_day_counts_only_the_working_hours():
    calendar = office()
    assert calendar.business_time_between(at(NEW_YORK, "2026-06-15 10:00"), at(NEW_YORK, "2026-06-15 12:15")) == hours(
        2.25
    )
    assert calendar.business_time_between(at(NEW_YORK, "2026-06-15 06:00"), at(NEW_YORK, "2026-06-15 20:00")) == hours(
        8
    )


def test_a_weekend_adds_no_business_time():
    calendar = office()
    friday_afternoon, monday_morning = at(NEW_YORK, "2026-11-20 16:00"), at(NEW_YORK, "2026-11-23 10:00")
    assert calendar.business_time_between(friday_afternoon, monday_morning) == hours(2)


def test_a_span_entirely_outside_working_hours_is_zero():
    calendar = office()
    assert calendar.business_time_between(
        at(NEW_YORK, "2026-06-13 08:00"), at(NEW_YORK, "2026-06-14 20:00")
    ) == timedelta(0)


def test_a_lunch_break_is_not_business_time():
    around_lunch = (at(NEW_YORK, "2026-06-15 12:00"), at(NEW_YORK, "2026-06-15 14:00"))
    assert US_OFFICE_WITH_LUNCH.business_time_between(*around_lunch) == hours(1)
    assert US_OFFICE_WITH_LUNCH.business_time_between(
        at(NEW_YORK, "2026-06-15 00:00"), at(NEW_YORK, "2026-06-16 00:00")
    ) == hours(7)


def test_a_reversed_span_gives_the_negative_business_time():
    calendar = office()
    friday_afternoon, monday_morning = at(NEW_YORK, "2026-11-20 16:00"), at(NEW_YORK, "2026-11-23 10:00")
    assert calendar.business_time_between(monday_morning, friday_afternoon) == -hours(2)


def test_spans_keep_microsecond_precision():
    calendar = office()
    start = at(NEW_YORK, "2026-06-15 09:00:00.000001")
    assert calendar.business_time_between(start, at(NEW_YORK, "2026-06-15 09:00:01")) == timedelta(microseconds=999_999)


def test_a_span_of_two_years_counts_every_working_week():
    calendar = office()
    two_years_of_weeks = (at(NEW_YORK, "2026-01-05 00:00"), at(NEW_YORK, "2028-01-03 00:00"))
    assert calendar.business_time_between(*two_years_of_weeks) == 104 * hours(40)


def test_a_span_of_decades_subtracts_each_years_holidays():
    start, end = at(NEW_YORK, "2020-01-01 00:00"), at(NEW_YORK, "2045-01-01 00:00")
    working_days = sum(US_OFFICE.is_business_day(date(2020, 1, 1) + timedelta(days=offset)) for offset in range(9132))
    assert US_OFFICE.business_time_between(start, end) == working_days * hours(8)


def test_instants_in_any_time_zone_denote_the_same_moment():
    calendar = office()
    local_span = (at(NEW_YORK, "2026-06-15 10:00"), at(NEW_YORK, "2026-06-15 16:00"))
    utc_span = tuple(moment.astimezone(UTC) for moment in local_span)
    assert calendar.business_time_between(*utc_span) == calendar.business_time_between(*local_span) == hours(6)


def test_the_same_utc_span_gives_different_business_time_in_different_time_zones():
    noon_to_six_utc = (datetime(2026, 6, 15, 12, tzinfo=UTC), datetime(2026, 6, 15, 18, tzinfo=UTC))
    # Berlin (UTC+2) sees 14:00-20:00 local, New York (UTC-4) sees 08:00-14:00 local.
    assert office("Europe/Berlin").business_time_between(*noon_to_six_utc) == hours(3)
    assert office("America/New_York").business_time_between(*noon_to_six_utc) == hours(5)


# --- holidays and days off ----------------------------------------------------------------------------------


def test_a_public_holiday_adds_no_business_time():
    thanksgiving = date(2026, 11, 26)
    assert not US_OFFICE.is_business_day(thanksgiving)
    wednesday_to_friday = (at(NEW_YORK, "2026-11-25 09:00"), at(NEW_YORK, "2026-11-27 09:00"))
    assert US_OFFICE.business_time_between(*wednesday_to_friday) == hours(8)


def test_a_subdivision_holiday_applies_only_to_calendars_of_that_subdivision():
    patriots_day = date(2026, 4, 20)  # Massachusetts and Maine only
    massachusetts_office = office(holidays_country="US", holidays_subdivision="MA")
    assert not massachusetts_office.is_business_day(patriots_day)
    assert US_OFFICE.is_business_day(patriots_day)
    that_day = (at(NEW_YORK, "2026-04-20 00:00"), at(NEW_YORK, "2026-04-21 00:00"))
    assert massachusetts_office.business_time_between(*that_day) == timedelta(0)
    assert US_OFFICE.business_time_between(*that_day) == hours(8)


def test_a_german_state_holiday_is_not_business_time_in_that_state():
    epiphany = date(2026, 1, 6)  # a holiday in Bavaria, not in Berlin
    assert not BERLIN_OFFICE.is_business_day(epiphany)
    assert office("Europe/Berlin", holidays_country="DE", holidays_subdivision="BE").is_business_day(epiphany)


def test_a_company_day_off_adds_no_business_time():
    calendar = office(days_off=[date(2026, 12, 24)])
    assert not calendar.is_business_day(date(2026, 12, 24))
    # Friday the 25th is still worked: this calendar has no public holidays.
    christmas_week = (at(NEW_YORK, "2026-12-23 17:00"), at(NEW_YORK, "2026-12-28 09:00"))
    assert calendar.business_time_between(*christmas_week) == hours(8)


def test_a_weekday_without_hours_is_not_a_business_day():
    assert not office().is_business_day(date(2026, 6, 13))
    assert office().is_business_day(date(2026, 6, 15))


def test_is_business_day_refuses_a_datetime_rather_than_misreading_it():
    with pytest.raises(TypeError):
        office().is_business_day(datetime(2026, 6, 15, 10, tzinfo=UTC))


# --- daylight saving time -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "change_day", "day_length"),
    [
        ("Europe/Berlin", "2026-03-29", hours(23)),
        ("Europe/Berlin", "2026-10-25", hours(25)),
        ("America/New_York", "2026-03-08", hours(23)),
        ("America/New_York", "2026-11-01", hours(25)),
        ("Europe/Berlin", "2026-03-28", hours(24)),
    ],
)
def test_a_round_the_clock_day_counts_its_true_length_on_dst_changes(timezone, change_day, day_length):
    tz = ZoneInfo(timezone)
    day = date.fromisoformat(change_day)
    midnight, next_midnight = (datetime.combine(d, time(0), tzinfo=tz) for d in (day, day + timedelta(days=1)))
    assert around_the_clock(timezone).business_time_between(midnight, next_midnight) == day_length


@pytest.mark.parametrize(
    ("sunday", "shift_length"),
    [("2026-03-29", hours(2)), ("2026-10-25", hours(4)), ("2026-03-22", hours(3))],
)
def test_a_night_shift_over_a_dst_change_counts_the_real_time_worked(sunday, shift_length):
    night_shift = BusinessCalendar(name="night", timezone="Europe/Berlin", hours={6: [(time(1), time(4))]})
    day = date.fromisoformat(sunday)
    whole_day = (
        datetime.combine(day, time(0), tzinfo=BERLIN),
        datetime.combine(day, time(12), tzinfo=BERLIN),
    )
    assert night_shift.business_time_between(*whole_day) == shift_length


@pytest.mark.parametrize(
    ("tz", "friday", "monday"),
    [
        (BERLIN, "2026-03-27", "2026-03-30"),
        (BERLIN, "2026-10-23", "2026-10-26"),
        (NEW_YORK, "2026-03-06", "2026-03-09"),
        (NEW_YORK, "2026-10-30", "2026-11-02"),
    ],
)
def test_office_hours_follow_the_local_clock_across_a_dst_weekend(tz, friday, monday):
    calendar = office(tz.key)
    friday_noon, monday_noon = at(tz, f"{friday} 12:00"), at(tz, f"{monday} 12:00")
    assert calendar.business_time_between(friday_noon, monday_noon) == hours(8)
    assert calendar.add_business_time(friday_noon, hours(8)) == monday_noon


def test_working_hours_starting_in_the_spring_forward_gap_start_that_long_after_the_jump():
    # 02:30 does not exist in Berlin on 2026-03-29; fold=0 reads it with the winter offset, i.e. 03:30 CEST.
    early_shift = BusinessCalendar(name="early", timezone="Europe/Berlin", hours={6: [(time(2, 30), time(5))]})
    day = (at(BERLIN, "2026-03-29 00:00"), at(BERLIN, "2026-03-29 12:00"))
    assert early_shift.business_time_between(*day) == hours(1.5)
    assert early_shift.next_business_instant(day[0]) == at(BERLIN, "2026-03-29 03:30").astimezone(UTC)


def test_intervals_around_the_spring_forward_gap_never_count_the_same_real_time_twice():
    # 01:30-02:30 ends at 03:30 CEST (fold=0) and so overlaps 03:00-04:00: together, 01:30 CET-04:00 CEST.
    shifts = BusinessCalendar(
        name="shifts", timezone="Europe/Berlin", hours={6: [(time(1, 30), time(2, 30)), (time(3), time(4))]}
    )
    day = (at(BERLIN, "2026-03-29 00:00"), at(BERLIN, "2026-03-29 12:00"))
    assert shifts.business_time_between(*day) == hours(1.5)
    assert shifts.add_business_time(day[0], hours(1.5)) == at(BERLIN, "2026-03-29 04:00").astimezone(UTC)


def test_a_round_the_clock_calendar_adds_real_hours_through_the_repeated_hour():
    calendar = around_the_clock("Europe/Berlin")
    midnight = at(BERLIN, "2026-10-25 00:00")
    # 02:00-03:00 happens twice that night: three real hours after midnight it is 02:00 for the second time.
    assert calendar.add_business_time(midnight, hours(3)) == at(BERLIN, "2026-10-25 02:00").replace(fold=1).astimezone(
        UTC
    )
    assert calendar.add_business_time(at(BERLIN, "2026-03-29 00:00"), hours(3)) == at(
        BERLIN, "2026-03-29 04:00"
    ).astimezone(UTC)


# --- adding business time -----------------------------------------------------------------------------------


def test_adding_two_hours_on_friday_afternoon_lands_on_monday_morning():
    due = office().add_business_time(at(NEW_YORK, "2026-11-20 16:30"), hours(2))
    assert due == at(NEW_YORK, "2026-11-23 10:30")
    assert due.tzinfo is UTC


def test_adding_five_business_days_skips_a_public_holiday():
    monday_morning = at(NEW_YORK, "2026-11-23 09:00")
    # Mon, Tue, Wed, (Thanksgiving), Fri, Mon: the fifth working day ends on the following Monday at 17:00.
    assert US_OFFICE.add_business_time(monday_morning, 5 * hours(8)) == at(NEW_YORK, "2026-11-30 17:00")


def test_adding_business_time_that_ends_with_a_working_day_lands_on_its_closing_time():
    # The earliest moment the time has elapsed, not the next morning's opening.
    assert office().add_business_time(at(NEW_YORK, "2026-11-20 09:00"), hours(8)) == at(NEW_YORK, "2026-11-20 17:00")


def test_adding_business_time_from_outside_working_hours_starts_at_the_next_opening():
    calendar = office()
    assert calendar.add_business_time(at(NEW_YORK, "2026-11-21 12:00"), hours(1)) == at(NEW_YORK, "2026-11-23 10:00")
    assert calendar.add_business_time(at(NEW_YORK, "2026-11-23 06:00"), hours(1)) == at(NEW_YORK, "2026-11-23 10:00")


def test_adding_across_a_lunch_break_resumes_after_lunch():
    assert US_OFFICE_WITH_LUNCH.add_business_time(at(NEW_YORK, "2026-06-15 12:00"), hours(1)) == at(
        NEW_YORK, "2026-06-15 14:00"
    )


def test_adding_zero_returns_the_start_even_outside_working_hours():
    saturday = at(NEW_YORK, "2026-11-21 12:00")
    assert office().add_business_time(saturday, timedelta(0)) == saturday
    assert office().add_business_time(saturday, timedelta(0)).tzinfo is UTC


def test_adding_more_than_a_year_of_business_time_crosses_into_later_years():
    calendar = office()
    start = at(NEW_YORK, "2026-01-05 09:00")
    assert calendar.add_business_time(start, 104 * hours(40)) == at(NEW_YORK, "2027-12-31 17:00")


def test_adding_negative_business_time_is_rejected():
    with pytest.raises(ValueError, match="negative"):
        office().add_business_time(at(NEW_YORK, "2026-06-15 10:00"), -hours(1))


def test_a_calendar_without_working_hours_refuses_to_add_time():
    closed = BusinessCalendar(name="closed", timezone="UTC", hours={})
    with pytest.raises(ValueError, match="no working hours"):
        closed.add_business_time(datetime(2026, 6, 15, tzinfo=UTC), hours(1))
    with pytest.raises(ValueError, match="no working hours"):
        closed.next_business_instant(datetime(2026, 6, 15, tzinfo=UTC))
    assert closed.business_time_between(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    ) == timedelta(0)


def test_a_calendar_whose_every_day_is_a_holiday_refuses_to_add_time_instead_of_searching_forever():
    class EveryDay:
        def __contains__(self, day: object) -> bool:
            return True

    never_open = BusinessCalendar(name="never", timezone="UTC", hours={0: [(time(9), time(17))]}, holidays=EveryDay())
    with pytest.raises(ValueError, match="no working time"):
        never_open.add_business_time(datetime(2026, 6, 15, tzinfo=UTC), hours(1))


# --- next business instant ----------------------------------------------------------------------------------


def test_the_next_business_instant_of_a_working_moment_is_that_moment():
    inside = at(NEW_YORK, "2026-06-15 10:00")
    assert office().next_business_instant(inside) == inside
    assert office().next_business_instant(at(NEW_YORK, "2026-06-15 09:00")) == at(NEW_YORK, "2026-06-15 09:00")


def test_the_next_business_instant_after_closing_is_the_next_opening():
    calendar = office()
    assert calendar.next_business_instant(at(NEW_YORK, "2026-11-20 17:00")) == at(NEW_YORK, "2026-11-23 09:00")
    assert calendar.next_business_instant(at(NEW_YORK, "2026-11-21 12:00")) == at(NEW_YORK, "2026-11-23 09:00")
    assert US_OFFICE.next_business_instant(at(NEW_YORK, "2026-11-25 17:30")) == at(NEW_YORK, "2026-11-27 09:00")


def test_the_next_business_instant_after_the_last_opening_of_a_year_is_in_the_next_year():
    assert US_OFFICE.next_business_instant(at(NEW_YORK, "2026-12-31 17:00")) == at(NEW_YORK, "2027-01-04 09:00")


# --- input checks -------------------------------------------------------------------------------------------


def test_naive_datetimes_are_rejected():
    calendar = office()
    naive, aware = datetime(2026, 6, 15, 10), at(NEW_YORK, "2026-06-15 10:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.business_time_between(naive, aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.business_time_between(aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_business_time(naive, hours(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.next_business_instant(naive)


@pytest.mark.parametrize(
    ("intervals", "problem"),
    [
        ([(time(9), time(12)), (time(11), time(17))], "overlaps"),
        ([(time(13), time(17)), (time(9), time(12))], "overlaps or precedes"),
        ([(time(17), time(9))], "does not start before it ends"),
        ([(time(9), time(9))], "does not start before it ends"),
        ([(time(9), time(0)), (time(10), time(11))], "overlaps"),
    ],
)
def test_invalid_working_intervals_are_rejected_naming_the_weekday(intervals, problem):
    with pytest.raises(ValueError, match=f"Wednesday.*{problem}"):
        BusinessCalendar(name="bad", timezone="UTC", hours={2: intervals})


def test_an_interval_ending_at_midnight_runs_to_the_end_of_the_day():
    evening = build_calendar(name="late", timezone="UTC", hours={"Mon": ["18:00-24:00"]})
    monday = (datetime(2026, 6, 15, tzinfo=UTC), datetime(2026, 6, 16, 12, tzinfo=UTC))
    assert evening.business_time_between(*monday) == hours(6)


def test_weekday_keys_are_case_insensitive_and_missing_days_have_no_hours():
    calendar = build_calendar(name="x", timezone="UTC", hours={"MON": NINE_TO_FIVE, "Sat": NINE_TO_FIVE})
    assert [calendar.is_business_day(date(2026, 6, 15) + timedelta(days=n)) for n in range(7)] == [
        True,
        False,
        False,
        False,
        False,
        True,
        False,
    ]


@pytest.mark.parametrize(
    ("options", "named_value"),
    [
        ({"hours": {"monday": NINE_TO_FIVE}}, "'monday'"),
        ({"hours": {"mon": ["9-17"]}}, "'9-17'"),
        ({"hours": {"mon": ["09:00-25:00"]}}, "'09:00-25:00'"),
        ({"hours": {"mon": ["24:00-24:00"]}}, "'24:00-24:00'"),
        ({"hours": {"mon": ["09:60-17:00"]}}, "'09:60-17:00'"),
        ({"hours": {"mon": ["17:00-09:00"]}}, "Monday"),
        ({"timezone": "Mars/Olympus_Mons"}, "'Mars/Olympus_Mons'"),
        ({"holidays_country": "XX"}, "'XX'"),
        ({"holidays_country": "holiday_base"}, "'holiday_base'"),
        ({"holidays_country": "US", "holidays_subdivision": "ZZ"}, "'ZZ'"),
        ({"holidays_subdivision": "MA"}, "'MA'"),
    ],
)
def test_a_bad_calendar_definition_raises_a_value_error_naming_the_bad_value(options, named_value):
    definition = {"name": "bad", "timezone": "UTC", "hours": {"mon": NINE_TO_FIVE}} | options
    with pytest.raises(ValueError, match=named_value):
        build_calendar(**definition)


def test_holiday_codes_are_accepted_in_any_case():
    calendar = office(holidays_country="us", holidays_subdivision="ma")
    assert not calendar.is_business_day(date(2026, 4, 20))


# --- properties ---------------------------------------------------------------------------------------------

PROPERTY_CALENDARS = [
    US_OFFICE_WITH_LUNCH,
    BERLIN_OFFICE,
    around_the_clock("Europe/Berlin"),
    # Intervals touching and straddling the spring-forward gap, the hardest case for the instant mapping.
    BusinessCalendar(
        name="odd shifts",
        timezone="Europe/Berlin",
        hours={
            6: [(time(1, 30), time(2, 30)), (time(3), time(4)), (time(22), time(0))],
            0: [(time(0), time(6))],
        },
    ),
]
calendars = st.sampled_from(PROPERTY_CALENDARS)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2028, 12, 31),
    timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))


def in_order(*moments: datetime) -> list[datetime]:
    # Same-zone aware comparisons ignore fold, so order by the UTC instant.
    return sorted(moments, key=lambda moment: moment.astimezone(UTC))


@given(calendars, instants, durations)
def test_business_time_between_a_start_and_the_result_of_adding_is_what_was_added(calendar, start, delta):
    due = calendar.add_business_time(start, delta)
    assert calendar.business_time_between(start, due) == delta
    if delta:
        assert calendar.business_time_between(start, due - timedelta(microseconds=1)) < delta


@given(calendars, instants, instants, instants)
def test_business_time_over_consecutive_spans_adds_up(calendar, a, b, c):
    between = calendar.business_time_between
    assert between(a, b) + between(b, c) == between(a, c)


@given(calendars, instants, instants, instants)
def test_business_time_never_shrinks_as_a_span_grows(calendar, first, second, third):
    a, b, c = in_order(first, second, third)
    between = calendar.business_time_between
    assert timedelta(0) <= between(a, b) <= between(a, c)
    assert timedelta(0) <= between(b, c) <= between(a, c)


@given(calendars, instants)
def test_the_next_business_instant_is_working_time_with_none_skipped_before_it(calendar, moment):
    opening = calendar.next_business_instant(moment)
    assert opening >= moment
    assert calendar.business_time_between(moment, opening) == timedelta(0)
    one_microsecond = timedelta(microseconds=1)
    assert calendar.business_time_between(opening, opening + one_microsecond) == one_microsecond


@given(instants, instants)
@settings(max_examples=50)
def test_business_time_matches_a_day_by_day_count(start, end):
    start, end = in_order(start, end)
    assert US_OFFICE_WITH_LUNCH.business_time_between(start, end) == day_by_day_business_time(
        US_OFFICE_WITH_LUNCH, start, end
    )


@given(st.lists(st.tuples(instants, instants), min_size=1, max_size=5))
@settings(max_examples=30)
def test_answers_do_not_depend_on_which_spans_were_asked_before(spans):
    fresh = office("Europe/Berlin", holidays_country="DE")
    reference = office("Europe/Berlin", holidays_country="DE")
    answers = [fresh.business_time_between(start, end) for start, end in spans]
    assert answers == [reference.business_time_between(start, end) for start, end in reversed(spans)][::-1]


def day_by_day_business_time(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Independent slow reference: walk every local day and clip its intervals to the span."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    day = start.astimezone(calendar.tz).date() - timedelta(days=1)
    total = timedelta(0)
    while day <= end.astimezone(calendar.tz).date():
        if calendar.is_business_day(day):
            for slot in calendar.hours[day.weekday()]:
                opens = datetime.combine(day, slot.start, tzinfo=calendar.tz).astimezone(UTC)
                closing_day = day + timedelta(days=1) if slot.ends_at_midnight else day
                closes = datetime.combine(closing_day, slot.end, tzinfo=calendar.tz).astimezone(UTC)
                total += max(timedelta(0), min(closes, end) - max(opens, start))
        day += timedelta(days=1)
    return total


# --- business-day cutoffs (staleness, time rules) -------------------------------------------------------------


def test_a_business_day_cutoff_does_not_move_overnight():
    # Monday 17:00 (close) and Tuesday 08:30 (before opening): no business time passes between them, so
    # "ten business days ago" is the same instant: the close ten business days before Monday.
    closing = US_OFFICE.subtract_business_days(at(NEW_YORK, "2026-06-15 17:00"), 10)
    assert closing == at(NEW_YORK, "2026-06-01 17:00")
    assert US_OFFICE.subtract_business_days(at(NEW_YORK, "2026-06-16 08:30"), 10) == closing
    assert US_OFFICE.subtract_business_days(at(NEW_YORK, "2026-06-15 23:59"), 10) == closing
    assert US_OFFICE.subtract_business_days(at(NEW_YORK, "2026-06-16 09:00"), 10) == at(NEW_YORK, "2026-06-02 09:00")


def test_the_last_business_instant_before_a_lunch_break_is_its_start():
    assert US_OFFICE_WITH_LUNCH.last_business_instant(at(NEW_YORK, "2026-06-15 13:00")) == at(
        NEW_YORK, "2026-06-15 12:30"
    )
    assert US_OFFICE_WITH_LUNCH.last_business_instant(at(NEW_YORK, "2026-06-15 10:00")) == at(
        NEW_YORK, "2026-06-15 10:00"
    )


DAY_COUNT_CALENDARS = [US_OFFICE, US_OFFICE_WITH_LUNCH, BERLIN_OFFICE]


@given(st.sampled_from(DAY_COUNT_CALENDARS), instants, instants, st.integers(min_value=1, max_value=15))
def test_a_start_is_before_the_business_day_cutoff_exactly_when_its_due_time_has_come(calendar, start, end, days):
    cutoff = calendar.subtract_business_days(end, days)
    due = calendar.add_business_days(start, days)
    assert (start.astimezone(UTC) <= cutoff) == (due <= end.astimezone(UTC))


@given(st.sampled_from(DAY_COUNT_CALENDARS), instants, st.integers(min_value=1, max_value=15))
def test_a_business_day_cutoff_stands_still_while_no_business_time_passes(calendar, end, days):
    last = calendar.last_business_instant(end)
    assert calendar.business_time_between(last, end) == timedelta(0)
    assert calendar.subtract_business_days(end, days) == calendar.subtract_business_days(last, days)
