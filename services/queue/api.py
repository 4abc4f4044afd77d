"""The queue service's HTTP API, the citizens' side: departments' doors, knocks and
tickets; and what the staff's side (``staff_api``) shares with it."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import StreamingResponse

from services.common.auth import bearer_token, verify_capability
from services.common.clients import client_address
from services.common.errors import Refusal, RetryLater, too_many_requests
from services.common.identity import StaffIdentity
from services.common.logging import current_correlation_id
from services.common.sse import SSE, event_stream
from services.common.tokens import Claims
from services.queue.domain import Door, Ticket
from services.queue.schemas import (
    DepartmentView,
    KnockIn,
    KnockOut,
    PeriodView,
    TicketView,
    TopicView,
    WaitView,
)
from services.queue.service import QueueService, display_name, queue_service

Service = Annotated[QueueService, Depends(queue_service)]
BUSY_RETRY = 1  # second: a knock refused while the replicas raced for numbers
STREAM_RETRY = 30  # seconds: a window closed meanwhile has given its stream back
router = APIRouter(prefix="/api/v1", tags=["queue"])


# -- helpers ---------------------------------------------------------------------------------


def _appointment_knock(request: Request, department_id: UUID) -> Claims | None:
    """The checked-in appointment a knock comes with, verified without asking booking: a
    signed ``appointment_knock`` token naming this department (401 forged or expired, 403
    for another department), or None for a walk-in."""
    if bearer_token(request) is None:
        return None
    claims = verify_capability(request, "appointment_knock")
    if claims.extra.get("department") != str(department_id):
        raise Refusal(
            status.HTTP_403_FORBIDDEN,
            "This appointment is at another department. Please knock at its own door.",
        )
    return claims


def _language(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.headers.get("accept-language", "de")
    return "en" if wanted.lower().startswith("en") else "de"


async def find_door(service: QueueService, department_id: UUID) -> Door:
    return await service.door(department_id)  # UnknownDepartment: 404 (QueueService.refusals)


async def find_ticket(service: QueueService, ticket_id: UUID) -> Ticket:
    return await asyncio.to_thread(service.queue.ticket, ticket_id)


def require_serves(door: Door, staff: StaffIdentity) -> None:
    if not door.serves(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "You are not on this department's staff.")


async def run_command(call: Any, *args: Any) -> Any:
    """A command in a thread; what it refuses is answered by ``QueueService.refusals``."""
    return await asyncio.to_thread(call, *args)


def _department_view(service: QueueService, door: Door, lang: str) -> DepartmentView:
    profile = door.profile
    waiting = service.queue.waiting.count(door.id)
    estimate = service.estimate(door, waiting + 1)
    return DepartmentView(
        id=door.id,
        slug=profile["slug"],
        name=profile[f"name_{lang}"],
        name_de=profile["name_de"],
        name_en=profile["name_en"],
        description=profile[f"description_{lang}"],
        open=door.is_open,
        opens_at=None if door.is_open else door.next_opening,
        closes_at=door.closes_at if door.is_open else None,
        anonymous=door.anonymous,
        accepts_appointments=profile["accepts_appointments"],
        languages=door.languages,
        topics=[TopicView(**t) for t in profile["topics"]],
        waiting=waiting,
        line_full=service.limits.line_full(door.id),
        expected_wait=WaitView(**estimate.__dict__),
        weekly=[PeriodView(**period) for period in door.weekly],
        closed_days=door.closed_days,
        timezone=profile.get("timezone", "Europe/Berlin"),
    )


# -- the public side --------------------------------------------------------------------------


@router.get("/departments", response_model=list[DepartmentView], tags=["citizen"])
async def list_departments(service: Service, request: Request) -> list[DepartmentView]:
    """Every department: open or not, the next opening, who waits and how long."""
    lang = _language(request)
    doors = await asyncio.to_thread(service.queue.doors)
    views = [_department_view(service, d, lang) for d in doors]
    return sorted(views, key=lambda v: (v.slug != "demo", v.name))


@router.get("/departments/{department_id}", response_model=DepartmentView, tags=["citizen"])
async def department_details(
    department_id: UUID, service: Service, request: Request
) -> DepartmentView:
    door = await find_door(service, department_id)
    return await asyncio.to_thread(_department_view, service, door, _language(request))


@router.post(
    "/departments/{department_id}/knock",
    response_model=KnockOut,
    status_code=status.HTTP_201_CREATED,
    tags=["citizen"],
)
async def knock(
    department_id: UUID, body: KnockIn, service: Service, request: Request
) -> Response:
    """Knock on the door: no account needed. Answers with your ticket and its token.

    Sending the same ``knock_id`` again answers 200 with the same ticket. A full line, or
    too many knocks or waiting tickets from one connection, answer 429 with
    ``Retry-After`` and a ``reason`` (``line_full``, ``too_many_knocks``,
    ``too_many_waiting``); 503 with ``Retry-After`` and ``reason`` ``busy`` when the
    queue's replicas kept taking the same waiting numbers (nothing was stored: knock again,
    best with the same ``knock_id``). With the token an appointment's check-in answered (booking's
    ``appointment_knock``, as ``Authorization: Bearer``) the ticket has priority
    ``appointment`` and staff see the appointment's time."""
    appointment = _appointment_knock(request, department_id)
    door = await find_door(service, department_id)
    door.check_knock(bool(body.display_name), body.language, body.topic)
    # An appointment knocks once: the same check-in again is the same ticket.
    knock_id = UUID(appointment.subject) if appointment else body.knock_id or uuid4()
    client = service.client_tags.tag(client_address(request.scope))
    await service.limits.check(department_id, Ticket.create_id(department_id, knock_id), client)
    visit = {
        "anonymous": door.anonymous,
        "display_name": body.display_name,
        "language": body.language,
        "topic": body.topic,
        # Which client knocked where (a pseudonym of its address): for the limits above.
        "client": client,
        "department": str(department_id),
        "appointment_at": appointment["slot_start"] if appointment else None,
    }
    try:
        ticket, is_new = await service.knock(
            department_id, knock_id, visit, current_correlation_id(),
            "appointment" if appointment else "walk_in",
        )
    except RetryLater as busy:  # the replicas kept taking the same numbers: nothing stored
        raise Refusal(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The office is very busy at this moment. Please knock again in a second.",
            headers={"Retry-After": str(BUSY_RETRY)},
            reason="busy",
            retry_after_seconds=BUSY_RETRY,
        ) from busy
    name = display_name(visit if is_new else await service.visits.get(ticket.id) or visit)
    place = service.queue.waiting.place(ticket.id) or 1
    estimate = service.estimate(door, place)
    # The name and language given travel with the ticket: rooms puts them on the
    # participant pass for staff to see (never for an anonymous department).
    person = {"lang": body.language, **({"name": name} if name else {})}
    token = service.signer.issue(
        "ticket",
        str(ticket.id),
        service.settings.ticket_token_hours * 3600,
        department=str(department_id),
        **person,
    )
    answer = KnockOut(
        ticket_id=ticket.id,
        token=token,
        number=ticket.number,
        display_name=name,
        anonymous=door.anonymous,
        place=place,
        expected_wait=WaitView(**estimate.__dict__),
        stream=f"/api/v1/tickets/{ticket.id}/stream",
    )
    # Built and checked here once; FastAPI would validate and encode it a second time
    # (the busiest request of all: about a tenth of its cost).
    return Response(
        answer.model_dump_json(),
        status_code=status.HTTP_201_CREATED if is_new else status.HTTP_200_OK,
        media_type="application/json",
    )


