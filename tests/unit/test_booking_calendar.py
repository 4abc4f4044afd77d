"""An appointment as an .ics file, parsed back as a calendar program reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from icalendar import Calendar

from services.booking.calendar import appointment_ics
from tests.unit.support import berlin

APPOINTMENT = UUID("0d7e9a52-3b1c-4f6e-8a2d-5c4b3a291807")
URL = "https://buergerbuero.example/appointments/0d7e9a52#token"
STAMP = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def parsed(**overrides: Any) -> tuple[Calendar, Any]:
    arguments: dict[str, Any] = {
        "appointment_id": APPOINTMENT, "start": berlin(2026, 3, 2, 10, 15),
        "end": berlin(2026, 3, 2, 10, 30), "department_name": "Kataster- und Vermessungsamt",
        "url": URL, "stamp": STAMP,
    } | overrides
    calendar = Calendar.from_ical(appointment_ics(**arguments))
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def test_the_file_names_the_appointment_in_berlin_time() -> None:
    calendar, event = parsed()
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == berlin(2026, 3, 2, 10, 15) and end == berlin(2026, 3, 2, 10, 30)
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event["DTEND"].params["TZID"] == "Europe/Berlin"
    assert (start.hour, start.minute) == (10, 15)  # local wall-clock time, not UTC
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert str(event["SUMMARY"]) == "Termin: Kataster- und Vermessungsamt"
    assert str(event["URL"]) == URL and URL in str(event["DESCRIPTION"])
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event.decoded("DTSTAMP") == STAMP


def test_the_uid_stays_the_same_when_the_appointment_moves() -> None:
    _, first = parsed()
    _, moved = parsed(start=berlin(2026, 3, 3, 9, 0), end=berlin(2026, 3, 3, 9, 15),
                      sequence=1, stamp=STAMP + timedelta(hours=1))
    assert str(first["UID"]) == str(moved["UID"]) == f"{APPOINTMENT}@buergerbuero"
    assert (first.decoded("SEQUENCE"), moved.decoded("SEQUENCE")) == (0, 1)
    _, other = parsed(appointment_id=UUID("1d7e9a52-3b1c-4f6e-8a2d-5c4b3a291807"))
    assert str(other["UID"]) != str(first["UID"])


def test_english_and_cancelled() -> None:
    _, event = parsed(language="en", cancelled=True)
    assert str(event["SUMMARY"]) == "Appointment: Kataster- und Vermessungsamt"
    assert str(event["STATUS"]) == "CANCELLED"


def test_a_slot_in_the_doubled_hour_is_read_back_as_the_same_instant() -> None:
    first_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time
    _, event = parsed(start=first_0230, end=first_0230 + timedelta(minutes=15))
    # (An ambiguous local time never compares equal to another zone's: compare in UTC.)
    assert event.decoded("DTSTART").astimezone(UTC) == first_0230
    assert event.decoded("DTEND").astimezone(UTC) == first_0230 + timedelta(minutes=15)


def test_no_personal_data_beyond_what_is_passed() -> None:
    text = appointment_ics(APPOINTMENT, berlin(2026, 3, 2, 10, 15), berlin(2026, 3, 2, 10, 30),
                           "Kataster", URL, STAMP).decode()
    assert "ATTENDEE" not in text and "ORGANIZER" not in text and "@" not in text.replace(
        f"{APPOINTMENT}@buergerbuero", "")
