"""The media service at run time: hosted rooms, the replica registry, the store.

Rooms follow consultations: a durable consumer of the rooms service's
ConsultationOpened assigns each new consultation's media room to the
least-loaded live replica and records MediaRoomOpened; ConsultationEnded
records RoomClosed, releases the assignment and disconnects everyone.
The hosting replica also reacts at once to the live ConsultationEnded and to
RoomClosed (e.g. written by another replica that noticed a loss).
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from fastapi import APIRouter

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.contracts import media as media_events
from services.common.contracts import rooms as rooms_events
from services.common.contracts.rooms import InvitationRevoked
from services.common.eventstore import ServiceApplication
from services.common.logging import get_logger, new_correlation_id
from services.common.reactions import Durable, Live, Reaction
from services.common.service import BaseService
from services.common.settings import Settings
from services.common.tracked import tracked
from services.media.application import MediaRooms, to_contract
from services.media.availability import load_forwarding
from services.media.domain import CONSULTATION_ENDED, REPLICA_LOST
from services.media.hosting import HostedRooms, RoomRecorder
from services.media.ice import server_configuration
from services.media.registry import Assignment, NoLiveReplica, ReplicaRegistry
from services.media.revocation import Revocations
from services.media.signalling import REASON_MOVED, CloseCode, Refused
from services.media.telemetry import StatsSampler

if TYPE_CHECKING:
    from services.media.sfu import ForwardingRoom

log = get_logger(__name__)

REPLICA_STOPPED = "media server stopped"
CONSUMER = "media"


class MediaService(BaseService):
    name = "media"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # Without fitting aiortc hooks: no media rooms, everything else goes on.
        self.availability = load_forwarding(settings.media_loopback_candidates)
        self.replica_id = settings.media_replica_id or f"{socket.gethostname()}-{settings.port}"
        self.replica_url = replica_url(settings)
        self.recorder = RoomRecorder(self.media)
        self.hosted = HostedRooms(
            lambda: server_configuration(settings, self.replica_id), self.recorder
        )
        self.sampler = StatsSampler(lambda: list(self.hosted.rooms.values()))
        self.registry: ReplicaRegistry | None = None
        self.revocations = Revocations()

    @property
    def media(self) -> MediaRooms:
        assert isinstance(self.app, MediaRooms)
        return self.app

    def create_application(self, env: dict[str, str]) -> ServiceApplication:
        return MediaRooms(env=env)

    def to_contract(self, domain_event: Any, position: int) -> IntegrationEvent | None:
        return to_contract(domain_event, position)

    def routers(self) -> list[APIRouter]:
        from services.media.api import router

        return [router]

    async def prepare(self, bus: Bus) -> None:
        # The writer first: rooms report to it from their first join on.
        self.tasks.start("media-room-recorder", self.recorder.run())
        self.registry = ReplicaRegistry(
            bus,
            self.replica_id,
            self.replica_url,
            self.settings.media_registry_ttl_seconds,
            self.hosted.load,
        )
        self.registry.on_lost = self._room_lost
        self.registry.on_released = self._room_released
        await self.registry.start()
        await self.revocations.open(bus, self.settings)

    def reactions(self) -> list[Reaction]:
        return [
            Durable(
                CONSUMER,
                [rooms_events.ConsultationOpened.subject_for(),
                 rooms_events.ConsultationEnded.subject_for()],
                tracked(self.settings.stream_name, CONSUMER, self._follow_consultation),
            ),
            Live(rooms_events.ConsultationEnded.subject_for(), self._consultation_ended_live),
            Live(media_events.MediaRoomClosed.subject_for(), self._room_closed_live),
            Live(InvitationRevoked.subject_for(), self.revocations.withdrawn_live),
        ]

    async def on_started(self) -> None:
        self.tasks.start("media-stats", self.sampler.run())

    async def stop(self) -> None:
        if self.registry is not None:
            await self._give_up_rooms()
            await self.registry.stop()
        await self.hosted.close_all(REPLICA_STOPPED)
        await self.recorder.drain(within=5)
        await super().stop()  # the recorder and the sampler stop with the service's tasks

    def readiness(self) -> dict[str, bool]:
        checks = super().readiness()
        checks["media.registry"] = self.registry is not None and self.registry.last_beat > 0
        return checks

    # -- where rooms live --------------------------------------------------------------

    async def assignment(self, consultation_id: UUID) -> Assignment | None:
        assert self.registry is not None
        return await self.registry.assignment(str(consultation_id))

    async def live_room(self, consultation_id: UUID) -> ForwardingRoom:
        """The hosted room a participant joins, or Refused with where to go instead."""
        if not self.availability.available:
            raise Refused(CloseCode.MEDIA_UNAVAILABLE, "video unavailable on this server")
        assignment = await self.assignment(consultation_id)
        record = await asyncio.to_thread(self.media.room, consultation_id)
        if assignment is None or record is None or record.closed:
            raise Refused(CloseCode.NO_ROOM, "this consultation has no media room (yet)")
        assert self.registry is not None
        if assignment.replica_id != self.registry.replica_id:
            raise Refused(CloseCode.WRONG_REPLICA, f"the room is hosted at {assignment.url}")
        return self.hosted.open(consultation_id)

    # -- following consultations --------------------------------------------------------

    async def _follow_consultation(self, event: IntegrationEvent, tracking: Tracking) -> None:
        assert self.registry is not None
        if isinstance(event, rooms_events.ConsultationOpened):
            consultation_id = event.consultation_id
            replica = ""
            if await asyncio.to_thread(self.media.room, consultation_id) is None:
                replica = (await self.registry.assign(str(consultation_id))).replica_id
            await asyncio.to_thread(
                self.media.open_room, consultation_id, replica, event.correlation_id, tracking
            )
        elif isinstance(event, rooms_events.ConsultationEnded):
            await self._close(
                event.consultation_id, CONSULTATION_ENDED, event.correlation_id, tracking
            )

    async def _close(
        self,
        consultation_id: UUID,
        reason: str,
        correlation_id: str,
        tracking: Tracking | None = None,
    ) -> None:
        assert self.registry is not None
        await asyncio.to_thread(
            self.media.close_room, consultation_id, reason, correlation_id, tracking
        )
        await self.registry.release(str(consultation_id))
        await self.hosted.close(consultation_id, reason)

    async def _consultation_ended_live(self, event: IntegrationEvent) -> None:
        if isinstance(event, rooms_events.ConsultationEnded):
            await self.hosted.close(event.consultation_id, CONSULTATION_ENDED)

    async def _room_closed_live(self, event: IntegrationEvent) -> None:
        # Closed where it was: a room moved here from a lost replica stays open.
        assert self.registry is not None
        if (
            isinstance(event, media_events.MediaRoomClosed)
            and event.replica_id == self.registry.replica_id
        ):
            await self.hosted.close(event.consultation_id, event.reason)

    async def _room_lost(self, assignment: Assignment) -> None:
        """Another replica stopped beating: its rooms open again on a live one, where the
        participants reconnect (the consultation goes on)."""
        await self._move(assignment, REPLICA_LOST)

    async def _move(self, assignment: Assignment, reason: str) -> None:
        """Assign the room to another live replica and record the move."""
        assert self.registry is not None
        consultation_id = UUID(assignment.consultation_id)
        correlation_id = new_correlation_id()
        stopping = self.registry.replica_id if reason == REPLICA_STOPPED else None
        try:
            moved = await self.registry.reassign(assignment, exclude=stopping)
        except NoLiveReplica:
            # The last replica stops: the room stays assigned to it, for this replica when
            # it comes back (or, as a lost one's, for the next to start). Its participants
            # are told to connect again.
            await self.hosted.close(consultation_id, REASON_MOVED)
            return
        await asyncio.to_thread(
            self.media.change_room,
            consultation_id,
            lambda room: room.move(moved.replica_id, reason, correlation_id),
        )
        if stopping:  # our own room: its participants connect again, there
            await self.hosted.close(consultation_id, REASON_MOVED)
        # (A survivor may itself be the new host, already serving the room: left open.)
        log.info("media_room_moved", consultation=str(consultation_id), reason=reason,
                 replica=moved.replica_id)

    async def _room_released(self, consultation_id: str) -> None:
        """Our assignment was deleted (by whoever closed the room): disconnect everyone."""
        record = await asyncio.to_thread(self.media.room, UUID(consultation_id))
        reason = (record.close_reason if record else None) or "room closed"
        await self.hosted.close(UUID(consultation_id), reason)

    async def _give_up_rooms(self) -> None:
        assert self.registry is not None
        for consultation_id in self.registry.rooms_of(self.registry.replica_id):
            try:
                await self._move(self.registry.assignments[consultation_id], REPLICA_STOPPED)
            except Exception:
                log.exception("media_room_not_released", consultation=consultation_id)


def replica_url(settings: Settings) -> str:
    """Where browsers reach this replica's signalling socket (ws:// or wss:// base)."""
    if settings.media_replica_url:
        return settings.media_replica_url.rstrip("/")
    if settings.public_url:
        base = settings.public_url.rstrip("/")
        return "ws" + base.removeprefix("http") if base.startswith("http") else base
    return f"ws://{settings.host}:{settings.port}"
