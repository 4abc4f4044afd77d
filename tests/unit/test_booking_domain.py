"""Schedules, slots and appointments: the pure domain of the booking service."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from services.booking.domain import Appointment, Schedule, Slot, reminder_times
from services.booking.errors import (
    AppointmentNotBooked,
    DomainError,
    InvalidSchedule,
    NotBookable,
    OutsideCheckInWindow,
    SlotFull,
)
from services.booking.slots import BookingHours
from services.booking.terms import ScheduleTerms
from tests.unit.support import BERLIN, CID, berlin

DEPARTMENT = UUID("5a1d3c2e-0000-4000-8000-000000000001")
TERMS = ScheduleTerms(
    hours=tuple(BookingHours(weekday, "08:00", "12:00") for weekday in range(5)),
    capacity=2,
    days_ahead=30,
    notice_minutes=60,
)
NOW = berlin(2026, 3, 2, 7, 0)  # Monday morning
TEN_FIFTEEN = berlin(2026, 3, 2, 10, 15)


def names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


@pytest.fixture
def schedule() -> Schedule:
    schedule = Schedule.set_up(DEPARTMENT, TERMS, CID)
    assert names(schedule) == ["Created"]
    return schedule


def book(schedule: Schedule, start: datetime = TEN_FIFTEEN, **kwargs: Any) -> Appointment:
    arguments: dict[str, Any] = {
        "request_id": uuid4(), "start": start, "now": NOW, "language": "de",
        "anonymous": False, "visitor_ref": "v-1", "correlation_id": CID,
    }
    appointment = Appointment.book(schedule, **(arguments | kwargs))
    assert names(appointment) == ["Booked"]
    return appointment


# -- Schedule --------------------------------------------------------------------


def test_the_schedule_is_named_by_its_department(schedule: Schedule) -> None:
    assert schedule.id == Schedule.create_id(DEPARTMENT)
    assert Schedule.create_id(DEPARTMENT) != Schedule.create_id(uuid4())
    assert schedule.department_id == DEPARTMENT and schedule.terms == TERMS


def test_the_defaults_are_those_of_the_issue() -> None:
    terms = ScheduleTerms()
    assert (terms.slot_minutes, terms.timezone, terms.state) == (15, "Europe/Berlin", "NW")
    assert (terms.check_in_before_minutes, terms.check_in_after_minutes) == (10, 15)


@pytest.mark.parametrize(("change", "message"), [
    ({"capacity": 0}, "places"),
    ({"slot_minutes": 3}, "slot lasts"),
    ({"days_ahead": 0}, "ahead"),
    ({"state": "XX"}, "federal state"),
    ({"timezone": "Mars/Olympus"}, "time zone"),
    ({"hours": (BookingHours(0, "08:00", "12:00"), BookingHours(0, "11:00", "13:00"))},
     "overlap"),
])
def test_a_schedule_that_cannot_be_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        Schedule.set_up(DEPARTMENT, replace(TERMS, **change), CID)


def test_changing_the_terms_records_a_change_only_when_they_differ(schedule: Schedule) -> None:
    schedule.change(TERMS, CID)
    assert names(schedule) == []
    wider = replace(TERMS, capacity=3, closed_days=frozenset({date(2026, 3, 3)}))
    schedule.change(wider, CID)
    assert names(schedule) == ["Changed"] and schedule.terms == wider
    with pytest.raises(InvalidSchedule):
        schedule.change(replace(TERMS, capacity=-1), CID)
    assert names(schedule) == [] and schedule.terms == wider


def test_the_terms_survive_the_event_store() -> None:
    terms = replace(TERMS, closed_days=frozenset({date(2026, 3, 3)}), state="BE",
                    check_in_before_minutes=20)
    app: Application[UUID] = Application()
    app.save(Schedule.set_up(DEPARTMENT, ScheduleTerms(), CID))
    stored: Schedule = app.repository.get(Schedule.create_id(DEPARTMENT))
    stored.change(terms, CID)
    app.save(stored)
    assert app.repository.get(Schedule.create_id(DEPARTMENT)).terms == terms


def test_a_slot_start_in_the_window_is_bookable(schedule: Schedule) -> None:
    schedule.check_bookable(TEN_FIFTEEN, NOW)
    schedule.check_bookable(berlin(2026, 4, 1, 11, 45), NOW)  # the last day, 30 days on


@pytest.mark.parametrize(("start", "reason", "message"), [
    (berlin(2026, 3, 2, 6, 45), "past", "passed"),
    (berlin(2026, 3, 2, 7, 45), "short_notice", "the earliest is 2026-03-02 08:00"),
    (berlin(2026, 4, 2, 8, 0), "too_far_ahead", "30 days"),
    (berlin(2026, 3, 2, 10, 10), "not_a_slot", "2026-03-02 10:10 is not the start"),
    (berlin(2026, 3, 7, 10, 0), "not_a_slot", "not the start"),  # a Saturday
])
def test_a_start_that_may_not_be_booked_says_why(
    schedule: Schedule, start: datetime, reason: str, message: str
) -> None:
    with pytest.raises(NotBookable, match=message) as error:
        schedule.check_bookable(start, NOW)
    assert error.value.reason == reason


def test_a_holiday_is_not_bookable() -> None:
    schedule = Schedule.set_up(DEPARTMENT, replace(TERMS, days_ahead=120), CID)
    with pytest.raises(NotBookable) as error:
        schedule.check_bookable(berlin(2026, 6, 4, 10, 0), NOW)  # Corpus Christi, NRW
    assert error.value.reason == "not_a_slot"
    schedule.check_bookable(berlin(2026, 6, 5, 10, 0), NOW)


def test_free_slots_are_clipped_to_the_bookable_window(schedule: Schedule) -> None:
    monday = (berlin(2026, 3, 2), berlin(2026, 3, 3))
    free = schedule.free_slots(*monday, NOW, {})
    assert free[0].start == berlin(2026, 3, 2, 8, 0)  # 07:00 now, 60 minutes notice
    free = schedule.free_slots(*monday, berlin(2026, 3, 2, 9, 0), {TEN_FIFTEEN: 2})
    assert [f.start.astimezone(BERLIN).strftime("%H:%M") for f in free[:3]] == [
        "10:00", "10:30", "10:45"]
    assert schedule.free_slots(*monday, berlin(2026, 3, 2, 10, 50), {}) == []


def test_nearest_free_slots_stay_in_the_bookable_window(schedule: Schedule) -> None:
    nearest = schedule.nearest_free_slots(berlin(2026, 3, 2, 8, 0), NOW,
                                          {berlin(2026, 3, 2, 8, 0): 2})
    assert [f.start for f in nearest] == [
        berlin(2026, 3, 2, 8, 15), berlin(2026, 3, 2, 8, 30), berlin(2026, 3, 2, 8, 45)]


# -- Slot ------------------------------------------------------------------------


def test_the_slot_is_named_by_department_and_instant() -> None:
    start = berlin(2026, 3, 2, 10, 15)
    assert Slot(DEPARTMENT, start, 2, CID).id == Slot.create_id(DEPARTMENT, start)
    # The same instant written in local time names the same slot.
    assert Slot.create_id(DEPARTMENT, start.astimezone(BERLIN)) == Slot.create_id(DEPARTMENT, start)
    assert Slot.create_id(DEPARTMENT, start) != Slot.create_id(uuid4(), start)
    assert Slot.create_id(DEPARTMENT, start) != Slot.create_id(
        DEPARTMENT, start + timedelta(minutes=15))
    with pytest.raises(ValueError, match="time zone"):
        Slot.create_id(DEPARTMENT, datetime(2026, 3, 2, 10, 15))


def test_a_slot_gives_no_more_places_than_its_capacity() -> None:
    slot = Slot(DEPARTMENT, TEN_FIFTEEN, 2, CID)
    first, second = uuid4(), uuid4()
    slot.take(first, CID)
    slot.take(second, CID)
    assert slot.remaining == 0 and slot.holders == [first, second]
    with pytest.raises(SlotFull) as error:
        slot.take(uuid4(), CID)
    assert error.value.start == TEN_FIFTEEN
    assert names(slot) == ["Created", "Taken", "Taken"]


def test_taking_a_place_again_changes_nothing() -> None:
    slot = Slot(DEPARTMENT, TEN_FIFTEEN, 1, CID)
    appointment = uuid4()
    slot.take(appointment, CID)
    slot.collect_events()
    slot.take(appointment, CID)  # a retried booking, even with the slot full
    assert names(slot) == [] and slot.holders == [appointment]


def test_releasing_a_place_frees_it_for_another() -> None:
    slot = Slot(DEPARTMENT, TEN_FIFTEEN, 1, CID)
    first, second = uuid4(), uuid4()
    slot.take(first, CID)
    slot.release(first, CID)
    slot.take(second, CID)
    assert slot.holders == [second]
    assert names(slot) == ["Created", "Taken", "Released", "Taken"]
    slot.release(first, CID)  # holds no place any more
    assert names(slot) == []


def test_a_lower_capacity_keeps_the_places_already_held() -> None:
    slot = Slot(DEPARTMENT, TEN_FIFTEEN, 2, CID)
    held = [uuid4(), uuid4()]
    for appointment in held:
        slot.take(appointment, CID)
    slot.change_capacity(1, CID)
    assert slot.holders == held and slot.remaining == 0
    slot.change_capacity(3, CID)
    slot.take(uuid4(), CID)
    assert len(slot.holders) == 3
    with pytest.raises(DomainError):
        slot.change_capacity(0, CID)


def test_two_replicas_racing_for_the_last_place_conflict_in_the_store() -> None:
    app: Application[UUID] = Application()
    slot = Slot(DEPARTMENT, TEN_FIFTEEN, 2, CID)
    slot.take(uuid4(), CID)
    app.save(slot)
    # Each replica reads the slot at the same version and takes the last place.
    mine: Slot = app.repository.get(slot.id)
    theirs: Slot = app.repository.get(slot.id)
    mine.take(winner := uuid4(), CID)
    theirs.take(loser := uuid4(), CID)
    app.save(mine)
    with pytest.raises(IntegrityError):
        app.save(theirs)
    # The loser retries on the slot as stored: it is full now.
    again: Slot = app.repository.get(slot.id)
    assert winner in again.holders and loser not in again.holders
    with pytest.raises(SlotFull):
        again.take(loser, CID)


def test_two_replicas_creating_the_same_slot_conflict_in_the_store() -> None:
    app: Application[UUID] = Application()
    mine, theirs = Slot(DEPARTMENT, TEN_FIFTEEN, 1, CID), Slot(DEPARTMENT, TEN_FIFTEEN, 1, CID)
    mine.take(uuid4(), CID)
    theirs.take(uuid4(), CID)
    app.save(mine)
    with pytest.raises(IntegrityError):
        app.save(theirs)
    assert len(app.repository.get(mine.id).holders) == 1


# -- Appointment -----------------------------------------------------------------


def test_a_booking_records_the_slot_and_no_personal_data(schedule: Schedule) -> None:
    request = uuid4()
    appointment = Appointment.book(schedule, request, TEN_FIFTEEN, NOW, "en", True, "v-7", CID)
    booked: Any = appointment.collect_events()[0]
    assert appointment.id == Appointment.create_id(DEPARTMENT, request)
    assert Appointment.create_id(DEPARTMENT, request) != Appointment.create_id(DEPARTMENT, uuid4())
    assert (appointment.status, appointment.start, appointment.end) == (
        "booked", TEN_FIFTEEN, TEN_FIFTEEN + timedelta(minutes=15))
    assert (booked.language, booked.anonymous, booked.visitor_ref) == ("en", True, "v-7")
    assert appointment.department_id == DEPARTMENT and appointment.booked_by_staff is None


def test_staff_may_book_on_a_citizens_behalf(schedule: Schedule) -> None:
    assert book(schedule, staff_id="anna").booked_by_staff == "anna"


def test_a_booking_outside_the_window_is_refused(schedule: Schedule) -> None:
    with pytest.raises(NotBookable):
        Appointment.book(schedule, uuid4(), berlin(2026, 3, 2, 10, 10), NOW, "de", False,
                         None, CID)


def test_an_unknown_language_is_refused(schedule: Schedule) -> None:
    with pytest.raises(DomainError, match="language"):
        Appointment.book(schedule, uuid4(), TEN_FIFTEEN, NOW, "fr", False, None, CID)


def test_rescheduling_moves_to_another_bookable_slot(schedule: Schedule) -> None:
    appointment = book(schedule)
    later = berlin(2026, 3, 3, 9, 0)
    appointment.reschedule(schedule, later, NOW, CID)
    moved: Any = appointment.collect_events()[0]
    assert type(moved).__name__ == "Rescheduled"
    assert (moved.from_start, moved.start) == (TEN_FIFTEEN, later)
    assert appointment.start == later and appointment.status == "booked"
    with pytest.raises(DomainError, match="already at this time"):
        appointment.reschedule(schedule, later, NOW, CID)
    with pytest.raises(NotBookable):
        appointment.reschedule(schedule, berlin(2026, 3, 3, 9, 5), NOW, CID)
    assert names(appointment) == []


def test_cancelled_by_the_citizen_without_a_reason(schedule: Schedule) -> None:
    appointment = book(schedule)
    appointment.cancel("citizen", CID)
    cancelled: Any = appointment.collect_events()[0]
    assert (cancelled.by, cancelled.reason, cancelled.start) == ("citizen", None, TEN_FIFTEEN)
    assert appointment.status == "cancelled"
    with pytest.raises(AppointmentNotBooked, match="cancelled"):
        appointment.cancel("citizen", CID)
    with pytest.raises(AppointmentNotBooked):
        appointment.reschedule(schedule, berlin(2026, 3, 3, 9, 0), NOW, CID)


def test_staff_cancel_with_a_reason(schedule: Schedule) -> None:
    appointment = book(schedule)
    with pytest.raises(DomainError, match="reasons"):
        appointment.cancel("staff", CID, reason=None, staff_id="anna")
    with pytest.raises(DomainError, match="who they are"):
        appointment.cancel("staff", CID, reason="office_closed")
    assert appointment.status == "booked" and names(appointment) == []
    appointment.cancel("staff", CID, reason="office_closed", staff_id="anna")
    assert (appointment.cancelled_by, appointment.cancel_reason) == ("staff", "office_closed")


def test_cancelling_frees_the_place_for_the_next_citizen(schedule: Schedule) -> None:
    full = Schedule.set_up(uuid4(), replace(TERMS, capacity=1), CID)
    slot = Slot(full.department_id, TEN_FIFTEEN, full.terms.capacity, CID)
    first = book(full)
    slot.take(first.id, CID)
    second = book(full)
    with pytest.raises(SlotFull):
        slot.take(second.id, CID)
    first.cancel("citizen", CID)
    slot.release(first.id, CID)
    slot.take(second.id, CID)
    assert slot.holders == [second.id]


def test_check_in_is_open_from_ten_before_to_fifteen_after(schedule: Schedule) -> None:
    appointment = book(schedule)
    assert appointment.check_in_window == (berlin(2026, 3, 2, 10, 5), berlin(2026, 3, 2, 10, 30))
    appointment.check_in(berlin(2026, 3, 2, 10, 5), CID)
    checked_in: Any = appointment.collect_events()[0]
    assert type(checked_in).__name__ == "CheckedIn"
    assert checked_in.at == berlin(2026, 3, 2, 10, 5) and appointment.status == "checked_in"
    appointment.check_in(berlin(2026, 3, 2, 10, 6), CID)  # a second click changes nothing
    assert names(appointment) == [] and appointment.checked_in_at == berlin(2026, 3, 2, 10, 5)
    assert not appointment.is_overdue(berlin(2026, 3, 2, 11, 0))


@pytest.mark.parametrize("at", [berlin(2026, 3, 2, 10, 4), berlin(2026, 3, 2, 10, 31)])
def test_check_in_outside_the_window_says_when_it_is_open(
    schedule: Schedule, at: datetime
) -> None:
    appointment = book(schedule)
    with pytest.raises(OutsideCheckInWindow, match="on 2026-03-02 from 10:05 to 10:30") as error:
        appointment.check_in(at, CID)
    assert (error.value.opens_at, error.value.closes_at) == (
        berlin(2026, 3, 2, 10, 5), berlin(2026, 3, 2, 10, 30))
    assert appointment.status == "booked" and names(appointment) == []


def test_the_check_in_window_is_the_schedules(schedule: Schedule) -> None:
    schedule.change(replace(TERMS, check_in_before_minutes=5, check_in_after_minutes=0), CID)
    appointment = book(schedule)
    assert appointment.check_in_window == (berlin(2026, 3, 2, 10, 10), TEN_FIFTEEN)


def test_a_cancelled_appointment_cannot_check_in(schedule: Schedule) -> None:
    appointment = book(schedule)
    appointment.cancel("citizen", CID)
    with pytest.raises(AppointmentNotBooked):
        appointment.check_in(TEN_FIFTEEN, CID)


def test_missed_only_after_the_grace_period(schedule: Schedule) -> None:
    appointment = book(schedule)
    grace_over = berlin(2026, 3, 2, 10, 30)
    assert not appointment.is_overdue(grace_over)
    with pytest.raises(DomainError, match="can still be checked in"):
        appointment.mark_missed(grace_over, CID)
    assert names(appointment) == []
    after = grace_over + timedelta(seconds=1)
    assert appointment.is_overdue(after)
    appointment.mark_missed(after, CID)
    assert names(appointment) == ["Missed"] and appointment.status == "missed"
    assert not appointment.is_overdue(after)
    with pytest.raises(AppointmentNotBooked, match="missed"):
        appointment.check_in(after, CID)


def test_cancelled_or_checked_in_is_never_missed(schedule: Schedule) -> None:
    late = berlin(2026, 3, 2, 12, 0)
    cancelled, checked_in = book(schedule), book(schedule)
    cancelled.cancel("citizen", CID)
    checked_in.check_in(TEN_FIFTEEN, CID)
    for appointment in (cancelled, checked_in):
        assert not appointment.is_overdue(late)
        with pytest.raises(AppointmentNotBooked):
            appointment.mark_missed(late, CID)


def test_an_appointment_survives_the_event_store(schedule: Schedule) -> None:
    app: Application[UUID] = Application()
    appointment = Appointment.book(schedule, uuid4(), TEN_FIFTEEN, NOW, "de", False, None, CID)
    appointment.reschedule(schedule, berlin(2026, 3, 3, 9, 0), NOW, CID)
    appointment.check_in(berlin(2026, 3, 3, 8, 55), CID)
    app.save(appointment)
    stored: Appointment = app.repository.get(appointment.id)
    assert (stored.status, stored.start, stored.checked_in_at) == (
        "checked_in", berlin(2026, 3, 3, 9, 0), berlin(2026, 3, 3, 8, 55))
    assert stored.check_in_window == appointment.check_in_window


def test_terms_stored_with_reminders_still_read() -> None:
    """Schedules stored before the reminders' lead times became a setting name them too."""
    record = {**TERMS.to_record(), "reminder_minutes": [1440, 60]}
    assert ScheduleTerms.from_record(record) == TERMS
    assert "reminder_minutes" not in TERMS.to_record()


def test_reminders_come_at_their_lead_times_if_still_ahead() -> None:
    start = TEN_FIFTEEN
    day_before, hour_before = start - timedelta(days=1), start - timedelta(hours=1)
    assert reminder_times(start, (24 * 60, 60), NOW - timedelta(days=3)) == [
        day_before, hour_before]
    # Booked two hours ahead: a reminder a day before would be in the past.
    assert reminder_times(start, (24 * 60, 60), start - timedelta(hours=2)) == [hour_before]
    assert reminder_times(start, (24 * 60, 60), start - timedelta(minutes=30)) == []


def test_instants_without_a_time_zone_are_refused(schedule: Schedule) -> None:
    with pytest.raises(ValueError, match="time zone"):
        schedule.check_bookable(datetime(2026, 3, 2, 10, 15), NOW)
    assert datetime(2026, 3, 2, 9, 15, tzinfo=UTC) == TEN_FIFTEEN
