"""Slot arithmetic: days, closed days, public holidays, daylight saving time, capacity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest

from services.booking.slots import (
    BookingHours,
    SlotPlan,
    bookable_window,
    free_slots,
    is_slot_start,
    nearest_free_slots,
    slot_starts,
    slots_on,
    validate_hours,
)
from tests.unit.support import BERLIN, berlin

WEEKDAYS_MORNING = tuple(BookingHours(weekday, "08:00", "12:00") for weekday in range(5))
PLAN = SlotPlan(hours=WEEKDAYS_MORNING)  # 15-minute slots, NRW holidays, Europe/Berlin
SUNDAY_AROUND_THE_CLOCK = SlotPlan(hours=(BookingHours(6, "00:00", "24:00"),))


def wall_clock(instants: list[datetime]) -> list[str]:
    return [f"{i.astimezone(BERLIN):%H:%M}" for i in instants]


def test_a_morning_is_cut_into_fifteen_minute_slots() -> None:
    starts = slots_on(PLAN, date(2026, 3, 2))  # a Monday
    assert len(starts) == 16
    assert starts[0] == berlin(2026, 3, 2, 8, 0) and starts[-1] == berlin(2026, 3, 2, 11, 45)
    assert all(s.tzinfo == UTC for s in starts)
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(starts))


def test_slots_run_across_days_and_skip_the_weekend() -> None:
    starts = list(slot_starts(PLAN, berlin(2026, 3, 6, 11, 0), berlin(2026, 3, 9, 9, 0)))
    assert [f"{s.astimezone(BERLIN):%a %H:%M}" for s in starts] == [
        "Fri 11:00", "Fri 11:15", "Fri 11:30", "Fri 11:45",
        "Mon 08:00", "Mon 08:15", "Mon 08:30", "Mon 08:45",
    ]


def test_a_slot_must_fit_before_closing() -> None:
    plan = SlotPlan(hours=(BookingHours(0, "08:00", "08:40"),))
    assert wall_clock(slots_on(plan, date(2026, 3, 2))) == ["08:00", "08:15"]


def test_longer_slots_step_by_their_length() -> None:
    plan = SlotPlan(hours=(BookingHours(0, "08:00", "10:00"),), slot_minutes=30)
    assert wall_clock(slots_on(plan, date(2026, 3, 2))) == ["08:00", "08:30", "09:00", "09:30"]


def test_a_closed_day_has_no_slots() -> None:
    plan = SlotPlan(hours=WEEKDAYS_MORNING, closed_days=frozenset({date(2026, 3, 3)}))
    assert slots_on(plan, date(2026, 3, 3)) == []
    assert len(slots_on(plan, date(2026, 3, 4))) == 16
    starts = list(slot_starts(plan, berlin(2026, 3, 2), berlin(2026, 3, 5)))
    assert {s.astimezone(BERLIN).date() for s in starts} == {date(2026, 3, 2), date(2026, 3, 4)}


def test_christmas_day_has_no_slots() -> None:
    christmas = date(2026, 12, 25)  # a Friday
    assert christmas.weekday() == 4
    assert slots_on(PLAN, christmas) == []
    assert len(slots_on(PLAN, date(2026, 12, 28))) == 16  # the Monday after
    assert len(slots_on(SlotPlan(hours=WEEKDAYS_MORNING, state=None), christmas)) == 16


def test_corpus_christi_is_a_holiday_in_north_rhine_westphalia_only() -> None:
    corpus_christi = date(2026, 6, 4)  # a Thursday
    assert slots_on(PLAN, corpus_christi) == []
    berlin_state = SlotPlan(hours=WEEKDAYS_MORNING, state="BE")
    assert len(slots_on(berlin_state, corpus_christi)) == 16


def test_spring_forward_skips_the_hour_that_does_not_exist() -> None:
    sunday = date(2026, 3, 29)  # the clocks go from 02:00 to 03:00
    starts = slots_on(SUNDAY_AROUND_THE_CLOCK, sunday)
    labels = wall_clock(starts)
    assert len(starts) == 23 * 4
    assert "02:30" not in labels
    assert not {"02:00", "02:15", "02:45"} & set(labels)
    assert labels[labels.index("01:45") + 1] == "03:00"
    after_the_gap = starts[labels.index("03:00")]
    assert after_the_gap - starts[labels.index("01:45")] == timedelta(minutes=15)
    assert after_the_gap == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert len(set(starts)) == len(starts)


def test_fall_back_counts_the_doubled_hour_once() -> None:
    sunday = date(2026, 10, 25)  # the clocks go from 03:00 back to 02:00
    starts = slots_on(SUNDAY_AROUND_THE_CLOCK, sunday)
    labels = wall_clock(starts)
    assert len(starts) == 24 * 4  # 25 hours, but each wall-clock time once
    assert len(set(labels)) == len(labels) and labels.count("02:30") == 1
    # The first occurrence (summer time): 02:30 CEST is 00:30 UTC.
    assert starts[labels.index("02:30")] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # The second pass of the hour (01:00-02:00 UTC) has no slots.
    assert not [s for s in starts
                if datetime(2026, 10, 25, 1, 0, tzinfo=UTC) <= s
                < datetime(2026, 10, 25, 2, 0, tzinfo=UTC)]
    assert starts[labels.index("03:00")] == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)
    assert starts == sorted(starts)


def test_in_the_doubled_hour_only_the_first_occurrence_is_a_slot_start() -> None:
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # fold=0: summer time
    second = first.replace(fold=1)  # the same wall-clock time an hour later, winter time
    assert second - first == timedelta(0) and second.astimezone(UTC) - first.astimezone(
        UTC) == timedelta(hours=1)
    assert is_slot_start(SUNDAY_AROUND_THE_CLOCK, first)
    assert not is_slot_start(SUNDAY_AROUND_THE_CLOCK, second)


def test_slot_starts_across_both_changes_match_the_days() -> None:
    march = list(slot_starts(SUNDAY_AROUND_THE_CLOCK, berlin(2026, 3, 28), berlin(2026, 3, 31)))
    october = list(slot_starts(SUNDAY_AROUND_THE_CLOCK, berlin(2026, 10, 24),
                               berlin(2026, 10, 27)))
    assert len(march) == 92 and len(october) == 96


def test_free_slots_count_what_is_taken() -> None:
    plan = SlotPlan(hours=(BookingHours(0, "08:00", "09:00"),), capacity=2)
    eight, quarter_past = berlin(2026, 3, 2, 8, 0), berlin(2026, 3, 2, 8, 15)
    free = free_slots(plan, berlin(2026, 3, 2), berlin(2026, 3, 3),
                      {eight: 2, quarter_past: 1})
    assert [(f"{f.start.astimezone(BERLIN):%H:%M}", f.remaining) for f in free] == [
        ("08:15", 1), ("08:30", 2), ("08:45", 2)]
    assert free[0].end - free[0].start == timedelta(minutes=15)


def test_a_requested_start_must_be_a_slot_start() -> None:
    assert is_slot_start(PLAN, berlin(2026, 3, 2, 8, 15))
    assert is_slot_start(PLAN, berlin(2026, 3, 2, 11, 45))
    assert not is_slot_start(PLAN, berlin(2026, 3, 2, 8, 10))
    assert not is_slot_start(PLAN, berlin(2026, 3, 2, 12, 0))  # closing, not a start
    assert not is_slot_start(PLAN, berlin(2026, 3, 2, 8, 15) + timedelta(seconds=1))
    assert not is_slot_start(PLAN, berlin(2026, 3, 7, 8, 15))  # a Saturday
    assert not is_slot_start(PLAN, berlin(2026, 12, 25, 8, 15))  # Christmas Day


def test_the_bookable_window_runs_from_the_notice_to_the_end_of_the_last_day() -> None:
    now = berlin(2026, 3, 20, 14, 7)
    earliest, latest = bookable_window(now, days_ahead=30, notice_minutes=60,
                                       timezone="Europe/Berlin")
    assert earliest == now + timedelta(hours=1)
    # 30 days on is 19 April (summer time): up to its midnight, 22:00 UTC.
    assert latest == datetime(2026, 4, 19, 22, 0, tzinfo=UTC)


def test_nearest_free_slots_are_the_closest_on_either_side() -> None:
    taken = {berlin(2026, 3, 2, 9, 0): 1, berlin(2026, 3, 2, 9, 15): 1}
    window = (berlin(2026, 3, 1), berlin(2026, 4, 1))
    nearest = nearest_free_slots(PLAN, berlin(2026, 3, 2, 9, 0), taken, window)
    assert wall_clock([s.start for s in nearest]) == ["08:45", "08:30", "09:30"]


def test_nearest_free_slots_look_beyond_a_full_day_and_stay_in_the_window() -> None:
    friday = slots_on(PLAN, date(2026, 3, 6))
    taken = dict.fromkeys(friday, 1)
    window = (berlin(2026, 3, 6), berlin(2026, 4, 1))  # Thursday is no longer bookable
    nearest = nearest_free_slots(PLAN, berlin(2026, 3, 6, 11, 45), taken, window)
    assert [f"{s.start.astimezone(BERLIN):%a %d %H:%M}" for s in nearest] == [
        "Mon 09 08:00", "Mon 09 08:15", "Mon 09 08:30"]


def test_nearest_free_slots_may_be_fewer_than_asked_or_none() -> None:
    plan = SlotPlan(hours=(BookingHours(0, "08:00", "08:30"),))
    window = (berlin(2026, 3, 2), berlin(2026, 3, 3))
    assert nearest_free_slots(plan, berlin(2026, 3, 2, 8, 0), {}, window) != []
    assert nearest_free_slots(plan, berlin(2026, 3, 2, 8, 0),
                              {berlin(2026, 3, 2, 8, 15): 1}, window) == []


@pytest.mark.parametrize(("hours", "message"), [
    ((BookingHours(0, "12:00", "08:00"),), "after the start"),
    ((BookingHours(0, "08:00", "08:10"),), "shorter than one 15-minute slot"),
    ((BookingHours(0, "8.30", "12:00"),), "HH:MM"),
    ((BookingHours(0, "08:00", "24:30"),), "between 00:00 and 24:00"),
    ((BookingHours(7, "08:00", "12:00"),), "weekday"),
    ((BookingHours(0, "08:00", "12:00"), BookingHours(0, "11:00", "14:00")), "overlap"),
])
def test_hours_that_cannot_be_are_refused(hours: tuple[BookingHours, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_hours(hours, 15)


def test_hours_back_to_back_are_fine() -> None:
    validate_hours((BookingHours(0, "08:00", "12:00"), BookingHours(0, "12:00", "24:00")), 15)
