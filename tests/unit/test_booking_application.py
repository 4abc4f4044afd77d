"""The booking application on a real store: places taken and freed, the views, the clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from services.booking.application import (
    Booking,
    NoAppointmentsHere,
    NoPlaceLeft,
    UnknownDepartment,
)
from services.booking.domain import Appointment, Schedule, Slot
from services.booking.mapping import to_contract
from services.booking.office import Office
from services.booking.slots import BookingHours
from services.booking.terms import ScheduleTerms
from services.common.contracts import booking as contracts
from tests.unit.support import CID, berlin

DEPARTMENT = UUID("5a1d3c2e-0000-4000-8000-000000000002")
TERMS = ScheduleTerms(
    hours=tuple(BookingHours(weekday, "08:00", "12:00") for weekday in range(5)),
    capacity=1,
    days_ahead=30,
    notice_minutes=60,
)
NOW = berlin(2026, 3, 2, 7, 0)  # Monday morning
TEN = berlin(2026, 3, 2, 10, 0)
PROFILE = {"slug": "kataster", "name_de": "Kataster", "name_en": "Cadastre",
           "anonymous": False, "accepts_appointments": True, "timezone": "Europe/Berlin",
           "languages": ["de", "en"], "topics": []}


def sqlite_env(path: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "services.common.sqlite_shared:Factory",
        "SQLITE_DBNAME": str(path / "booking.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "y",
        "SINGLE_ROW_TRACKING": "n",
    }


@pytest.fixture
def app(tmp_path: Path) -> Booking:
    booking = Booking(env=sqlite_env(tmp_path))
    booking.save(Office(DEPARTMENT, PROFILE, 1))
    booking.set_schedule(DEPARTMENT, TERMS, CID)
    return booking


def book(app: Booking, start=TEN, request_id: UUID | None = None) -> Appointment:  # type: ignore[no-untyped-def]
    appointment, _ = app.book(DEPARTMENT, request_id or uuid4(), start, NOW, "de", None, CID)
    return appointment


def test_every_event_is_published_or_declared_internal() -> None:
    assert to_contract.unmapped(Schedule, Slot, Appointment, Office) == []


def test_a_full_slot_refuses_with_the_nearest_free_ones(app: Booking) -> None:
    book(app)
    with pytest.raises(NoPlaceLeft) as refused:
        book(app)
    nearest = [s.start for s in refused.value.nearest]
    assert nearest == [TEN - timedelta(minutes=15), TEN + timedelta(minutes=15),
                       TEN - timedelta(minutes=30)]
    assert refused.value.extra["nearest"][0]["start"] == nearest[0].isoformat()
    free = app.free_slots(DEPARTMENT, TEN, TEN + timedelta(minutes=30), NOW)
    assert [s.start for s in free] == [TEN + timedelta(minutes=15)]


def test_the_same_request_again_answers_the_same_appointment(app: Booking) -> None:
    request_id = uuid4()
    first, new = app.book(DEPARTMENT, request_id, TEN, NOW, "de", None, CID)
    again, new_again = app.book(DEPARTMENT, request_id, TEN, NOW, "de", None, CID)
    assert (new, new_again) == (True, False)
    assert again.id == first.id


def test_a_second_replica_sees_the_place_taken_and_is_refused(
    app: Booking, tmp_path: Path
) -> None:
    other = Booking(env=sqlite_env(tmp_path))
    book(app)
    with pytest.raises(NoPlaceLeft):
        book(other)
    assert other.free_slots(DEPARTMENT, TEN, TEN + timedelta(minutes=15), NOW) == []


def test_cancelling_frees_the_place_at_once(app: Booking) -> None:
    appointment = book(app)
    app.cancel(appointment.id, "citizen", CID)
    assert [s.start for s in app.free_slots(DEPARTMENT, TEN, TEN + timedelta(minutes=15), NOW)] \
        == [TEN]
    book(app)  # someone else has it now


def test_rescheduling_takes_the_new_place_and_frees_the_old(app: Booking) -> None:
    appointment = book(app)
    later = TEN + timedelta(hours=1)
    app.reschedule(appointment.id, later, NOW, CID)
    free = {s.start for s in app.free_slots(DEPARTMENT, TEN, later + timedelta(minutes=15), NOW)}
    assert TEN in free and later not in free
    assert app.appointments_of(DEPARTMENT, TEN.date(), 1)[0].start == later


def test_the_clock_marks_no_shows(app: Booking) -> None:
    missed, came = book(app), book(app, TEN + timedelta(minutes=15))
    app.check_in(came.id, TEN + timedelta(minutes=10), CID)
    assert app.mark_missed(TEN + timedelta(minutes=14), CID) == 0  # still in the window
    assert app.mark_missed(TEN + timedelta(hours=1), CID) == 1
    statuses = {a.appointment_id: a.status for a in app.appointments_of(DEPARTMENT, TEN.date(), 1)}
    assert statuses == {missed.id: "missed", came.id: "checked_in"}
    assert app.no_shows(DEPARTMENT, TEN.date(), 1) == {TEN.date().isoformat(): 1}
    assert app.mark_missed(TEN + timedelta(hours=2), CID) == 0


def test_unknown_departments_and_departments_without_schedule(app: Booking) -> None:
    with pytest.raises(UnknownDepartment):
        app.free_slots(uuid4(), TEN, TEN + timedelta(hours=1), NOW)
    other = uuid4()
    app.save(Office(other, {**PROFILE, "slug": "other"}, 1))
    with pytest.raises(NoAppointmentsHere):
        app.free_slots(other, TEN, TEN + timedelta(hours=1), NOW)
    assert app.department_by_slug("other") == other


def test_contracts_carry_no_personal_data(app: Booking) -> None:
    _appointment, _ = app.book(DEPARTMENT, uuid4(), TEN, NOW, "de", "ref-1", CID, staff_id="anna")
    published = [
        to_contract(app.mapper.to_domain_event(n), n.id)
        for n in app.notification_log.select(start=1, limit=100)
    ]
    booked = [e for e in published if isinstance(e, contracts.AppointmentBooked)]
    assert len(booked) == 1
    assert booked[0].booked_by == "staff" and booked[0].slot_start == TEN
    assert booked[0].slot_end == TEN + timedelta(minutes=15)
    assert "ref-1" not in booked[0].model_dump_json()
    assert any(isinstance(e, contracts.ScheduleSet) for e in published)


def test_each_change_of_an_appointment_is_heard_once_from_this_or_another_replica(
    tmp_path: Path, app: Booking
) -> None:
    """What staff's live view hears: a change stored here (on commit) or by another
    replica on the same store (when the log is read), never twice."""
    heard: list[tuple[UUID, str]] = []
    app.views.on_appointment_change(lambda a: heard.append((a.appointment_id, a.status)))
    mine = book(app)
    other_replica = Booking(env=sqlite_env(tmp_path))
    theirs, _ = other_replica.book(DEPARTMENT, uuid4(), TEN + timedelta(hours=1), NOW, "de",
                                   None, CID)
    other_replica.cancel(theirs.id, "citizen", CID)
    assert heard == [(mine.id, "booked")]
    app.catch_up()
    app.catch_up()
    assert heard == [(mine.id, "booked"), (theirs.id, "booked"), (theirs.id, "cancelled")]
