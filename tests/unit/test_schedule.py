"""Opening hours as pure functions: intervals, merging, next opening, Berlin's DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.rooms.schedule import Period, next_opening, open_interval, validate_period
from tests.unit.support import BERLIN, berlin

TZ = "Europe/Berlin"
AROUND_THE_CLOCK = [Period(day, "00:00", "24:00") for day in range(7)]
# Like the land registry: Mon-Thu mornings, Thursday afternoon too.
KATASTER = [Period(day, "08:30", "12:00") for day in range(4)] + [Period(3, "14:00", "17:30")]


def local(moment: datetime) -> datetime:
    return moment.astimezone(BERLIN)


# -- open_interval ------------------------------------------------------------------------

def test_inside_opening_hours_the_interval_is_that_period() -> None:
    at = berlin(2025, 1, 6, 9, 0)  # Monday
    assert open_interval(KATASTER, set(), TZ, at) == (berlin(2025, 1, 6, 8, 30),
                                                      berlin(2025, 1, 6, 12, 0))


@pytest.mark.parametrize("at", [
    berlin(2025, 1, 6, 8, 29),   # a minute before opening
    berlin(2025, 1, 6, 12, 0),   # closing time itself is closed
    berlin(2025, 1, 6, 13, 0),   # lunch
    berlin(2025, 1, 10, 9, 0),   # Friday: no hours
    berlin(2025, 1, 11, 10, 0),  # Saturday
])
def test_outside_opening_hours_there_is_no_interval(at: datetime) -> None:
    assert open_interval(KATASTER, set(), TZ, at) is None


def test_opening_hours_are_local_time_not_utc() -> None:
    # 07:45 UTC is 08:45 in Berlin in winter (open) ...
    assert open_interval(KATASTER, set(), TZ, datetime(2025, 1, 6, 7, 45, tzinfo=UTC))
    # ... and 07:15 UTC is 08:15 (closed); in summer 06:45 UTC is already 08:45 (open).
    assert open_interval(KATASTER, set(), TZ, datetime(2025, 1, 6, 7, 15, tzinfo=UTC)) is None
    assert open_interval(KATASTER, set(), TZ, datetime(2025, 7, 7, 6, 45, tzinfo=UTC))


def test_around_the_clock_merges_across_midnights() -> None:
    at = berlin(2025, 1, 8, 23, 59)
    interval = open_interval(AROUND_THE_CLOCK, set(), TZ, at)
    assert interval is not None
    opens, closes = interval
    assert opens == berlin(2025, 1, 8)
    # Not "closes at midnight": the days that follow are merged (two weeks ahead).
    assert closes - at > timedelta(days=14)
    assert local(closes).time() == datetime.min.time()


def test_around_the_clock_ends_at_the_next_closed_day() -> None:
    interval = open_interval(AROUND_THE_CLOCK, {date(2025, 1, 10)}, TZ, berlin(2025, 1, 8, 10))
    assert interval == (berlin(2025, 1, 8), berlin(2025, 1, 10))
    assert open_interval(AROUND_THE_CLOCK, {date(2025, 1, 10)}, TZ, berlin(2025, 1, 10, 10)) \
        is None


def test_an_evening_merges_with_the_early_hours_of_the_next_day() -> None:
    plan = [Period(0, "20:00", "24:00"), Period(1, "00:00", "02:00")]
    assert open_interval(plan, set(), TZ, berlin(2025, 1, 6, 21, 0)) == (
        berlin(2025, 1, 6, 20, 0), berlin(2025, 1, 7, 2, 0))
    after_midnight = open_interval(plan, set(), TZ, berlin(2025, 1, 7, 1, 0))
    assert after_midnight is not None and after_midnight[1] == berlin(2025, 1, 7, 2, 0)
    assert open_interval(plan, set(), TZ, berlin(2025, 1, 7, 2, 0)) is None


def test_a_closed_day_has_no_interval() -> None:
    assert open_interval(KATASTER, {date(2025, 4, 17)}, TZ, berlin(2025, 4, 17, 9)) is None
    assert open_interval(KATASTER, {date(2025, 4, 17)}, TZ, berlin(2025, 4, 16, 9))


def test_no_plan_means_always_closed() -> None:
    assert open_interval([], set(), TZ, berlin(2025, 1, 6, 10)) is None
    assert next_opening([], set(), TZ, berlin(2025, 1, 6, 10)) is None


# -- next_opening ---------------------------------------------------------------------------

def test_next_opening_later_the_same_day() -> None:
    assert next_opening(KATASTER, set(), TZ, berlin(2025, 4, 17, 12, 30)) == \
        berlin(2025, 4, 17, 14, 0)


def test_next_opening_across_the_weekend() -> None:
    # Thursday evening → Monday morning (Friday to Sunday have no hours).
    assert next_opening(KATASTER, set(), TZ, berlin(2025, 1, 9, 18, 0)) == \
        berlin(2025, 1, 13, 8, 30)


def test_next_opening_skips_closed_days() -> None:
    # Thursday before Easter: Good Friday has no hours anyway, Easter Monday is a holiday.
    holidays = {date(2025, 4, 18), date(2025, 4, 21)}
    assert next_opening(KATASTER, holidays, TZ, berlin(2025, 4, 17, 18, 0)) == \
        berlin(2025, 4, 22, 8, 30)


def test_next_opening_is_strictly_after() -> None:
    # At the very minute of opening, the next opening is the following one.
    assert next_opening(KATASTER, set(), TZ, berlin(2025, 1, 6, 8, 30)) == \
        berlin(2025, 1, 7, 8, 30)


def test_next_opening_gives_up_after_sixty_days() -> None:
    closed = {date(2025, 1, 6) + timedelta(days=n) for n in range(70)}
    assert next_opening(KATASTER, closed, TZ, berlin(2025, 1, 6, 6, 0)) is None


# -- daylight saving time in Europe/Berlin ------------------------------------------------

def test_next_opening_across_the_spring_change_keeps_the_wall_clock() -> None:
    # Friday 28 March 2025 is CET (UTC+1); Monday 31 March is CEST (UTC+2).
    friday = berlin(2025, 3, 28, 13, 0)
    assert friday == datetime(2025, 3, 28, 12, 0, tzinfo=UTC)
    opening = next_opening(KATASTER, set(), TZ, friday)
    assert opening is not None
    assert local(opening).replace(tzinfo=None) == datetime(2025, 3, 31, 8, 30)
    assert opening.astimezone(UTC) == datetime(2025, 3, 31, 6, 30, tzinfo=UTC)


def test_next_opening_across_the_autumn_change_keeps_the_wall_clock() -> None:
    opening = next_opening(KATASTER, set(), TZ, berlin(2025, 10, 23, 18, 0))
    assert opening is not None
    assert opening.astimezone(UTC) == datetime(2025, 10, 27, 7, 30, tzinfo=UTC)


def test_opening_hours_hold_on_either_side_of_the_spring_change() -> None:
    # The same 08:30 local opening is 07:30 UTC before and 06:30 UTC after the change.
    assert open_interval(KATASTER, set(), TZ, datetime(2025, 3, 27, 7, 35, tzinfo=UTC))
    assert open_interval(KATASTER, set(), TZ, datetime(2025, 3, 31, 6, 35, tzinfo=UTC))
    assert open_interval(KATASTER, set(), TZ, datetime(2025, 3, 31, 6, 25, tzinfo=UTC)) is None


@pytest.mark.parametrize("at", [
    datetime(2025, 3, 30, 0, 30, tzinfo=UTC),  # 01:30 CET, before the jump
    datetime(2025, 3, 30, 1, 30, tzinfo=UTC),  # 03:30 CEST, after the jump
    datetime(2025, 10, 26, 0, 30, tzinfo=UTC),  # 02:30 CEST, first time round
    datetime(2025, 10, 26, 1, 30, tzinfo=UTC),  # 02:30 CET, second time round
])
def test_around_the_clock_stays_open_through_the_dst_night(at: datetime) -> None:
    interval = open_interval(AROUND_THE_CLOCK, set(), TZ, at)
    assert interval is not None
    assert interval[0] <= at < interval[1]


def test_an_interval_on_the_short_day_is_an_hour_shorter() -> None:
    plan = [Period(6, "00:00", "24:00")]  # Sundays only
    interval = open_interval(plan, set(), TZ, berlin(2025, 3, 30, 12, 0))
    assert interval is not None
    assert interval[1].astimezone(UTC) - interval[0].astimezone(UTC) == timedelta(hours=23)


# -- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize(("period", "message"), [
    (Period(7, "08:00", "12:00"), "weekday"),
    (Period(-1, "08:00", "12:00"), "weekday"),
    (Period(0, "8.00", "12:00"), "HH:MM"),
    (Period(0, "25:00", "26:00"), "HH:MM"),
    (Period(0, "24:00", "24:00"), "24:00"),
    (Period(0, "12:00", "08:00"), "closing must come after opening"),
    (Period(0, "12:00", "12:00"), "closing must come after opening"),
])
def test_invalid_periods_are_refused(period: Period, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_period(period)


def test_valid_periods_pass() -> None:
    validate_period(Period(0, "00:00", "24:00"))
    validate_period(Period(6, "08:30", "12:00"))
