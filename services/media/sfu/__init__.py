"""A selective forwarding unit on aiortc: rooms that forward encoded media between peers.

A library, independent of the media service around it (no settings, no bus, no store):
``ForwardingRoom`` is driven by a signalling layer and reports what happens in it as
``RoomEvent`` notifications to its ``on_event`` callback (``ParticipantJoined``,
``ParticipantConnected``, ``TrackStarted``, ``TrackEnded``, ``ParticipantLeft``,
``RoomClosed``) and to each participant as ``ParticipantMessage`` (``Answer``,
``Offer``, ``Disconnected``). The integration events the service publishes are in
services/common/contracts/media.py.
"""

from .events import (
    Answer,
    Disconnected,
    IceRestartUnsupported,
    MediaResumed,
    MediaStalled,
    NegotiationCollision,
    NoOfferPending,
    Offer,
    ParticipantAlreadyJoined,
    ParticipantConnected,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMessage,
    ParticipantStateChanged,
    RoomClosed,
    RoomClosedError,
    RoomError,
    RoomEvent,
    SendLimits,
    TrackEnded,
    TrackStarted,
    UnknownParticipant,
)
from .ice import add_loopback_host_candidate, loopback_host_candidates, rtc_configuration
from .room import ForwardingRoom
from .tracks import TrackInfo, TrackSource

__all__ = [
    "Answer",
    "Disconnected",
    "ForwardingRoom",
    "IceRestartUnsupported",
    "MediaResumed",
    "MediaStalled",
    "NegotiationCollision",
    "NoOfferPending",
    "Offer",
    "ParticipantAlreadyJoined",
    "ParticipantConnected",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantMessage",
    "ParticipantStateChanged",
    "RoomClosed",
    "RoomClosedError",
    "RoomError",
    "RoomEvent",
    "SendLimits",
    "TrackEnded",
    "TrackInfo",
    "TrackSource",
    "TrackStarted",
    "UnknownParticipant",
    "add_loopback_host_candidate",
    "loopback_host_candidates",
    "rtc_configuration",
]
