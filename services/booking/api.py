"""The booking service's HTTP API, the citizens' side: free slots, booking without an
account, and the appointment's own link (view, .ics, move, cancel, check in).

Domain refusals become answers through ``BookingService.refusals``; what is refused here
is the caller (no token, another appointment's token) and malformed requests.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.booking.application import UnknownAppointment
from services.booking.calendar import appointment_ics
from services.booking.domain import Appointment
from services.booking.office import Office
from services.booking.schemas import (
    AppointmentView,
    BookedView,
    BookIn,
    CheckInView,
    FreeSlotView,
    RescheduleIn,
    SlotsView,
)
from services.booking.service import BookingService, booking_service
from services.common.auth import verify_capability
from services.common.clients import client_address
from services.common.errors import Refusal, too_many_requests
from services.common.logging import current_correlation_id

Service = Annotated[BookingService, Depends(booking_service)]
router = APIRouter(prefix="/api/v1", tags=["booking"])
MAX_SEARCH = timedelta(days=400)


def _aware(at: datetime, name: str) -> datetime:
    if at.tzinfo is None:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"The time '{name}' needs its time zone, e.g. 2026-03-02T08:00:00+01:00.",
        )
    return at.astimezone(UTC)


def appointment_view(service: BookingService, appointment: Appointment,
                     office: Office) -> AppointmentView:
    opens, closes = appointment.check_in_window
    return AppointmentView(
        appointment_id=appointment.id,
        department_id=appointment.department_id,
        department_name=office.name(appointment.language),
        start=appointment.start,
        end=appointment.end,
        timezone=appointment.timezone,
        status=appointment.status,  # type: ignore[arg-type]
        language=appointment.language,
        check_in_opens=opens,
        check_in_closes=closes,
        calendar=f"/api/v1/appointments/{appointment.id}/calendar.ics",
    )


async def _holder(service: BookingService, appointment_id: UUID,
                  request: Request) -> tuple[Appointment, Office]:
    """The appointment whose token came with the request (401 without, or for another)."""
    verify_capability(request, "appointment", str(appointment_id))
    appointment = await asyncio.to_thread(service.booking.appointment, appointment_id)
    office = await asyncio.to_thread(service.booking.office, appointment.department_id)
    return appointment, office


@router.get("/departments/{department_id}/slots", response_model=SlotsView, tags=["citizen"])
async def free_slots(
    department_id: UUID,
    service: Service,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
) -> Response:
    """The free slots from ``from`` to ``to`` (ISO 8601 with time zone, at most 400 days
    apart) that may be booked now, each with its places left."""
    low, high = _aware(start, "from"), _aware(end, "to")
    if high <= low or high - low > MAX_SEARCH:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "The end of a search ('to') must come after its start ('from'), at most 400 days "
            "later.",
        )
    found = await asyncio.to_thread(
        service.booking.free_slots, department_id, low, high, datetime.now(UTC)
    )
    terms = (await asyncio.to_thread(service.booking.schedule, department_id)).terms
    answer = SlotsView(
        department_id=department_id,
        timezone=terms.timezone,
        slot_minutes=terms.slot_minutes,
        slots=[FreeSlotView(start=s.start, end=s.end, remaining=s.remaining) for s in found],
    )
    # Encoded here once: a year of a department open around the clock is 35,000 slots, and
    # FastAPI would validate and encode them a second time.
    return Response(answer.model_dump_json(), media_type="application/json")


async def book_for(
    service: BookingService, department_id: UUID, body: BookIn, staff_id: str | None
) -> Response:
    """Book, by the citizen or by staff on their behalf: 201, or 200 for a booking sent again."""
    office = await asyncio.to_thread(service.booking.office, department_id)
    if office.anonymous and (body.display_name or body.email):
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "This counselling is anonymous: please give neither your name nor an e-mail address.",
        )
    if body.topic is not None and body.topic not in office.topic_ids:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Please choose one of the topics: {', '.join(office.topic_ids)}.",
        )
    start = _aware(body.start, "start")
    request_id = body.request_id or uuid4()
    terms = (await asyncio.to_thread(service.booking.schedule, department_id)).terms
    typed = {"display_name": body.display_name, "email": body.email, "topic": body.topic}
    personal = {k: v for k, v in typed.items() if v}
    if personal:
        personal["language"] = body.language
    visitor_ref = await service.keep_personal(
        department_id, request_id, personal, start + timedelta(minutes=terms.slot_minutes)
    )
    try:
        appointment, is_new = await asyncio.to_thread(
            service.booking.book,
            department_id,
            request_id,
            start,
            datetime.now(UTC),
            body.language,
            visitor_ref,
            current_correlation_id(),
            staff_id,
        )
    except Exception:
        if visitor_ref is not None and not await _booked(service, department_id, request_id):
            await service.forget_personal(department_id, request_id)
        raise
    token = service.appointment_token(appointment)
    answer = BookedView(
        appointment_id=appointment.id,
        token=token,
        link=service.personal_link(appointment.id, token),
        appointment=appointment_view(service, appointment, office),
    )
    return Response(
        answer.model_dump_json(),
        status_code=status.HTTP_201_CREATED if is_new else status.HTTP_200_OK,
        media_type="application/json",
    )


async def _booked(service: BookingService, department_id: UUID, request_id: UUID) -> bool:
    try:
        await asyncio.to_thread(
            service.booking.appointment, Appointment.create_id(department_id, request_id)
        )
    except UnknownAppointment:
        return False
    return True


@router.post(
    "/departments/{department_id}/appointments",
    response_model=BookedView,
    status_code=status.HTTP_201_CREATED,
    tags=["citizen"],
)
async def book(
    department_id: UUID, body: BookIn, service: Service, request: Request
) -> Response:
    """Book a slot, no account needed. Answers the appointment, its token and the personal
    link. A full slot is 409 with ``nearest``: the free slots closest to it. More than
    ``bookings_per_client_per_hour`` (10) from one connection: 429 ``too_many_bookings``."""
    client = service.client_tags.tag(client_address(request.scope))
    wait = await service.booking_rate.hit(client)
    if wait:
        raise too_many_requests(
            "Many appointments have been booked from this connection in the last hour. "
            "Please try again later, or call the office.",
            wait,
            "too_many_bookings",
        )
    return await book_for(service, department_id, body, None)


@router.get("/appointments/{appointment_id}", response_model=AppointmentView, tags=["citizen"])
async def show(appointment_id: UUID, request: Request, service: Service) -> AppointmentView:
    """Your appointment: with its token as ``Authorization: Bearer``."""
    appointment, office = await _holder(service, appointment_id, request)
    return appointment_view(service, appointment, office)


@router.get("/appointments/{appointment_id}/calendar.ics", tags=["citizen"])
async def calendar(appointment_id: UUID, request: Request, service: Service) -> Response:
    """The appointment for a calendar (the token as bearer or ``?token=``)."""
    verify_capability(request, "appointment", str(appointment_id), link=True)
    try:
        appointment = await asyncio.to_thread(service.booking.appointment, appointment_id)
    except UnknownAppointment as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, str(error)) from error
    office = await asyncio.to_thread(service.booking.office, appointment.department_id)
    body = appointment_ics(
        appointment.id,
        appointment.start,
        appointment.end,
        office.name(appointment.language),
        f"{service.settings.public_url.rstrip('/')}/appointments/{appointment.id}",
        appointment.modified_on,
        language=appointment.language,
        timezone=appointment.timezone,
        sequence=appointment.version - 1,
        cancelled=appointment.status == "cancelled",
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="appointment.ics"',
                 "Cache-Control": "no-store"},
    )


@router.post(
    "/appointments/{appointment_id}/reschedule", response_model=AppointmentView, tags=["citizen"]
)
async def reschedule(
    appointment_id: UUID, body: RescheduleIn, request: Request, service: Service
) -> AppointmentView:
    """Move to another free slot: the new place is taken and the old one freed at once."""
    _, office = await _holder(service, appointment_id, request)
    appointment = await asyncio.to_thread(
        service.booking.reschedule,
        appointment_id,
        _aware(body.start, "start"),
        datetime.now(UTC),
        current_correlation_id(),
    )
    return appointment_view(service, appointment, office)


@router.post(
    "/appointments/{appointment_id}/cancel", response_model=AppointmentView, tags=["citizen"]
)
async def cancel(appointment_id: UUID, request: Request, service: Service) -> AppointmentView:
    """Cancel: the place is free for someone else at once."""
    _, office = await _holder(service, appointment_id, request)
    appointment = await asyncio.to_thread(
        service.booking.cancel, appointment_id, "citizen", current_correlation_id()
    )
    return appointment_view(service, appointment, office)


@router.post(
    "/appointments/{appointment_id}/check-in", response_model=CheckInView, tags=["citizen"]
)
async def check_in(appointment_id: UUID, request: Request, service: Service) -> CheckInView:
    """Check in, from 10 minutes before to 15 after the start (the schedule says): answers
    the token to knock with at the department's door, where you are let in first. Outside
    the window, 409 with ``opens_at`` and ``closes_at``."""
    _, office = await _holder(service, appointment_id, request)
    appointment = await asyncio.to_thread(
        service.booking.check_in, appointment_id, datetime.now(UTC), current_correlation_id()
    )
    token, expires_at = service.knock_token(appointment)
    return CheckInView(
        appointment=appointment_view(service, appointment, office),
        knock_token=token,
        knock=f"/api/v1/departments/{appointment.department_id}/knock",
        expires_at=expires_at,
    )
