"""The booking API's request and response models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.common.contracts.booking import StaffCancelReason
from services.common.text import DisplayName

# email-validator is not a dependency: a plain check that catches typos and anything that
# could smuggle a header into a mail (no spaces, no line breaks, one @, a dotted domain).
_EMAIL = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("this is not an e-mail address such as name@example.org")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


EmailAddress = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
Language = Annotated[str, StringConstraints(pattern=r"^(de|en)$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FreeSlotView(BaseModel):
    start: datetime
    end: datetime
    remaining: int = Field(description="Places left in this slot")


class SlotsView(BaseModel):
    department_id: UUID
    timezone: str
    slot_minutes: int
    slots: list[FreeSlotView]


class BookIn(_Strict):
    start: datetime = Field(description="The slot's start, with its time zone (ISO 8601)")
    topic: str | None = Field(default=None, max_length=40)
    language: Language = Field(default="de", description="de or en: pages and mail")
    display_name: DisplayName | None = Field(
        default=None, description="Optional; not taken by anonymous departments"
    )
    email: EmailAddress | None = Field(
        default=None, description="Optional, for the confirmation and reminders"
    )
    request_id: UUID | None = Field(
        default=None,
        description="Chosen by the client: sending the same booking again answers the same "
        "appointment instead of booking a second one",
    )


class BookedView(BaseModel):
    appointment_id: UUID
    token: str = Field(description="Shows, moves, cancels and checks in this appointment")
    link: str = Field(description="The personal link (the token rides in the fragment)")
    appointment: AppointmentView


class AppointmentView(BaseModel):
    appointment_id: UUID
    department_id: UUID
    department_name: str
    start: datetime
    end: datetime
    timezone: str
    status: Literal["booked", "checked_in", "missed", "cancelled"]
    language: str
    check_in_opens: datetime
    check_in_closes: datetime
    calendar: str = Field(description="The .ics file of this appointment")


class RescheduleIn(_Strict):
    start: datetime


class StaffCancelIn(_Strict):
    reason: StaffCancelReason


class CheckInView(BaseModel):
    appointment: AppointmentView
    knock_token: str = Field(
        description="Knock with it as the bearer token: POST /api/v1/departments/{id}/knock"
    )
    knock: str = Field(description="Where to knock")
    expires_at: int


class StaffAppointmentView(BaseModel):
    appointment_id: UUID
    start: datetime
    end: datetime
    status: str
    booked_by_staff: str | None
    checked_in_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None


class OfficeAppointmentsView(BaseModel):
    department_id: UUID
    first_day: str
    days: int
    appointments: list[StaffAppointmentView]
    no_shows: dict[str, int] = Field(description="Missed appointments per day")


class PeriodIn(_Strict):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    opens: str = Field(pattern=r"^\d\d:\d\d$")
    closes: str = Field(pattern=r"^\d\d:\d\d$")


class ScheduleIn(_Strict):
    hours: list[PeriodIn] = Field(max_length=70)
    slot_minutes: int = 15
    capacity: int = 1
    days_ahead: int = 60
    notice_minutes: int = 60
    closed_days: list[str] = Field(default_factory=list, max_length=400)
    state: str | None = "NW"
    timezone: str = "Europe/Berlin"
    check_in_before_minutes: int = 10
    check_in_after_minutes: int = 15


class ScheduleView(ScheduleIn):
    department_id: UUID


BookedView.model_rebuild()
