"""Departments and consultations: the pure domain of the rooms service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate

from services.rooms.application import Rooms
from services.rooms.domain import (
    Consultation,
    ConsultationClosed,
    Department,
    DomainError,
    InvitationWithdrawn,
    NotAParticipant,
)
from tests.unit.support import CID, berlin, notification_count, seeded

WEEKDAY_MORNINGS = [{"weekday": d, "opens": "09:00", "closes": "12:00"} for d in range(5)]


def names(aggregate: Aggregate) -> list[str]:
    """The events recorded since the last call (and forget them)."""
    return [type(e).__name__ for e in aggregate.collect_events()]


@pytest.fixture
def department() -> Department:
    department = Department("pflegeberatung", seeded("pflegeberatung")["profile"], CID)
    department.set_opening_hours(WEEKDAY_MORNINGS, ["2025-01-07"], CID)
    names(department)
    return department


def test_ids_are_derived_from_the_slug_and_the_ticket() -> None:
    profile: dict[str, Any] = seeded("demo")["profile"]
    assert Department("demo", profile, CID).id == Department.create_id("demo")
    ticket_id = uuid4()
    consultation = Consultation(uuid4(), ticket_id, "anna", CID)
    assert consultation.id == Consultation.create_id(ticket_id)
    assert Consultation.create_id(ticket_id) != Consultation.create_id(uuid4())


# -- the office clock -----------------------------------------------------------------------

def test_follow_schedule_opens_and_closes_once_each(department: Department) -> None:
    department.follow_schedule(berlin(2025, 1, 6, 9, 30), CID)  # Monday
    assert names(department) == ["OfficeOpened"]
    assert department.is_open and department.closes_at == berlin(2025, 1, 6, 12, 0)

    department.follow_schedule(berlin(2025, 1, 6, 10, 30), CID)
    assert names(department) == []  # nothing changed, nothing recorded

    department.follow_schedule(berlin(2025, 1, 6, 12, 0), CID)
    assert names(department) == ["OfficeClosed"]
    assert not department.is_open
    # Tuesday 7 January is a closed day: next opening is Wednesday.
    assert department.next_opening_at == berlin(2025, 1, 8, 9, 0)

    department.follow_schedule(berlin(2025, 1, 6, 18, 0), CID)
    assert names(department) == []


def test_a_new_department_records_that_it_is_closed_and_when_it_opens(
        department: Department) -> None:
    department.follow_schedule(berlin(2025, 1, 4, 10, 0), CID)  # Saturday
    assert names(department) == ["OfficeClosed"]
    assert department.next_opening_at == berlin(2025, 1, 6, 9, 0)
    department.follow_schedule(berlin(2025, 1, 5, 10, 0), CID)
    assert names(department) == []


def test_new_opening_hours_announce_the_new_next_opening(department: Department) -> None:
    department.follow_schedule(berlin(2025, 1, 4, 10, 0), CID)
    names(department)
    department.set_opening_hours([{"weekday": 6, "opens": "10:00", "closes": "12:00"}], [], CID)
    department.follow_schedule(berlin(2025, 1, 4, 11, 0), CID)
    assert names(department) == ["OpeningHoursSet", "OfficeClosed"]
    assert department.next_opening_at == berlin(2025, 1, 5, 10, 0)


def test_open_early_overrides_the_schedule_until_it_catches_up(
        department: Department) -> None:
    department.follow_schedule(berlin(2025, 1, 6, 8, 0), CID)
    names(department)
    department.open_early(berlin(2025, 1, 6, 8, 10), CID)
    assert names(department) == ["OfficeOpened"]
    assert department.is_open and department.override == "open"
    assert department.closes_at is None

    department.follow_schedule(berlin(2025, 1, 6, 8, 30), CID)  # schedule: still closed
    assert department.is_open and names(department) == []

    department.follow_schedule(berlin(2025, 1, 6, 9, 0), CID)  # schedule: open now
    assert names(department) == ["OverrideEnded", "OfficeOpened"]
    assert department.override is None
    assert department.closes_at == berlin(2025, 1, 6, 12, 0)

    department.follow_schedule(berlin(2025, 1, 6, 12, 0), CID)  # and closes as planned
    assert names(department) == ["OfficeClosed"] and not department.is_open


def test_close_early_overrides_the_schedule_until_it_catches_up(
        department: Department) -> None:
    department.follow_schedule(berlin(2025, 1, 6, 9, 30), CID)
    names(department)
    department.close_early(berlin(2025, 1, 6, 10, 0), CID)
    assert names(department) == ["OfficeClosed"]
    assert not department.is_open and department.override == "closed"
    # Announced: the opening after today's (cut short) hours; Tuesday is a closed day.
    assert department.next_opening_at == berlin(2025, 1, 8, 9, 0)

    department.follow_schedule(berlin(2025, 1, 6, 11, 0), CID)  # schedule: open
    assert not department.is_open and names(department) == []

    department.follow_schedule(berlin(2025, 1, 6, 12, 30), CID)  # schedule: closed too
    assert names(department) == ["OverrideEnded"]
    assert department.override is None and not department.is_open

    department.follow_schedule(berlin(2025, 1, 8, 9, 0), CID)
    assert names(department) == ["OfficeOpened"] and department.is_open


def test_open_early_when_open_and_close_early_when_closed_are_refused(
        department: Department) -> None:
    department.follow_schedule(berlin(2025, 1, 6, 10, 0), CID)
    names(department)
    version = department.version
    with pytest.raises(DomainError, match="already open"):
        department.open_early(berlin(2025, 1, 6, 10, 0), CID)
    assert names(department) == [] and department.version == version

    department.close_early(berlin(2025, 1, 6, 10, 0), CID)
    names(department)
    with pytest.raises(DomainError, match="already closed"):
        department.close_early(berlin(2025, 1, 6, 10, 5), CID)
    assert names(department) == []


@pytest.mark.parametrize(("weekly", "closed_days"), [
    ([{"weekday": 0, "opens": "12:00", "closes": "09:00"}], []),
    ([{"weekday": 9, "opens": "09:00", "closes": "12:00"}], []),
    ([{"weekday": 0, "opens": "9 Uhr", "closes": "12:00"}], []),
    (WEEKDAY_MORNINGS, ["7 January"]),
])
def test_invalid_opening_hours_record_nothing(department: Department,
                                              weekly: list[dict[str, Any]],
                                              closed_days: list[str]) -> None:
    with pytest.raises(ValueError):
        department.set_opening_hours(weekly, closed_days, CID)
    assert names(department) == []
    assert department.weekly == WEEKDAY_MORNINGS
    assert department.closed_days == ["2025-01-07"]


# -- roster ---------------------------------------------------------------------------------

def test_roster_assign_change_and_unassign(department: Department) -> None:
    department.assign_staff("ben", "staff", CID)
    assert department.serves("ben") and not department.administers("ben")
    department.assign_staff("ben", "staff", CID)  # the same again: nothing new
    assert names(department) == ["StaffAssigned"]

    department.assign_staff("ben", "admin", CID)
    assert department.administers("ben") and names(department) == ["StaffAssigned"]

    department.unassign_staff("ben", CID)
    assert not department.serves("ben") and names(department) == ["StaffUnassigned"]
    assert not department.serves("nobody")


def test_roster_refusals_record_nothing(department: Department) -> None:
    with pytest.raises(DomainError, match="role"):
        department.assign_staff("ben", "boss", CID)
    with pytest.raises(DomainError, match="not on this department's roster"):
        department.unassign_staff("ben", CID)
    assert names(department) == [] and department.roster == {}


# -- consultations --------------------------------------------------------------------------

@pytest.fixture
def consultation() -> Consultation:
    consultation = Consultation(uuid4(), uuid4(), "anna", CID)
    names(consultation)
    return consultation


def test_participants_join_and_leave(consultation: Consultation) -> None:
    citizen, staff = uuid4(), uuid4()
    consultation.join(citizen, "citizen", None, CID)
    consultation.join(staff, "staff", "anna", CID)
    assert consultation.participants == {str(citizen): "citizen", str(staff): "staff"}
    consultation.leave(citizen, CID)
    assert consultation.participants == {str(staff): "staff"}
    assert names(consultation) == ["ParticipantJoined", "ParticipantJoined", "ParticipantLeft"]


def test_leaving_without_having_joined_is_refused(consultation: Consultation) -> None:
    with pytest.raises(NotAParticipant):
        consultation.leave(uuid4(), CID)
    assert names(consultation) == []


def test_interpreter_joins_by_invitation(consultation: Consultation) -> None:
    invitation, interpreter = uuid4(), uuid4()
    consultation.invite_interpreter(invitation, "anna", CID)
    consultation.interpreter_join(interpreter, invitation, CID)
    assert consultation.participants == {str(interpreter): "interpreter"}
    assert names(consultation) == ["InterpreterInvited", "InterpreterJoined"]


def test_a_revoked_or_unknown_invitation_lets_nobody_in(consultation: Consultation) -> None:
    invitation = uuid4()
    consultation.invite_interpreter(invitation, "anna", CID)
    consultation.revoke_invitation(invitation, "anna", CID)
    assert names(consultation) == ["InterpreterInvited", "InvitationRevoked"]
    version = consultation.version
    with pytest.raises(InvitationWithdrawn, match="withdrawn"):
        consultation.interpreter_join(uuid4(), invitation, CID)
    with pytest.raises(DomainError, match="not valid"):
        consultation.interpreter_join(uuid4(), uuid4(), CID)
    with pytest.raises(DomainError, match="No such invitation"):
        consultation.revoke_invitation(uuid4(), "anna", CID)
    assert names(consultation) == [] and consultation.version == version
    assert consultation.participants == {}


def test_end_times_the_consultation_and_empties_the_room(consultation: Consultation) -> None:
    consultation.join(uuid4(), "citizen", None, CID)
    consultation.end("anna", consultation.created_on + timedelta(minutes=12), CID)
    events = consultation.collect_events()
    assert [type(e).__name__ for e in events] == ["ParticipantJoined", "Ended"]
    ended: Any = events[-1]
    assert ended.duration_seconds == 720.0
    assert ended.department_id == consultation.department_id
    assert consultation.ended and consultation.participants == {}


def test_an_ended_consultation_refuses_everything(consultation: Consultation) -> None:
    citizen, invitation = uuid4(), uuid4()
    consultation.join(citizen, "citizen", None, CID)
    consultation.invite_interpreter(invitation, "anna", CID)
    consultation.end("anna", consultation.created_on, CID)
    names(consultation)
    version = consultation.version
    with pytest.raises(ConsultationClosed):
        consultation.join(uuid4(), "citizen", None, CID)
    with pytest.raises(ConsultationClosed):
        consultation.invite_interpreter(uuid4(), "anna", CID)
    with pytest.raises(ConsultationClosed):
        consultation.interpreter_join(uuid4(), invitation, CID)
    with pytest.raises(ConsultationClosed):
        consultation.end("anna", consultation.created_on, CID)
    with pytest.raises(NotAParticipant):  # everyone left when it ended
        consultation.leave(citizen, CID)
    assert names(consultation) == [] and consultation.version == version


# -- through the application: a refused command stores nothing -------------------------------

def test_a_refused_command_stores_nothing() -> None:
    rooms = Rooms()
    department_id = rooms.register_department(
        "demo", seeded("demo")["profile"], seeded("demo")["weekly"], [], CID)
    consultation = Consultation(department_id, uuid4(), "anna", CID)
    rooms.save(consultation)
    rooms.end(consultation.id, "anna", CID)
    stored = notification_count(rooms)
    with pytest.raises(ConsultationClosed):
        rooms.join(consultation.id, "citizen", None, CID)
    with pytest.raises(DomainError):
        rooms.assign_staff(department_id, "ben", "boss", CID)
    with pytest.raises(ValueError):
        rooms.set_opening_hours(department_id, [{"weekday": 0, "opens": "10:00",
                                                 "closes": "09:00"}], [], CID)
    assert notification_count(rooms) == stored
    assert rooms.consultation(consultation.id).version == consultation.version + 1


def test_registering_the_same_department_again_changes_nothing() -> None:
    rooms = Rooms()
    demo = seeded("demo")
    first = rooms.register_department("demo", demo["profile"], demo["weekly"], [], CID)
    stored = notification_count(rooms)
    again = rooms.register_department("demo", demo["profile"], demo["weekly"], [], CID)
    assert first == again and notification_count(rooms) == stored
    assert rooms.department_ids() == [first]


def test_an_office_open_around_the_clock_has_no_closing_time_and_no_daily_events() -> None:
    from datetime import UTC, datetime, timedelta

    from services.rooms.domain import Department

    weekly = [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]
    department = Department("rund", {"timezone": "Europe/Berlin"}, "c")
    department.set_opening_hours(weekly, [], "c")
    monday = datetime(2026, 11, 23, 10, tzinfo=UTC)
    department.follow_schedule(monday, "c")
    assert department.is_open and department.closes_at is None
    version = department.version
    for day in range(1, 10):
        department.follow_schedule(monday + timedelta(days=day), "c")
    assert department.version == version