@router.get("/tickets/{ticket_id}", response_model=TicketView, tags=["citizen"])
async def ticket_status(ticket_id: UUID, request: Request, service: Service) -> TicketView:
    """Your ticket now: with the token as ``Authorization: Bearer``."""
    verify_capability(request, "ticket", str(ticket_id))
    found = await service.ticket_status(ticket_id)
    if found is None:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such ticket.")
    return TicketView(**found)


def _ticket_holder(ticket_id: UUID, request: Request) -> None:
    """A dependency: checked before a stream starts, so a refusal is a 401, not a broken 200."""
    verify_capability(request, "ticket", str(ticket_id))


@router.get(
    "/tickets/{ticket_id}/stream",
    response_class=StreamingResponse,
    responses=SSE,
    tags=["citizen"],
    dependencies=[Depends(_ticket_holder)],
)
async def ticket_stream(ticket_id: UUID, request: Request, service: Service) -> StreamingResponse:
    """Live: ``status`` (place, expected wait, admitted with the consultation) and ``message``.

    EventSource cannot send headers, so the token may come as ``?token=``. At most
    ``streams_per_ticket`` (5) streams of one ticket are open at once (429 beyond)."""
    assert service.hub is not None
    slot = await service.stream_slots.acquire(str(ticket_id))
    if slot is None:
        raise too_many_requests(
            "This ticket is already followed in too many windows at once. Please close one of "
            "them and try again.",
            STREAM_RETRY,
            "too_many_streams",
        )
    return event_stream(
        service.hub.ticket_stream(ticket_id), partial(service.stream_slots.release, slot)
    )


@router.post("/tickets/{ticket_id}/withdraw", response_model=TicketView, tags=["citizen"])
async def withdraw(ticket_id: UUID, request: Request, service: Service) -> TicketView:
    """Leave the waiting room."""
    verify_capability(request, "ticket", str(ticket_id))
    await run_command(service.queue.withdraw, ticket_id, current_correlation_id())
    return TicketView(**(await service.ticket_status(ticket_id) or {}))
