"""The booking service's integration events: subjects, privacy, the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.common.contracts import IntegrationEvent, parse_event, registered_subjects
from services.common.contracts import booking as booking_events
from services.common.contracts.base import _REGISTRY
from tests.unit.support import contract

START = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def test_every_booking_event_has_its_subject() -> None:
    subjects = registered_subjects()
    for name in ("schedule_set", "appointment_booked", "appointment_rescheduled",
                 "appointment_cancelled", "appointment_checked_in", "appointment_missed"):
        assert f"bb.booking.{name}" in subjects
    assert not any(s.endswith("_booking_event") for s in subjects)


def test_no_booking_event_carries_personal_data() -> None:
    private = {"display_name", "name", "topic", "language", "email", "e_mail", "ip",
               "message", "visitor_ref", "phone"}
    booking_subjects = [s for s in registered_subjects() if s.startswith("bb.booking.")]
    assert len(booking_subjects) == 6
    for subject in booking_subjects:
        cls: type[IntegrationEvent] = _REGISTRY[subject]
        assert not private & set(cls.model_fields), subject


def test_a_cancellation_round_trips_over_the_wire() -> None:
    appointment = uuid4()
    event = contract(booking_events.AppointmentCancelled, appointment, 2, START,
                     appointment_id=appointment, department_id=uuid4(), slot_start=START,
                     cancelled_by="staff", reason="office_closed", staff_id="anna")
    assert (event.type, event.service) == ("AppointmentCancelled", "booking")
    assert event.subject == "bb.booking.appointment_cancelled"
    assert parse_event(event.subject, event.to_wire()) == event


def test_a_booking_round_trips_with_its_times() -> None:
    appointment = uuid4()
    event = contract(booking_events.AppointmentBooked, appointment, 1, START,
                     appointment_id=appointment, department_id=uuid4(), slot_start=START,
                     slot_end=START + timedelta(minutes=15), booked_by="citizen")
    parsed = parse_event(event.subject, event.to_wire())
    assert isinstance(parsed, booking_events.AppointmentBooked)
    assert parsed.slot_end - parsed.slot_start == timedelta(minutes=15)


def test_an_unknown_cancellation_reason_is_refused() -> None:
    appointment = uuid4()
    with pytest.raises(ValidationError):
        contract(booking_events.AppointmentCancelled, appointment, 2, START,
                 appointment_id=appointment, department_id=uuid4(), slot_start=START,
                 cancelled_by="staff", reason="Herr Müller was rude")
