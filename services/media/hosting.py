"""The live media rooms of this replica, and the record of what happens in them.

``HostedRooms`` keeps one ``sfu.MediaRoom`` per consultation hosted here,
created at the first join; every room event goes to the listeners of that
room (signalling sessions) and to the ``RoomRecorder``, which writes the
events that matter into the media store, in order, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

from services.common.logging import get_logger, new_correlation_id
from services.media.application import MediaRooms
from services.media.domain import MediaRoom as RoomRecord
from services.media.sfu.events import (
    ParticipantConnected,
    ParticipantLeft,
    RoomEvent,
    TrackEnded,
    TrackStarted,
)

if TYPE_CHECKING:
    from aiortc import RTCConfiguration

    from services.media.sfu import ForwardingRoom

log = get_logger(__name__)

RoomListener = Callable[[RoomEvent], None]


class RoomRecorder:
    """Writes room events into the store, one at a time, in the order they happened."""

    def __init__(self, app: MediaRooms) -> None:
        self.app = app
        self._queue: asyncio.Queue[tuple[UUID, RoomEvent]] = asyncio.Queue()

    def record(self, consultation_id: UUID, event: RoomEvent) -> None:
        if isinstance(event, ParticipantConnected | TrackStarted | TrackEnded | ParticipantLeft):
            self._queue.put_nowait((consultation_id, event))

    async def drain(self, within: float) -> None:
        """Wait (at most ``within`` seconds) until everything recorded so far is in the
        store."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)

    async def run(self) -> None:
        """The writer: one of the service's tasks, from start to stop."""
        while True:
            consultation_id, event = await self._queue.get()
            try:
                await asyncio.to_thread(self._write, consultation_id, event)
            except Exception:
                log.exception("media_event_not_recorded", room_event=type(event).__name__)
            finally:
                self._queue.task_done()

    def _write(self, consultation_id: UUID, event: RoomEvent) -> None:
        correlation_id = new_correlation_id()

        def change(room: RoomRecord) -> None:
            if isinstance(event, ParticipantConnected):
                room.connect_peer(event.participant_id, event.role, correlation_id)
            elif isinstance(event, TrackStarted):
                info = event.track
                room.publish_track(
                    info.publisher_id, info.track_id, str(info.source), correlation_id
                )
            elif isinstance(event, TrackEnded):
                room.unpublish_track(event.track.track_id, correlation_id)
            elif isinstance(event, ParticipantLeft):
                room.disconnect_peer(event.participant_id, event.reason, correlation_id)

        self.app.change_room(consultation_id, change)


class HostedRooms:
    def __init__(
        self,
        configuration: Callable[[], RTCConfiguration],
        recorder: RoomRecorder,
    ) -> None:
        self._configuration = configuration
        self._recorder = recorder
        self.rooms: dict[UUID, ForwardingRoom] = {}
        self._listeners: dict[UUID, set[RoomListener]] = {}

    def open(self, consultation_id: UUID) -> ForwardingRoom:
        from services.media.sfu.room import ForwardingRoom  # only once aiortc checked out

        room = self.rooms.get(consultation_id)
        if room is None or room.closed:
            room = ForwardingRoom(
                str(consultation_id),
                configuration=self._configuration(),
                on_event=lambda event: self._on_event(consultation_id, event),
            )
            self.rooms[consultation_id] = room
        return room

    def listen(self, consultation_id: UUID, listener: RoomListener) -> Callable[[], None]:
        listeners = self._listeners.setdefault(consultation_id, set())
        listeners.add(listener)
        return lambda: listeners.discard(listener)

    async def close(self, consultation_id: UUID, reason: str) -> bool:
        room = self.rooms.pop(consultation_id, None)
        if room is None:
            return False
        await room.close(reason)
        self._listeners.pop(consultation_id, None)
        return True

    async def close_all(self, reason: str) -> None:
        for consultation_id in list(self.rooms):
            await self.close(consultation_id, reason)

    def load(self) -> tuple[int, int]:
        """(rooms, peers) hosted here."""
        rooms = [r for r in self.rooms.values() if not r.closed]
        return len(rooms), sum(len(r.participants()) for r in rooms)

    def _on_event(self, consultation_id: UUID, event: RoomEvent) -> None:
        self._recorder.record(consultation_id, event)
        for listener in list(self._listeners.get(consultation_id, ())):
            try:
                listener(event)
            except Exception:
                log.exception("media_room_listener_failed")
