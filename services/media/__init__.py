"""Media service: consultation rooms that forward encoded media between peers."""

from .events import (
    Answer,
    Disconnected,
    MediaRoomClosed,
    MediaRoomClosedError,
    MediaRoomError,
    NegotiationCollision,
    NoOfferPending,
    Offer,
    ParticipantAlreadyJoined,
    ParticipantMessage,
    PeerConnected,
    PeerDisconnected,
    PeerJoined,
    RoomEvent,
    TrackPublished,
    TrackUnpublished,
    UnknownParticipant,
)
from .ice import loopback_host_candidates, rtc_configuration
from .sfu import MediaRoom
from .tracks import TrackInfo, TrackSource, parse_track_id

__all__ = [
    "Answer",
    "Disconnected",
    "MediaRoom",
    "MediaRoomClosed",
    "MediaRoomClosedError",
    "MediaRoomError",
    "NegotiationCollision",
    "NoOfferPending",
    "Offer",
    "ParticipantAlreadyJoined",
    "ParticipantMessage",
    "PeerConnected",
    "PeerDisconnected",
    "PeerJoined",
    "RoomEvent",
    "TrackInfo",
    "TrackPublished",
    "TrackSource",
    "TrackUnpublished",
    "UnknownParticipant",
    "loopback_host_candidates",
    "parse_track_id",
    "rtc_configuration",
]
