"""The booking service's HTTP API, the staff's side: a department's appointments by day or
week, cancelling with a reason, booking on a citizen's behalf, and the schedule.

Who is on a department's staff (and who administers it) booking knows from the rooms
service's roster events; the staff member is the one of the signed session.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, date, datetime
from functools import partial
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import StreamingResponse

from services.booking.api import Service, appointment_view, book_for
from services.booking.office import Office
from services.booking.schemas import (
    AppointmentView,
    BookedView,
    BookIn,
    OfficeAppointmentsView,
    ScheduleIn,
    ScheduleView,
    StaffAppointmentView,
    StaffCancelIn,
)
from services.booking.service import BookingService
from services.booking.slots import BookingHours
from services.booking.terms import ScheduleTerms
from services.common.auth import Staff
from services.common.errors import Refusal, too_many_requests
from services.common.identity import StaffIdentity
from services.common.logging import current_correlation_id
from services.common.sse import event_stream

router = APIRouter(prefix="/api/v1/offices", tags=["staff"])
STREAM_RETRY_SECONDS = 30


async def _served(
    service: BookingService, department_id: UUID, staff: StaffIdentity, admin: bool = False
) -> Office:
    office = await asyncio.to_thread(service.booking.office, department_id)
    if admin and not office.administers(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "Only this department's admins set its schedule.")
    if not office.serves(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "You are not on this department's staff.")
    return office


@router.get("/{department_id}/appointments", response_model=OfficeAppointmentsView)
async def appointments(
    department_id: UUID,
    service: Service,
    staff: Staff,
    day: Annotated[date | None, Query(description="The (first) day; today by default")] = None,
    span: Annotated[Literal["day", "week"], Query()] = "day",
) -> OfficeAppointmentsView:
    """The department's appointments of a day, or of the week (Monday to Sunday) of ``day``:
    booked, checked in, missed and cancelled, and the no-shows per day."""
    await _served(service, department_id, staff)
    first = day or datetime.now(UTC).date()
    days = 1
    if span == "week":
        first, days = date.fromordinal(first.toordinal() - first.weekday()), 7
    found = await asyncio.to_thread(service.booking.appointments_of, department_id, first, days)
    no_shows = await asyncio.to_thread(service.booking.no_shows, department_id, first, days)
    return OfficeAppointmentsView(
        department_id=department_id,
        first_day=first.isoformat(),
        days=days,
        appointments=[
            StaffAppointmentView(
                appointment_id=a.appointment_id, start=a.start, end=a.end, status=a.status,
                booked_by_staff=a.booked_by_staff, checked_in_at=a.checked_in_at,
                cancelled_by=a.cancelled_by, cancel_reason=a.cancel_reason,
            )
            for a in found
        ],
        no_shows=no_shows,
    )


@router.get(
    "/{department_id}/appointments/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def appointments_stream(
    department_id: UUID, service: Service, staff: Staff
) -> StreamingResponse:
    """Live: ``ready``, then an ``appointment`` event (its id, status, start and end) each
    time one of the department's appointments is booked, moved, cancelled, checked in or
    missed. At most ``BB_STREAMS_PER_STAFF`` (10) at once per staff member: 429 beyond."""
    await _served(service, department_id, staff)
    holder = hashlib.sha256(staff.staff_id.encode()).hexdigest()[:32]  # a valid KV key
    slot = await service.staff_streams.acquire(holder)
    if slot is None:
        raise too_many_requests(
            "Appointments are already followed in too many windows at once. Please close "
            "one of them and try again.",
            STREAM_RETRY_SECONDS,
            "too_many_streams",
        )
    return event_stream(
        service.feed.stream(department_id), partial(service.staff_streams.release, slot)
    )


@router.post(
    "/{department_id}/appointments",
    response_model=BookedView,
    status_code=status.HTTP_201_CREATED,
)
async def book_on_behalf(
    department_id: UUID, body: BookIn, service: Service, staff: Staff
) -> Response:
    """Book for a citizen (on the phone): the answer's link is for them."""
    await _served(service, department_id, staff)
    return await book_for(service, department_id, body, staff.staff_id)


@router.post(
    "/{department_id}/appointments/{appointment_id}/cancel", response_model=AppointmentView
)
async def cancel(
    department_id: UUID, appointment_id: UUID, body: StaffCancelIn, service: Service,
    staff: Staff,
) -> AppointmentView:
    """Cancel with a reason; the place is free at once."""
    office = await _served(service, department_id, staff)
    appointment = await asyncio.to_thread(service.booking.appointment, appointment_id)
    if appointment.department_id != department_id:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such appointment here.")
    appointment = await asyncio.to_thread(
        service.booking.cancel, appointment_id, "staff", current_correlation_id(), body.reason,
        staff.staff_id,
    )
    return appointment_view(service, appointment, office)


@router.get("/{department_id}/schedule", response_model=ScheduleView)
async def schedule(department_id: UUID, service: Service, staff: Staff) -> ScheduleView:
    await _served(service, department_id, staff)
    terms = (await asyncio.to_thread(service.booking.schedule, department_id)).terms
    return ScheduleView(department_id=department_id, **terms.to_record())


@router.put("/{department_id}/schedule", response_model=ScheduleView)
async def set_schedule(
    department_id: UUID, body: ScheduleIn, service: Service, staff: Staff
) -> ScheduleView:
    """Set the appointment schedule (the department's admins): hours, slot length, places,
    how far ahead and how short-notice, closed days, the federal state's holidays."""
    await _served(service, department_id, staff, admin=True)
    try:
        closed = frozenset(date.fromisoformat(d) for d in body.closed_days)
    except ValueError as error:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "Closed days are dates such as 2026-12-24.",
            field="closed_days",
        ) from error
    terms = ScheduleTerms(
        hours=tuple(BookingHours(p.weekday, p.opens, p.closes) for p in body.hours),
        slot_minutes=body.slot_minutes,
        capacity=body.capacity,
        days_ahead=body.days_ahead,
        notice_minutes=body.notice_minutes,
        closed_days=closed,
        state=body.state,
        timezone=body.timezone,
        check_in_before_minutes=body.check_in_before_minutes,
        check_in_after_minutes=body.check_in_after_minutes,
    )
    await asyncio.to_thread(
        service.booking.set_schedule, department_id, terms, current_correlation_id()
    )
    return ScheduleView(department_id=department_id, **terms.to_record())

