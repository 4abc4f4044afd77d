"""The queue service's HTTP API: departments' doors, knocks, tickets and the staff's lines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.common.auth import Staff, verify_capability
from services.common.contracts.queue import DeclineReason
from services.common.errors import Refusal
from services.common.identity import StaffIdentity
from services.common.logging import current_correlation_id
from services.queue.application import (
    NobodyWaiting,
    OfficeClosed,
    UnknownDepartment,
    UnknownTicket,
)
from services.queue.domain import DomainError, Door, Ticket, TicketNotWaiting
from services.queue.service import QueueService, display_name, queue_service

Service = Annotated[QueueService, Depends(queue_service)]
router = APIRouter(prefix="/api/v1", tags=["queue"])


# -- models ------------------------------------------------------------------------------


class TopicView(BaseModel):
    id: str
    de: str
    en: str


class WaitView(BaseModel):
    seconds: int = Field(description="Best guess of the wait")
    low_seconds: int
    high_seconds: int
    consultations_sampled: int = Field(description="How many recent consultations it rests on")
    staff_on_duty: int
    basis: Literal["recent_consultations", "default_duration"]


class DepartmentView(BaseModel):
    id: UUID
    slug: str
    name: str
    name_de: str
    name_en: str
    description: str
    open: bool
    opens_at: datetime | None = Field(description="Next opening, when closed")
    closes_at: datetime | None
    anonymous: bool
    accepts_appointments: bool
    languages: list[str]
    topics: list[TopicView]
    waiting: int
    expected_wait: WaitView = Field(description="For someone knocking now")


class KnockIn(BaseModel):
    display_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description="How staff should address you; not asked by anonymous departments",
    )
    language: str = Field(default="de", min_length=2, max_length=8, pattern=r"^[a-z]{2,3}$")
    topic: str | None = Field(default=None, max_length=40)
    knock_id: UUID | None = Field(
        default=None,
        description="Chosen by the client; sending the same knock again returns the same "
        "ticket instead of a second one (safe retries)",
    )


class KnockOut(BaseModel):
    ticket_id: UUID
    token: str = Field(description="Keep it: it proves this is your ticket")
    number: int
    display_name: str | None
    place: int
    expected_wait: WaitView
    stream: str


class TicketView(BaseModel):
    ticket_id: UUID
    status: str
    department_id: UUID
    place: int | None = None
    expected_wait: WaitView | None = None
    consultation_id: UUID | None = None
    decline_reason: str | None = None
    expiry_reason: str | None = None
    next_opening: datetime | None = None


class WaitingEntry(BaseModel):
    ticket_id: UUID
    number: int
    priority: str
    knocked_at: datetime
    display_name: str | None
    language: str | None
    topic: str | None
    transferred: bool = False


class QueueView(BaseModel):
    department_id: UUID
    open: bool
    waiting: list[WaitingEntry]


class DeclineIn(BaseModel):
    reason: DeclineReason
    message: str | None = Field(
        default=None, max_length=500, description="Shown to the citizen, stored nowhere"
    )


class TransferIn(BaseModel):
    department_id: UUID


class MessageIn(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class AdmittedView(BaseModel):
    ticket_id: UUID
    status: str
    department_id: UUID
    consultation_id: UUID | None = None


# -- helpers ---------------------------------------------------------------------------------


def _language(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.headers.get("accept-language", "de")
    return "en" if wanted.lower().startswith("en") else "de"


async def _door(service: QueueService, department_id: UUID) -> Door:
    try:
        return await service.door(department_id)
    except UnknownDepartment as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such department.") from error


async def _ticket(service: QueueService, ticket_id: UUID) -> Ticket:
    try:
        return await asyncio.to_thread(service.queue.ticket, ticket_id)
    except UnknownTicket as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such ticket.") from error


def _require_serves(door: Door, staff: StaffIdentity) -> None:
    if not door.serves(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "You are not on this department's staff.")


def _closed(error: OfficeClosed) -> Refusal:
    when = error.next_opening
    text = "The office is closed at the moment."
    if when:
        text += f" It opens next on {when.isoformat(timespec='minutes')}."
    return Refusal(status.HTTP_409_CONFLICT, text, opens_at=when)


async def _command(call: Any, *args: Any) -> Any:
    with refusals():
        return await asyncio.to_thread(call, *args)


@contextmanager
def refusals() -> Iterator[None]:
    """Domain refusals as HTTP answers a person understands."""
    try:
        yield
    except OfficeClosed as error:
        raise _closed(error) from error
    except UnknownTicket as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such ticket.") from error
    except UnknownDepartment as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such department.") from error
    except TicketNotWaiting as error:
        raise Refusal(status.HTTP_409_CONFLICT, str(error), ticket_status=error.status) from error
    except NobodyWaiting as error:
        raise Refusal(status.HTTP_409_CONFLICT, str(error)) from error
    except DomainError as error:
        raise Refusal(status.HTTP_409_CONFLICT, str(error)) from error


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
        expected_wait=WaitView(**estimate.__dict__),
    )


SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}
}


def _sse(messages: AsyncIterator[tuple[str, dict[str, Any]]]) -> StreamingResponse:
    """Server-sent events, encoded here: a stream is one small generator, nothing more
    (thousands of citizens keep one open while they wait)."""

    async def encode() -> AsyncIterator[bytes]:
        async for name, data in messages:
            if name == "ping":
                yield b": ping\n\n"
            else:
                yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

    return StreamingResponse(
        encode(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- the public side --------------------------------------------------------------------------


@router.get("/departments", response_model=list[DepartmentView], tags=["citizen"])
async def list_departments(service: Service, request: Request) -> list[DepartmentView]:
    """Every department: open or not, the next opening, who waits and how long."""
    lang = _language(request)
    doors = await asyncio.to_thread(service.queue.doors)
    views = [_department_view(service, d, lang) for d in doors]
    return sorted(views, key=lambda v: (v.slug != "demo", v.name))


async def _followed_lines(
    service: Service,
    staff: Staff,
    department: Annotated[list[UUID] | None, Query(max_length=50)] = None,
) -> list[UUID]:
    """The lines a staff stream follows: those named by ``?department=``, or all I serve."""
    doors = await asyncio.to_thread(service.queue.doors)
    mine = [d.id for d in doors if d.serves(staff.staff_id)]
    if department and not set(department) <= set(mine):
        raise Refusal(
            status.HTTP_403_FORBIDDEN, "You are not on the staff of every department named."
        )
    return department or mine


@router.get(
    "/departments/queues/stream", response_class=StreamingResponse, responses=SSE, tags=["staff"]
)
async def my_queues_stream(
    service: Service, staff: Staff, lines: Annotated[list[UUID], Depends(_followed_lines)]
) -> StreamingResponse:
    """Live, every line I serve in one stream: a ``snapshot`` per line, then ``knocked``,
    ``left`` and ``consultation``, each naming its ``department_id``. (Registered before
    ``/departments/{id}``, so the path is not taken for an id.)"""
    return _staff_events(service, lines, staff.staff_id)


@router.get("/departments/{department_id}", response_model=DepartmentView, tags=["citizen"])
async def department_details(
    department_id: UUID, service: Service, request: Request
) -> DepartmentView:
    door = await _door(service, department_id)
    return await asyncio.to_thread(_department_view, service, door, _language(request))


@router.post(
    "/departments/{department_id}/knock",
    response_model=KnockOut,
    status_code=status.HTTP_201_CREATED,
    tags=["citizen"],
)
async def knock(department_id: UUID, body: KnockIn, service: Service) -> Response:
    """Knock on the door: no account needed. Answers with your ticket and its token.

    Sending the same ``knock_id`` again answers 200 with the same ticket."""
    door = await _door(service, department_id)
    if door.anonymous and body.display_name:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "This counselling is anonymous: please do not give your name.",
        )
    if body.language not in door.languages:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"This office offers the languages {', '.join(door.languages)}.",
        )
    if body.topic is not None and body.topic not in door.topic_ids:
        raise Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Please choose one of the topics: {', '.join(door.topic_ids)}.",
        )
    visit = {
        "anonymous": door.anonymous,
        "display_name": body.display_name,
        "language": body.language,
        "topic": body.topic,
    }
    with refusals():
        ticket, is_new = await service.knock(
            department_id, body.knock_id or uuid4(), visit, current_correlation_id()
        )
    name = display_name(visit if is_new else await service.visit(ticket.id) or visit, ticket.number)
    place = service.queue.waiting.place(ticket.id) or 1
    estimate = service.estimate(door, place)
    token = service.signer.issue(
        "ticket",
        str(ticket.id),
        service.settings.ticket_token_hours * 3600,
        department=str(department_id),
    )
    answer = KnockOut(
        ticket_id=ticket.id,
        token=token,
        number=ticket.number,
        display_name=name,
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

    EventSource cannot send headers, so the token may come as ``?token=``."""
    assert service.hub is not None
    return _sse(service.hub.ticket_stream(ticket_id))


