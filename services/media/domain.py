"""The media room as the store remembers it: where it lives, who connected, what
was published, how it ended. The live forwarding state is in ``sfu.MediaRoom``.

Methods are the commands; events are named in the past tense. Commands that
would repeat what already happened record nothing, so a replayed room event
or a second replica noticing the same loss changes nothing.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

CONSULTATION_ENDED = "consultation ended"
REPLICA_LOST = "replica lost"


class MediaRoom(Aggregate):
    """The media room of one consultation."""

    @staticmethod
    def create_id(consultation_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"/media/rooms/{consultation_id}")

    @event("Opened")
    def __init__(self, consultation_id: UUID, replica_id: str, correlation_id: str) -> None:
        self.consultation_id = consultation_id
        self.replica_id = replica_id
        self.peers: dict[str, str] = {}  # connected participant id -> role
        self.tracks: dict[str, str] = {}  # published track id -> source
        self.closed = False
        self.close_reason: str | None = None

    def connect_peer(self, participant_id: str, role: str, correlation_id: str) -> None:
        if self.closed or participant_id in self.peers:
            return
        self._peer_connected(
            consultation_id=self.consultation_id,
            participant_id=participant_id,
            role=role,
            correlation_id=correlation_id,
        )

    @event("PeerConnected")
    def _peer_connected(
        self, consultation_id: UUID, participant_id: str, role: str, correlation_id: str
    ) -> None:
        self.peers[participant_id] = role

    def publish_track(
        self, participant_id: str, track_id: str, source: str, correlation_id: str
    ) -> None:
        if self.closed or track_id in self.tracks:
            return
        self._track_published(
            consultation_id=self.consultation_id,
            participant_id=participant_id,
            track_id=track_id,
            source=source,
            correlation_id=correlation_id,
        )

    @event("TrackPublished")
    def _track_published(
        self,
        consultation_id: UUID,
        participant_id: str,
        track_id: str,
        source: str,
        correlation_id: str,
    ) -> None:
        self.tracks[track_id] = source

    def unpublish_track(self, track_id: str, correlation_id: str) -> None:
        if track_id in self.tracks:
            self._track_unpublished(
                consultation_id=self.consultation_id,
                track_id=track_id,
                correlation_id=correlation_id,
            )

    @event("TrackUnpublished")
    def _track_unpublished(self, consultation_id: UUID, track_id: str, correlation_id: str) -> None:
        del self.tracks[track_id]

    def disconnect_peer(self, participant_id: str, reason: str, correlation_id: str) -> None:
        """Also after the room closed: the owning replica reports each peer it dropped."""
        if participant_id not in self.peers:
            return
        self._peer_disconnected(
            consultation_id=self.consultation_id,
            participant_id=participant_id,
            reason=reason,
            correlation_id=correlation_id,
        )

    @event("PeerDisconnected")
    def _peer_disconnected(
        self, consultation_id: UUID, participant_id: str, reason: str, correlation_id: str
    ) -> None:
        del self.peers[participant_id]
        self.tracks = {
            track_id: source
            for track_id, source in self.tracks.items()
            if not track_id.endswith(f".{participant_id}")
        }

    def move(self, replica_id: str, reason: str, correlation_id: str) -> None:
        """Its replica is gone (lost, or stopped) while the consultation goes on: the
        peers there are disconnected, the room closes there and opens again on
        ``replica_id``, where the participants reconnect."""
        if self.closed or self.replica_id == replica_id:
            return
        for participant_id in list(self.peers):
            self.disconnect_peer(participant_id, reason, correlation_id)
        self.close(reason, correlation_id)
        self._reopened(
            consultation_id=self.consultation_id,
            replica_id=replica_id,
            correlation_id=correlation_id,
        )

    @event("Reopened")
    def _reopened(self, consultation_id: UUID, replica_id: str, correlation_id: str) -> None:
        self.replica_id = replica_id
        self.tracks = {}
        self.closed = False
        self.close_reason = None

    def close(self, reason: str, correlation_id: str) -> None:
        if not self.closed:
            self._closed(
                consultation_id=self.consultation_id,
                replica_id=self.replica_id,
                reason=reason,
                correlation_id=correlation_id,
            )

    @event("Closed")
    def _closed(
        self, consultation_id: UUID, replica_id: str, reason: str, correlation_id: str
    ) -> None:
        self.closed = True
        self.close_reason = reason
