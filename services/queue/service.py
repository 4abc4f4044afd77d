"""The queue service at run time: store, bus, live streams and short-lived visit data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from prometheus_client import Counter, Gauge, Histogram

from services.common.bus import Bus
from services.common.clients import ClientTags
from services.common.contracts import IntegrationEvent
from services.common.contracts import rooms as rooms_events
from services.common.eventstore import ServiceApplication
from services.common.logging import get_logger, new_correlation_id
from services.common.ratelimit import SharedSlots
from services.common.service import BaseService
from services.common.settings import Settings
from services.queue.application import DOOR_MAX_AGE, Knock, Queue, UnknownTicket, to_contract
from services.queue.domain import Door, Ticket
from services.queue.estimate import WaitEstimate, estimate_wait
from services.queue.floods import KnockLimits
from services.queue.group_commit import GroupCommit
from services.queue.live import LiveHub
from services.queue.waiting import Change, Waiting

log = get_logger(__name__)

VISITS_BUCKET = "bb_visits"
STREAM_SLOTS_BUCKET = "bb_ticket_streams"
MESSAGES_SUBJECT = "bbx.queue.message"
PRESENCE_SUBJECT = "bbx.queue.presence"
STORED_AT = "_stored_at"
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

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.hub: LiveHub | None = None
        self._visits: KeyValue | None = None
        self._visit_cache: dict[UUID, tuple[float, dict[str, Any]]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._ready: dict[UUID, UUID] = {}  # ticket -> consultation, seen live on the bus
        # Knocks arriving while one is being saved are saved together (one fsync).
        self._knocks: GroupCommit[Knock, tuple[Ticket, bool]] = GroupCommit(self.queue.knock_all)
        self.limits = KnockLimits(settings, self.queue.waiting)
        self.client_tags = ClientTags(settings.signing_key)
        self.stream_slots = SharedSlots(STREAM_SLOTS_BUCKET, settings.streams_per_ticket)

    @property
    def queue(self) -> Queue:
        assert isinstance(self.app, Queue)
        return self.app

    def create_application(self, env: dict[str, str]) -> ServiceApplication:
        return Queue(
            env={**env, "AGGREGATE_CACHE_MAXSIZE": "10000"},
            replica_index=self.settings.queue_replica_index,
            replica_count=self.settings.queue_replica_count,
        )

    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        return to_contract(domain_event, position)

    def routers(self) -> list[APIRouter]:
        from services.queue import api, staff_api

        return [api.router, staff_api.router]  # the citizens' busiest routes first

    async def subscribe(self, bus: Bus) -> None:
        self.hub = LiveHub(
            self.ticket_status,
            self.staff_entry,
            self.queue.waiting.department_of,
            self._waiting_ids,
            send_presence=partial(bus.send_ephemeral, PRESENCE_SUBJECT),
            waiting_count=self.queue.waiting.count,
        )
        self.queue.on_change(self._on_changes)
        self.queue.on_committed(_count_committed)
        # What citizens type stays in memory: it never touches a disk, and after a restart
        # of every NATS server staff see the pseudonym ("Gast 17") instead of the name.
        self._visits = await bus.key_value(
            VISITS_BUCKET, self.settings.visit_data_ttl_seconds, in_memory=True
        )
        await self.limits.rate.start(bus)
        await self.stream_slots.start(bus)
        self.consume_into_application("queue", ["bb.rooms.>"])
        bus.watch("bb.queue.>", self._apply_from_bus)
        bus.watch("bb.rooms.consultation_opened", self._consultation_opened)
        await bus.subscribe_ephemeral(f"{MESSAGES_SUBJECT}.>", self._message_arrived)
        await bus.subscribe_ephemeral(PRESENCE_SUBJECT, self._presence_arrived)

    async def on_started(self) -> None:
        self._background = [
            asyncio.create_task(self._sweep()),
            asyncio.create_task(self._follow_visits()),
        ]

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.hub:
            await self.hub.close()
        await self.stream_slots.stop()
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
                    self._forget_expired_visits()
            except Exception:
                log.exception("queue_sweep_failed")

    # -- events ------------------------------------------------------------------------------

    def _on_changes(self, changes: list[Change]) -> None:
        for change in changes:
            label = str(change.department_id)
            WAITING.labels(label).set(self.queue.waiting.count(change.department_id))
        if self.hub:
            self.hub.changes_happened(changes)

    async def _apply_from_bus(self, event: IntegrationEvent) -> None:
        self.queue.apply_from_bus(event)

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

    # -- what a citizen typed: short-lived, never in the durable record -------------------------

    async def remember_visit(
        self, ticket_id: UUID, data: dict[str, Any], *, only_if_new: bool = False
    ) -> bool:
        """Kept here and in the TTL bucket; a NATS outage loses only other replicas' view.

        ``only_if_new``: not when the bucket holds the ticket's data already (a knock sent
        again keeps what the first one stored); False then."""
        stored = time.time()
        assert self._visits is not None
        # With the time it was stored: another replica keeps its copy no longer than we do.
        shared = json.dumps({**data, STORED_AT: stored}).encode()
        write = self._visits.create if only_if_new else self._visits.put
        try:
            await asyncio.wait_for(write(str(ticket_id), shared), 2)
        except KeyWrongLastSequenceError:
            return False
        except Exception as error:
            log.warning("visit_data_not_shared", error=repr(error))
        self._keep_visit(ticket_id, stored, data)
        return True

    async def _follow_visits(self) -> None:
        """Keep what citizens typed at any replica, as it is stored (a watch of the bucket):
        a staff member's line never waits for a look-up, however busy the door."""
        assert self._visits is not None
        while True:
            try:
                watcher = await self._visits.watchall()
                async for entry in watcher:
                    if entry is not None:
                        self._visit_seen(entry.key, entry.value, entry.operation)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS away: look-ups still work; watch again
                log.warning("visit_watch_interrupted", error=repr(error))
                await asyncio.sleep(1)

    def _visit_seen(self, key: str, value: bytes | None, operation: str | None) -> None:
        ticket_id = UUID(key)
        if operation in ("DEL", "PURGE") or not value:
            self._drop_visit(ticket_id)
            return
        data: dict[str, Any] = json.loads(value)
        stored = float(data.pop(STORED_AT, time.time()))
        if time.time() - stored < self.settings.visit_data_ttl_seconds:
            self._keep_visit(ticket_id, stored, data)

    def _keep_visit(self, ticket_id: UUID, stored: float, data: dict[str, Any]) -> None:
        self._visit_cache[ticket_id] = (stored, data)
        self.limits.seen(ticket_id, data, stored)  # which client knocked where, and when

    def _drop_visit(self, ticket_id: UUID) -> None:
        self._visit_cache.pop(ticket_id, None)
        self.limits.forget(ticket_id)

    async def forget_visit(self, ticket_id: UUID) -> None:
        self._drop_visit(ticket_id)
        assert self._visits is not None
        try:
            await asyncio.wait_for(self._visits.delete(str(ticket_id)), 2)
        except Exception as error:
            log.warning("visit_data_not_deleted", error=repr(error))

    async def visit(self, ticket_id: UUID) -> dict[str, Any] | None:
        cached = self._visit_cache.get(ticket_id)
        if cached and time.time() - cached[0] < self.settings.visit_data_ttl_seconds:
            return cached[1]
        assert self._visits is not None
        try:
            entry = await asyncio.wait_for(self._visits.get(str(ticket_id)), 2)
        except KeyNotFoundError:
            return None
        except Exception as error:
            log.warning("visit_data_unavailable", error=repr(error))
            return None
        if entry.value is None:
            return None
        data: dict[str, Any] = json.loads(entry.value)
        stored = float(data.pop(STORED_AT, time.time()))
        if time.time() - stored >= self.settings.visit_data_ttl_seconds:
            return None  # the bucket has not removed it yet
        self._keep_visit(ticket_id, stored, data)
        return data

    def _forget_expired_visits(self) -> None:
        cutoff = time.time() - self.settings.visit_data_ttl_seconds
        for ticket_id, (stored, _) in list(self._visit_cache.items()):
            if stored < cutoff or self.queue.waiting.department_of(ticket_id) is None:
                self._drop_visit(ticket_id)

    # -- views -----------------------------------------------------------------------------

    async def door(self, department_id: UUID, max_age: float = DOOR_MAX_AGE) -> Door:
        """The department's door; read from the store (in a thread) only when not fresh."""
        if self.queue.has_fresh_door(department_id, max_age):
            return self.queue.door_cached(department_id, max_age)
        return await asyncio.to_thread(self.queue.door_cached, department_id, max_age)

    def estimate(self, door: Door, place: int) -> WaitEstimate:
        staff = self.hub.staff_on_duty(door.id) if self.hub else 0
        return estimate_wait(
            place, staff, door.durations, self.settings.default_consultation_minutes
        )

    def _waiting_ids(self, department_id: UUID) -> list[UUID]:
        return [w.ticket_id for w in self.queue.waiting.line(department_id)]

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
        visit = await self.visit(entry.ticket_id) or {}
        if (await self.door(entry.department_id)).anonymous:
            visit = anonymised(visit)
        return {
            "ticket_id": str(entry.ticket_id),
            "number": entry.number,
            "priority": entry.priority,
            "knocked_at": entry.knocked_at.isoformat(),
            "display_name": display_name(visit, entry.number),
            "language": visit.get("language"),
            "topic": visit.get("topic"),
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
            visit = await self.visit(ticket_id)
            if visit is None:
                await self.forget_visit(ticket_id)  # whatever may still be stored
            elif visit != anonymised(visit):
                await self.remember_visit(ticket_id, anonymised(visit))
        return ticket

    async def knock(
        self, department_id: UUID, knock_id: UUID, visit: dict[str, Any], correlation_id: str
    ) -> tuple[Ticket, bool]:
        """Knock; what the citizen typed is stored first, so every live view has it at once.

        The same knock again leaves the data of its ticket as the first knock stored it,
        also when it is refused (the ticket has left the line)."""
        ticket_id = Ticket.create_id(department_id, knock_id)
        first = await self.remember_visit(ticket_id, visit, only_if_new=True)
        try:
            knock = Knock(department_id, "walk_in", knock_id, correlation_id)
            ticket, is_new = await self._knocks.submit(knock)
        except Exception:
            if first:
                await self.forget_visit(ticket_id)  # refused: nothing of it remains
            raise
        if is_new and not first:  # left behind by a refused knock whose deletion failed
            await self.remember_visit(ticket_id, visit)
        return ticket, is_new


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


def display_name(visit: dict[str, Any], number: int) -> str | None:
    """What staff see: the name given, or a pseudonym where the department is anonymous."""
    if visit.get("anonymous"):
        return f"Gast {number}"
    name = visit.get("display_name")
    return str(name) if name else None


async def queue_service(request: Request) -> QueueService:
    return request.app.state.services["queue"]  # type: ignore[no-any-return]
