"""The media service's store: the record of every media room, and its outbox."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking

from services.common.contracts import media as contracts
from services.common.errors import RetryLater
from services.common.eventstore import ServiceApplication
from services.common.mapping import ContractMapper
from services.media.domain import MediaRoom

RETRIES = 5


class MediaRooms(ServiceApplication):
    name = "media"

    def room(self, consultation_id: UUID) -> MediaRoom | None:
        try:
            return self.repository.get(MediaRoom.create_id(consultation_id))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    def open_room(
        self, consultation_id: UUID, replica_id: str, correlation_id: str, tracking: Tracking
    ) -> bool:
        """Record the room on its replica, exactly once per upstream event."""
        if self.was_processed(tracking) or self.room(consultation_id) is not None:
            self._track_only(tracking)
            return False
        return self._save_tracked(tracking, MediaRoom(consultation_id, replica_id, correlation_id))

    def close_room(
        self,
        consultation_id: UUID,
        reason: str,
        correlation_id: str,
        tracking: Tracking | None = None,
    ) -> bool:
        """Record that the room is gone; False if it never existed or was closed before.

        For a consultation's end (``tracking``) whose room is not recorded yet:
        ``RetryLater``. Its opening comes first in the stream but may still be on its way
        (a redelivery, or another replica handling it right now); tracked as done here,
        the room opened a moment later would never be closed."""
        for attempt in range(RETRIES):
            if tracking is not None and self.was_processed(tracking):
                return False
            room = self.room(consultation_id)
            if room is None and tracking is not None:
                raise RetryLater("the consultation's media room is not recorded yet")
            if room is None or room.closed:
                self._track_only(tracking)
                return False
            room.close(reason, correlation_id)
            try:
                return self._save_tracked(tracking, room)
            except IntegrityError:
                if attempt == RETRIES - 1:
                    raise
        return False

    def change_room(self, consultation_id: UUID, change: Callable[[MediaRoom], None]) -> None:
        """Apply a command to a room's record; optimistic concurrency, retried."""
        for attempt in range(RETRIES):
            room = self.room(consultation_id)
            if room is None:
                return
            change(room)
            try:
                self.save(room)
                return
            except IntegrityError:
                if attempt == RETRIES - 1:
                    raise

    def _save_tracked(self, tracking: Tracking | None, aggregate: MediaRoom) -> bool:
        if tracking is None:
            self.save(aggregate)
            return True
        processing_event = ProcessingEvent[UUID](tracking=tracking)
        processing_event.collect_events(aggregate)
        try:
            recordings = self._record(processing_event)
        except IntegrityError:
            if self.was_processed(tracking):  # another replica got there first
                return False
            raise
        self._notify(recordings)
        return True

    def _track_only(self, tracking: Tracking | None) -> None:
        if tracking is None or self.was_processed(tracking):
            return
        with contextlib.suppress(IntegrityError):  # recorded by a concurrent replica
            self._record(ProcessingEvent[UUID](tracking=tracking))


# -- mapping stored events to integration events -----------------------------------------


def _consultation(domain_event: Any) -> UUID:
    return UUID(str(domain_event.consultation_id))


# The event classes ``@event`` creates on the aggregate are not known to mypy.
R: Any = MediaRoom

to_contract = ContractMapper(
    {
        R.Opened: lambda e, env: contracts.MediaRoomOpened(
            **env, consultation_id=e.consultation_id, replica_id=e.replica_id
        ),
        # Moved to another replica: for everyone downstream, the room opens again there.
        R.Reopened: lambda e, env: contracts.MediaRoomOpened(
            **env, consultation_id=e.consultation_id, replica_id=e.replica_id
        ),
        R.PeerConnected: lambda e, env: contracts.PeerConnected(
            **env, consultation_id=_consultation(e), participant_id=e.participant_id, role=e.role
        ),
        R.TrackPublished: lambda e, env: contracts.TrackPublished(
            **env,
            consultation_id=_consultation(e),
            participant_id=e.participant_id,
            track_id=e.track_id,
            source=e.source,
        ),
        R.PeerDisconnected: lambda e, env: contracts.PeerDisconnected(
            **env,
            consultation_id=_consultation(e),
            participant_id=e.participant_id,
            reason=e.reason,
        ),
        R.Closed: lambda e, env: contracts.MediaRoomClosed(
            **env, consultation_id=_consultation(e), replica_id=e.replica_id, reason=e.reason
        ),
    },
    internal=[R.TrackUnpublished],  # the room's record only: no contract says it
)