@router.post("/tickets/{ticket_id}/withdraw", response_model=TicketView, tags=["citizen"])
async def withdraw(ticket_id: UUID, request: Request, service: Service) -> TicketView:
    """Leave the waiting room."""
    verify_capability(request, "ticket", str(ticket_id))
    await _command(service.queue.withdraw, ticket_id, current_correlation_id())
    return TicketView(**(await service.ticket_status(ticket_id) or {}))


# -- the staff side ---------------------------------------------------------------------------


async def _queue_view(service: QueueService, door: Door) -> QueueView:
    line = service.queue.waiting.line(door.id)
    entries = [WaitingEntry(**await service.waiting_entry(waiting)) for waiting in line]
    return QueueView(department_id=door.id, open=door.is_open, waiting=entries)


@router.get("/departments/{department_id}/queue", response_model=QueueView, tags=["staff"])
async def department_queue(department_id: UUID, service: Service, staff: Staff) -> QueueView:
    door = await _door(service, department_id)
    _require_serves(door, staff)
    return await _queue_view(service, door)


async def _served_door(department_id: UUID, service: Service, staff: Staff) -> Door:
    """A dependency: checked before a stream starts, so a refusal is a 404/403, not a broken 200."""
    door = await _door(service, department_id)
    _require_serves(door, staff)
    return door


