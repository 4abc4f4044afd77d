"""A selective forwarding unit on aiortc: rooms that forward encoded media between peers.

A library, independent of the media service around it (no settings, no bus, no store):
``ForwardingRoom`` is driven by a signalling layer and reports what happens in it as
``RoomEvent`` notifications to its ``on_event`` callback (``ParticipantJoined``,
``ParticipantConnected``, ``ParticipantStateChanged``, ``TrackStarted``, ``TrackEnded``,
``ParticipantLeft``, ``RoomClosed``) and to each participant as ``ParticipantMessage``
(``Answer``, ``Offer``, ``MediaStalled``, ``MediaResumed``, ``SendLimits``,
``Disconnected``). The integration events the service publishes are in
services/common/contracts/media.py.

The events and track names import without aiortc; the room and the ICE helpers
import aiortc (and its private hooks) when first used, so that a process whose
aiortc does not fit still imports this package (services/media/availability.py).
"""

from typing import TYPE_CHECKING, Any

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
from .tracks import TrackInfo, TrackSource

if TYPE_CHECKING:
    from .ice import add_loopback_host_candidate, loopback_host_candidates, rtc_configuration
    from .room import ForwardingRoom

_LAZY = {
    "ForwardingRoom": ".room",
    "add_loopback_host_candidate": ".ice",
    "loopback_host_candidates": ".ice",
    "rtc_configuration": ".ice",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


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
