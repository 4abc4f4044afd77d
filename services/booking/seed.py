"""The demo district's appointment schedules (``seed_demo``).

The departments are the rooms service's: booking learns them from its events, so the
schedules are set once those have arrived. A schedule that exists already is left as
its admins made it: seeding again changes nothing.
"""

from __future__ import annotations

from services.booking.application import Booking, NoAppointmentsHere
from services.booking.slots import BookingHours
from services.booking.terms import ScheduleTerms
from services.common.logging import get_logger, new_correlation_id

log = get_logger(__name__)

WEEKDAYS = range(5)


def _hours(days: range | list[int], opens: str, closes: str) -> tuple[BookingHours, ...]:
    return tuple(BookingHours(day, opens, closes) for day in days)


SCHEDULES: dict[str, ScheduleTerms] = {
    # The cadastre office: mornings every weekday, and Tuesday and Thursday afternoons.
    "kataster": ScheduleTerms(
        hours=_hours(WEEKDAYS, "08:00", "12:00") + _hours([1, 3], "14:00", "16:00"),
        capacity=2,
        state="NW",
    ),
    # The Elterngeldstelle: walk-ins in the morning, appointments in the afternoon.
    "elterngeld": ScheduleTerms(
        hours=_hours(range(4), "13:00", "15:30"),
        capacity=1,
        state="NW",
    ),
    # The demo office: every 15 minutes around the clock, also on holidays, bookable at once,
    # so the whole path (book, check in, be admitted) can be tried at any hour.
    "demo": ScheduleTerms(
        hours=_hours(range(7), "00:00", "24:00"),
        capacity=2,
        notice_minutes=0,
        days_ahead=14,
        state=None,
    ),
}


def seed_schedules(booking: Booking) -> bool:
    """Set the demo schedules of the departments known so far; True when all were known."""
    known = 0
    for slug, terms in SCHEDULES.items():
        department_id = booking.department_by_slug(slug)
        if department_id is None:
            continue
        known += 1
        try:
            booking.schedule(department_id)
        except NoAppointmentsHere:
            booking.set_schedule(department_id, terms, new_correlation_id())
            log.info("demo_schedule_seeded", department=slug)
    return known == len(SCHEDULES)