@router.get(
    "/departments/{department_id}/queue/stream",
    response_class=StreamingResponse,
    responses=SSE,
    tags=["staff"],
)
async def department_queue_stream(
    department_id: UUID, service: Service, staff: Staff, _: Annotated[Door, Depends(_served_door)]
) -> StreamingResponse:
    """Live, one line: a ``snapshot`` first, then ``knocked``, ``left`` and ``consultation``
    (a ticket of this line was admitted: where its consultation is)."""
    return _staff_events(service, [department_id], staff.staff_id)


def _staff_events(
    service: QueueService, department_ids: list[UUID], staff_id: str
) -> StreamingResponse:
    assert service.hub is not None

    async def snapshot(department_id: UUID) -> tuple[str, dict[str, Any]]:
        fresh = await service.door(department_id, max_age=0)
        return "snapshot", (await _queue_view(service, fresh)).model_dump(mode="json")

    return _sse(service.hub.staff_stream(department_ids, staff_id, snapshot))


@router.post(
    "/departments/{department_id}/queue/admit-next", response_model=AdmittedView, tags=["staff"]
)
async def admit_next(department_id: UUID, service: Service, staff: Staff) -> AdmittedView:
    """Admit the first in line: appointment holders before walk-ins, then by knock time."""
    _require_serves(await _door(service, department_id), staff)
    ticket = await _command(
        service.queue.admit_next, department_id, staff.staff_id, current_correlation_id()
    )
    return AdmittedView(
        ticket_id=ticket.id, status=ticket.status, department_id=ticket.department_id
    )


@router.post(
    "/departments/{department_id}/queue/message",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["staff"],
)
async def message_line(
    department_id: UUID, body: MessageIn, service: Service, staff: Staff
) -> dict[str, str]:
    """A short note to everyone waiting here, e.g. "about 10 minutes more"."""
    _require_serves(await _door(service, department_id), staff)
    await service.send_message(body.text, department_id=department_id)
    return {"status": "sent"}


async def _staff_ticket(service: QueueService, ticket_id: UUID, staff: StaffIdentity) -> Ticket:
    ticket = await _ticket(service, ticket_id)
    _require_serves(await _door(service, ticket.department_id), staff)
    return ticket


@router.post("/tickets/{ticket_id}/admit", response_model=AdmittedView, tags=["staff"])
async def admit(ticket_id: UUID, service: Service, staff: Staff) -> AdmittedView:
    await _staff_ticket(service, ticket_id, staff)
    ticket = await _command(
        service.queue.admit, ticket_id, staff.staff_id, current_correlation_id()
    )
    return AdmittedView(
        ticket_id=ticket.id, status=ticket.status, department_id=ticket.department_id
    )


@router.post("/tickets/{ticket_id}/decline", response_model=TicketView, tags=["staff"])
async def decline(ticket_id: UUID, body: DeclineIn, service: Service, staff: Staff) -> TicketView:
    await _staff_ticket(service, ticket_id, staff)
    await _command(
        service.queue.decline, ticket_id, staff.staff_id, body.reason, current_correlation_id()
    )
    if body.message:
        await service.send_message(body.message, ticket_id=ticket_id)
    return TicketView(**(await service.ticket_status(ticket_id) or {}))


@router.post("/tickets/{ticket_id}/transfer", response_model=TicketView, tags=["staff"])
async def transfer(ticket_id: UUID, body: TransferIn, service: Service, staff: Staff) -> TicketView:
    await _staff_ticket(service, ticket_id, staff)
    await _command(
        service.queue.transfer,
        ticket_id,
        body.department_id,
        staff.staff_id,
        current_correlation_id(),
    )
    return TicketView(**(await service.ticket_status(ticket_id) or {}))


@router.post("/tickets/{ticket_id}/message", status_code=status.HTTP_202_ACCEPTED, tags=["staff"])
async def message_ticket(
    ticket_id: UUID, body: MessageIn, service: Service, staff: Staff
) -> dict[str, str]:
    await _staff_ticket(service, ticket_id, staff)
    await service.send_message(body.text, ticket_id=ticket_id)
    return {"status": "sent"}
