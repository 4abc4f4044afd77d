"""An appointment as an iCalendar file (.ics), for the confirmation page and mail.

It holds only what the caller passes: the department's name, the times and the
link back to the appointment's page; never the citizen's name, e-mail or topic.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone

PRODUCT_ID = "-//Buergerbuero//Booking//DE"
UID_DOMAIN = "buergerbuero"

_TEXT = {
    "de": ("Termin: {name}", "Termin ansehen, verschieben oder absagen: {url}"),
    "en": ("Appointment: {name}", "View, move or cancel the appointment: {url}"),
}


def event_uid(appointment_id: UUID) -> str:
    """The same for every version of one appointment's file, so calendars update it."""
    return f"{appointment_id}@{UID_DOMAIN}"


def appointment_ics(
    appointment_id: UUID,
    start: datetime,
    end: datetime,
    department_name: str,
    url: str,
    stamp: datetime,
    language: str = "de",
    timezone: str = "Europe/Berlin",
    sequence: int = 0,
    cancelled: bool = False,
) -> bytes:
    """The .ics of one appointment. ``stamp`` is when this version of it was made (DTSTAMP);
    ``sequence`` counts its changes (moved, cancelled), so a calendar replaces the old entry."""
    summary, description = _TEXT.get(language, _TEXT["de"])
    zone = ZoneInfo(timezone)
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    # Only the transitions around the appointment, not every one since 1970.
    calendar.add_component(
        Timezone.from_tzid(
            timezone,
            first_date=date(start.year, 1, 1),
            last_date=date(end.year + 1, 12, 31),
        )
    )
    entry = Event()
    entry.add("uid", event_uid(appointment_id))
    entry.add("dtstamp", stamp.astimezone(UTC))
    entry.add("dtstart", start.astimezone(zone))
    entry.add("dtend", end.astimezone(zone))
    entry.add("sequence", sequence)
    entry.add("summary", summary.format(name=department_name))
    entry.add("description", description.format(url=url))
    entry.add("url", url)
    entry.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(entry)
    return calendar.to_ical()
