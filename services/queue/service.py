"""The queue service at run time: store, bus, live streams and short-lived visit data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar
from uuid import UUID

from fastapi import APIRouter, Request
from prometheus_client import Counter, Gauge, Histogram

from services.common.bus import Bus
from services.common.clients import ClientTags
from services.common.contracts import IntegrationEvent
from services.common.contracts import rooms as rooms_events
from services.common.errors import StatusTable
from services.common.eventstore import ServiceApplication
from services.common.logging import get_logger, new_correlation_id
from services.common.ratelimit import SharedSlots
from services.common.reactions import IntoApplication, Live, Reaction
from services.common.service import BaseService
from services.common.settings import Settings
from services.queue.application import Knock, NobodyWaiting, Queue, UnknownTicket
from services.queue.domain import DomainError, Door, KnockRefused, Ticket
from services.queue.estimate import WaitEstimate, estimate_wait
from services.queue.floods import KnockLimits
from services.queue.group_commit import GroupCommit
from services.queue.live import LiveHub
from services.queue.mapping import to_contract
from services.queue.view import DOOR_MAX_AGE, UnknownDepartment, WaitingView
from services.queue.visits import Visits
from services.queue.waiting import Change, Waiting

log = get_logger(__name__)

STREAM_SLOTS_BUCKET = "bb_ticket_streams"
STAFF_STREAM_SLOTS_BUCKET = "bb_staff_streams"
MESSAGES_SUBJECT = "bbx.queue.message"
PRESENCE_SUBJECT = "bbx.queue.presence"
CATCH_UP_SECONDS = 5.0
SWEEP_EVERY = 6  # catch-ups: the closed-office sweep runs every 30 seconds

# Knocks and admissions are counted by the replica that committed them (sum over replicas);
# every replica holds the whole waiting room (max over replicas).
KNOCKS = Counter("bb_queue_knocks_total", "Knocks", ["department"])
ADMISSIONS = Counter("bb_queue_admissions_total", "Admissions", ["department"])
WAITING = Gauge("bb_queue_waiting", "Citizens waiting", ["department"], multiprocess_mode="livemax")
WAIT_TIME = Histogram(
    "bb_queue_wait_seconds",
    "Time from knock to admission",
    ["department"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200),
)


class QueueService(BaseService):
    name = "queue"
    refusals: ClassVar[StatusTable] = {
        UnknownTicket: 404,
        UnknownDepartment: 404,
        KnockRefused: 422,
        NobodyWaiting: 409,
        DomainError: 409,  # OfficeClosed (with opens_at), TicketNotWaiting (ticket_status), …
    }

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.hub: LiveHub | None = None
        self._ready: dict[UUID, UUID] = {}  # ticket -> consultation, seen live on the bus
        # Knocks arriving while one is being saved are saved together (one fsync).
        self._knocks: GroupCommit[Knock, tuple[Ticket, bool]] = GroupCommit(self.queue.knock_all)
        self.limits = KnockLimits(settings, self.queue.waiting)
        self.visits = Visits(
            settings.visit_data_ttl_seconds,
            self.limits,
            lambda ticket_id: self.view.department_of(ticket_id) is not None,
        )
        self.client_tags = ClientTags(settings.signing_key)
        self.stream_slots = SharedSlots(STREAM_SLOTS_BUCKET, settings.streams_per_ticket)
        self.staff_stream_slots = SharedSlots(
            STAFF_STREAM_SLOTS_BUCKET, settings.streams_per_staff
        )

    @property
    def queue(self) -> Queue:
        assert isinstance(self.app, Queue)
        return self.app

    @property
    def view(self) -> WaitingView:
        return self.queue.view

    def create_application(self, env: dict[str, str]) -> ServiceApplication:
        return Queue(
            env={**env, "AGGREGATE_CACHE_MAXSIZE": "10000"},
            replica_index=self.settings.queue_replica_index,
            replica_count=self.settings.queue_replica_count,
        )

    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        return to_contract(domain_event, position)

    def reactions(self) -> list[Reaction]:
        return [
            # Departments' doors, hours, rosters and consultations, into the policies.
            IntoApplication("queue", ["bb.rooms.>"]),
            # Every replica's ticket events, into this replica's waiting rooms.
            Live("bb.queue.>", self.view.seen_on_bus),
            # A citizen learns at once where the consultation is (before the policy ran).
            Live("bb.rooms.consultation_opened", self._consultation_opened),
        ]

    def routers(self) -> list[APIRouter]:
        from services.queue import api, staff_api

        return [api.router, staff_api.router]  # the citizens' busiest routes first

    async def prepare(self, bus: Bus) -> None:
        self.hub = LiveHub(
            self.view,
            self.ticket_status,
            self.staff_entry,
            self.tasks,
            send_presence=partial(bus.send_ephemeral, PRESENCE_SUBJECT),
        )
        self.view.on_change(_count_waiting(self.view))
        self.view.on_committed(_count_committed)
        await self.visits.open(bus)
        await self.limits.rate.start(bus)
        await self.stream_slots.start(bus)
        await self.staff_stream_slots.start(bus)
        # Notes and staff presence: core NATS, never stored (not events to react to).
        await bus.subscribe_ephemeral(f"{MESSAGES_SUBJECT}.>", self._message_arrived)
        await bus.subscribe_ephemeral(PRESENCE_SUBJECT, self._presence_arrived)

    async def on_started(self) -> None:
        self.tasks.start("queue_sweep", self._sweep())
        self.tasks.start("queue_follow_visits", self.visits.follow())

    async def stop(self) -> None:
        if self.hub:
            await self.hub.close()  # the other replicas stop counting our staff at once
        await self.stream_slots.stop()
        await self.staff_stream_slots.stop()
        await super().stop()

    async def _sweep(self) -> None:
        """What other replicas stored often; the closed offices and old data now and then
        (every replica sweeps: a ticket another one expired first is left alone)."""
        rounds = 0
        while True:
            await asyncio.sleep(CATCH_UP_SECONDS)
            rounds += 1
            try:
                await asyncio.to_thread(self.queue.catch_up)
                if rounds % SWEEP_EVERY == 0:
                    await asyncio.to_thread(self.queue.expire_where_closed, new_correlation_id())
                    self.queue.waiting.forget_finished(datetime.now(UTC))
                    self.visits.forget_expired()
            except Exception:
                log.exception("queue_sweep_failed")

    # -- events ------------------------------------------------------------------------------

    async def _consultation_opened(self, event: IntegrationEvent) -> None:
        if isinstance(event, rooms_events.ConsultationOpened) and self.hub:
            # The durable consumer records it too; until then, answer from the event itself.
            self._ready[event.ticket_id] = event.consultation_id
            while len(self._ready) > 10_000:
                self._ready.pop(next(iter(self._ready)))
            details = {
                "ticket_id": str(event.ticket_id),
                "consultation_id": str(event.consultation_id),
                "department_id": str(event.department_id),
                "staff_id": event.staff_id,
            }
            self.hub.consultation_ready(event.ticket_id, event.department_id, details)

    async def _presence_arrived(self, subject: str, data: bytes) -> None:
        if self.hub:
            try:
                self.hub.presence_arrived(data)
            except Exception:
                log.exception("presence_unreadable")

    async def _message_arrived(self, subject: str, data: bytes) -> None:
        body = json.loads(data)
        if self.hub:
            self.hub.message(
                UUID(body["department_id"]) if body.get("department_id") else None,
                UUID(body["ticket_id"]) if body.get("ticket_id") else None,
                str(body["text"]),
            )

    async def send_message(
        self, text: str, *, department_id: UUID | None = None, ticket_id: UUID | None = None
    ) -> None:
        """A short note to one citizen or a whole line: delivered live, stored nowhere."""
        assert self.bus is not None
        body = {
            "text": text,
            "department_id": str(department_id) if department_id else None,
            "ticket_id": str(ticket_id) if ticket_id else None,
        }
        await self.bus.send_ephemeral(
            f"{MESSAGES_SUBJECT}.{department_id or ticket_id}", json.dumps(body).encode()
        )

    # -- views -----------------------------------------------------------------------------

    async def door(self, department_id: UUID, max_age: float = DOOR_MAX_AGE) -> Door:
        """The department's door; read from the store (in a thread) only when not fresh."""
        if self.view.has_fresh_door(department_id, max_age):
            return self.view.door_cached(department_id, max_age)
        return await asyncio.to_thread(self.view.door_cached, department_id, max_age)

    def estimate(self, door: Door, place: int) -> WaitEstimate:
        staff = self.hub.staff_on_duty(door.id) if self.hub else 0
        return estimate_wait(
            place, staff, door.durations, self.settings.default_consultation_minutes
        )

    async def ticket_status(self, ticket_id: UUID) -> dict[str, Any] | None:
        department_id = self.queue.waiting.department_of(ticket_id)
        place = self.queue.waiting.place(ticket_id)
        if department_id is not None and place is not None:
            estimate = self.estimate(await self.door(department_id), place)
            return {
                "ticket_id": str(ticket_id),
                "status": "waiting",
                "department_id": str(department_id),
                "place": place,
                "expected_wait": estimate.__dict__,
            }
        try:
            ticket = await asyncio.to_thread(self.queue.ticket, ticket_id)
        except UnknownTicket:
            return None
        consultation_id = ticket.consultation_id or self._ready.get(ticket_id)
        status: dict[str, Any] = {
            "ticket_id": str(ticket_id),
            "status": ticket.status,
            "department_id": str(ticket.department_id),
            "place": None,
            "expected_wait": None,
            "consultation_id": str(consultation_id) if consultation_id else None,
            "decline_reason": ticket.decline_reason,
            "expiry_reason": ticket.expiry_reason,
        }
        if ticket.status == "expired":
            door = await self.door(ticket.department_id)
            status["next_opening"] = door.next_opening.isoformat() if door.next_opening else None
        return status

    async def waiting_entry(self, entry: Waiting, transferred: bool = False) -> dict[str, Any]:
        """One line of a staff member's queue: the ticket with what the citizen typed.

        Anonymity is a property of where the citizen is now: an anonymous department's
        staff see a pseudonym, also for a ticket transferred in with a name."""
        visit = await self.visits.get(entry.ticket_id) or {}
        if (await self.door(entry.department_id)).anonymous:
            visit = anonymised(visit)
        return {
            "ticket_id": str(entry.ticket_id),
            "number": entry.number,
            "priority": entry.priority,
            "knocked_at": entry.knocked_at.isoformat(),
            "line_order": entry.line_order,
            "display_name": display_name(visit),
            "anonymous": bool(visit.get("anonymous")),
            "language": visit.get("language"),
            "topic": visit.get("topic"),
            "appointment_at": visit.get("appointment_at"),
            "transferred": transferred,
        }

    async def staff_entry(self, change: Change) -> dict[str, Any] | None:
        if change.entry is None:
            return None
        entry = await self.waiting_entry(change.entry, change.kind == "transferred_in")
        waiting = self.queue.waiting.count(change.department_id)
        return {**entry, **self.client_marks(change.entry), "waiting": waiting}

    def client_marks(self, entry: Waiting, shared: dict[str, int] | None = None) -> dict[str, Any]:
        """Whether a waiting ticket shares its client address with others in its line: the
        client's pseudonymous tag and how many, the tag only when it does (``shared``: the
        line's clients with several tickets, when known already)."""
        client = self.limits.client_of(entry.ticket_id)
        if client is None:
            return {"client_tag": None, "same_client": 1}
        if shared is not None:
            same = shared.get(client, 1)
        else:
            same = self.limits.waiting_from(client, entry.department_id)
        return {"client_tag": client if same > 1 else None, "same_client": max(same, 1)}

    # -- commands that also touch the short-lived visit data ------------------------------------

    async def transfer(
        self, ticket_id: UUID, to_department_id: UUID, staff_id: str, correlation_id: str
    ) -> Ticket:
        """Move a waiting ticket to another department. Into an anonymous one, the name the
        citizen gave is dropped from the visit data too: it is nowhere that department's
        staff could come across it."""
        ticket = await asyncio.to_thread(
            self.queue.transfer, ticket_id, to_department_id, staff_id, correlation_id
        )
        if (await self.door(to_department_id)).anonymous:
            visit = await self.visits.get(ticket_id)
            if visit is None:
                await self.visits.forget(ticket_id)  # whatever may still be stored
            elif visit != anonymised(visit):
                await self.visits.remember(ticket_id, anonymised(visit))
        return ticket

    async def knock(
        self,
        department_id: UUID,
        knock_id: UUID,
        visit: dict[str, Any],
        correlation_id: str,
        priority: str = "walk_in",
    ) -> tuple[Ticket, bool]:
        """Knock; what the citizen typed is stored first, so every live view has it at once.

        The same knock again leaves the data of its ticket as the first knock stored it,
        also when it is refused (the ticket has left the line)."""
        ticket_id = Ticket.create_id(department_id, knock_id)
        first = await self.visits.remember(ticket_id, visit, only_if_new=True)
        try:
            knock = Knock(department_id, priority, knock_id, correlation_id)
            ticket, is_new = await self._knocks.submit(knock)
        except Exception:
            if first:
                await self.visits.forget(ticket_id)  # refused: nothing of it remains
            raise
        if is_new and not first:  # left behind by a refused knock whose deletion failed
            await self.visits.remember(ticket_id, visit)
        return ticket, is_new


def _count_waiting(view: WaitingView) -> Callable[[list[Change]], None]:
    def count(changes: list[Change]) -> None:
        for change in changes:
            WAITING.labels(str(change.department_id)).set(view.count(change.department_id))

    return count


def _count_committed(events: list[IntegrationEvent]) -> None:
    for event in events:
        label = str(getattr(event, "department_id", ""))
        if event.type == "Knocked":
            KNOCKS.labels(label).inc()
        elif event.type == "Admitted":
            ADMISSIONS.labels(label).inc()
            WAIT_TIME.labels(label).observe(float(getattr(event, "waited_seconds", 0.0)))


def anonymised(visit: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous department keeps of a visit: no name."""
    return {**visit, "anonymous": True, "display_name": None}


def display_name(visit: dict[str, Any]) -> str | None:
    """The name given; none where the department is anonymous (the pages show a pseudonym
    from ``anonymous`` and the ticket's number, in the reader's language)."""
    if visit.get("anonymous"):
        return None
    name = visit.get("display_name")
    return str(name) if name else None


async def queue_service(request: Request) -> QueueService:
    return request.app.state.services["queue"]  # type: ignore[no-any-return]
