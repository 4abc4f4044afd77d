"""Events published by the booking service (schedules and appointments).

Only pseudonymous ids and times: what a citizen gives when booking (name,
e-mail, topic, language) lives in the booking service under a pseudonymous
key that is deleted after its retention, never on the bus.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from services.common.contracts.base import IntegrationEvent

Actor = Literal["citizen", "staff"]
StaffCancelReason = Literal[
    "office_closed", "staff_unavailable", "not_responsible", "duplicate", "other"
]


class BookingPeriod(BaseModel):
    weekday: int  # 0 = Monday
    opens: str  # "08:30", local time of the department
    closes: str  # "12:00"; "24:00" allowed


class _BookingEvent(IntegrationEvent):
    SERVICE = "booking"


class ScheduleSet(_BookingEvent):
    """A department's appointment schedule, whole, each time it is set or changed."""

    department_id: UUID
    hours: list[BookingPeriod]
    slot_minutes: int
    capacity: int
    days_ahead: int
    notice_minutes: int
    closed_days: list[str]  # ISO dates
    state: str | None  # federal state whose public holidays take no appointments, e.g. "NW"
    timezone: str
    check_in_before_minutes: int
    check_in_after_minutes: int


class AppointmentBooked(_BookingEvent):
    appointment_id: UUID
    department_id: UUID
    slot_start: datetime
    slot_end: datetime
    booked_by: Actor  # the citizen, or staff on the citizen's behalf
    staff_id: str | None = None


class AppointmentRescheduled(_BookingEvent):
    appointment_id: UUID
    department_id: UUID
    from_start: datetime
    slot_start: datetime
    slot_end: datetime


class AppointmentCancelled(_BookingEvent):
    appointment_id: UUID
    department_id: UUID
    slot_start: datetime
    cancelled_by: Actor
    reason: StaffCancelReason | None = None  # staff give one; a citizen is not asked
    staff_id: str | None = None


class AppointmentCheckedIn(_BookingEvent):
    appointment_id: UUID
    department_id: UUID
    slot_start: datetime
    checked_in_at: datetime


class AppointmentMissed(_BookingEvent):
    appointment_id: UUID
    department_id: UUID
    slot_start: datetime
