"""The queue service's HTTP API, the staff's side: their lines, live, and what they do
with a ticket (admit, decline, transfer, a message)."""

from __future__ import annotations

import asyncio
import hashlib
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import StreamingResponse

from services.common.auth import Staff
from services.common.errors import Refusal, too_many_requests
from services.common.identity import StaffIdentity
from services.common.logging import current_correlation_id
from services.queue.api import (
    SSE,
    STREAM_RETRY,
    Service,
    event_stream,
    find_door,
    find_ticket,
    require_serves,
    run_command,
)
from services.queue.domain import Door, Ticket
from services.queue.schemas import (
    AdmittedView,
    DeclineClientIn,
    DeclinedView,
    DeclineIn,
    MessageIn,
    QueueView,
    SharedAddress,
    TicketView,
    TransferIn,
    WaitingEntry,
)
from services.queue.service import QueueService

router = APIRouter(prefix="/api/v1", tags=["queue"])
SHARED_SHOWN = 20  # client addresses with several tickets listed with a line


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
    ``left`` and ``consultation``, each naming its ``department_id``."""
    return await _staff_events(service, lines, staff.staff_id)


async def _queue_view(service: QueueService, door: Door, limit: int | None = None) -> QueueView:
    """The first ``limit`` of the line (``staff_line_shown``, 50) and how many wait in all: a
    dashboard stays as quick with ten thousand waiting as with ten."""
    line = service.queue.waiting.line(door.id)
    shared = service.limits.shared_addresses(line)
    shown = line[: limit or service.settings.staff_line_shown]
    entries = [
        WaitingEntry(**await service.waiting_entry(w), **service.client_marks(w, shared))
        for w in shown
    ]
    return QueueView(
        department_id=door.id,
        open=door.is_open,
        waiting=entries,
        total=len(line),
        shared_addresses=[
            SharedAddress(client_tag=client, waiting=n)
            for client, n in sorted(shared.items(), key=lambda item: -item[1])[:SHARED_SHOWN]
        ],
    )


@router.get("/departments/{department_id}/queue", response_model=QueueView, tags=["staff"])
async def department_queue(
    department_id: UUID,
    service: Service,
    staff: Staff,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> QueueView:
    """The line: its first ``limit`` (default ``BB_STAFF_LINE_SHOWN``, 50) and the total."""
    door = await find_door(service, department_id)
    require_serves(door, staff)
    return await _queue_view(service, door, limit)


@router.post(
    "/departments/{department_id}/queue/decline-client",
    response_model=DeclinedView,
    tags=["staff"],
)
async def decline_client(
    department_id: UUID, body: DeclineClientIn, service: Service, staff: Staff
) -> DeclinedView:
    """Decline at once every ticket of one client address waiting here (by its tag in the
    line, ``client_tag``): a flood cleared with one action."""
    require_serves(await find_door(service, department_id), staff)
    line = service.queue.waiting.line(department_id)
    tickets = service.limits.tickets_from(body.client_tag, line)
    declined = await run_command(
        service.queue.decline_many, tickets, staff.staff_id, body.reason, current_correlation_id()
    )
    if body.message:
        for ticket_id in declined:
            await service.send_message(body.message, ticket_id=ticket_id)
    return DeclinedView(declined=len(declined))


async def _served_door(department_id: UUID, service: Service, staff: Staff) -> Door:
    """A dependency: checked before a stream starts, so a refusal is a 404/403, not a broken 200."""
    door = await find_door(service, department_id)
    require_serves(door, staff)
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
    return await _staff_events(service, [department_id], staff.staff_id)


async def _staff_events(
    service: QueueService, department_ids: list[UUID], staff_id: str
) -> StreamingResponse:
    """At most ``streams_per_staff`` (10) of one staff member's streams are open at once,
    across every tab, device and process (429 beyond): a stream holds a connection and a
    subscription for as long as it lives."""
    assert service.hub is not None
    holder = hashlib.sha256(staff_id.encode()).hexdigest()[:32]  # a valid KV key
    slot = await service.staff_stream_slots.acquire(holder)
    if slot is None:
        raise too_many_requests(
            "Your queues are already followed in too many windows at once. Please close one "
            "of them and try again.",
            STREAM_RETRY,
            "too_many_streams",
        )

    async def snapshot(department_id: UUID) -> tuple[str, dict[str, Any]]:
        fresh = await service.door(department_id, max_age=0)
        return "snapshot", (await _queue_view(service, fresh)).model_dump(mode="json")

    return event_stream(
        service.hub.staff_stream(department_ids, staff_id, snapshot),
        partial(service.staff_stream_slots.release, slot),
    )


@router.post(
    "/departments/{department_id}/queue/admit-next", response_model=AdmittedView, tags=["staff"]
)
async def admit_next(department_id: UUID, service: Service, staff: Staff) -> AdmittedView:
    """Admit the first in line: appointment holders before walk-ins, then by knock time."""
    require_serves(await find_door(service, department_id), staff)
    ticket = await run_command(
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
    require_serves(await find_door(service, department_id), staff)
    await service.send_message(body.text, department_id=department_id)
    return {"status": "sent"}


async def _staff_ticket(service: QueueService, ticket_id: UUID, staff: StaffIdentity) -> Ticket:
    ticket = await find_ticket(service, ticket_id)
    require_serves(await find_door(service, ticket.department_id), staff)
    return ticket


@router.post("/tickets/{ticket_id}/admit", response_model=AdmittedView, tags=["staff"])
async def admit(ticket_id: UUID, service: Service, staff: Staff) -> AdmittedView:
    await _staff_ticket(service, ticket_id, staff)
    ticket = await run_command(
        service.queue.admit, ticket_id, staff.staff_id, current_correlation_id()
    )
    return AdmittedView(
        ticket_id=ticket.id, status=ticket.status, department_id=ticket.department_id
    )


@router.post("/tickets/{ticket_id}/decline", response_model=TicketView, tags=["staff"])
async def decline(ticket_id: UUID, body: DeclineIn, service: Service, staff: Staff) -> TicketView:
    await _staff_ticket(service, ticket_id, staff)
    await run_command(
        service.queue.decline, ticket_id, staff.staff_id, body.reason, current_correlation_id()
    )
    if body.message:
        await service.send_message(body.message, ticket_id=ticket_id)
    return TicketView(**(await service.ticket_status(ticket_id) or {}))


@router.post("/tickets/{ticket_id}/transfer", response_model=TicketView, tags=["staff"])
async def transfer(ticket_id: UUID, body: TransferIn, service: Service, staff: Staff) -> TicketView:
    await _staff_ticket(service, ticket_id, staff)
    await service.transfer(ticket_id, body.department_id, staff.staff_id, current_correlation_id())
    return TicketView(**(await service.ticket_status(ticket_id) or {}))


@router.post("/tickets/{ticket_id}/message", status_code=status.HTTP_202_ACCEPTED, tags=["staff"])
async def message_ticket(
    ticket_id: UUID, body: MessageIn, service: Service, staff: Staff
) -> dict[str, str]:
    await _staff_ticket(service, ticket_id, staff)
    await service.send_message(body.text, ticket_id=ticket_id)
    return {"status": "sent"}
