"""What a MediaRoom tells the outside world.

Room events go to the ``on_event`` callback (for domain events, metrics, logs).
Participant messages go, in order, to the one participant they concern, through
``MediaRoom.messages(participant_id)``; the signalling layer relays them as they
come.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .tracks import TrackInfo

# Why a participant's connection ended.
REASON_LEFT = "left"
REASON_CONNECTION_FAILED = "connection failed"
REASON_ROOM_CLOSED = "room closed"


class MediaRoomError(Exception):
    pass


class MediaRoomClosedError(MediaRoomError):
    pass


class UnknownParticipant(MediaRoomError):
    pass


class ParticipantAlreadyJoined(MediaRoomError):
    pass


class NegotiationCollision(MediaRoomError):
    """The participant offered while an offer of the room was still unanswered.

    The room is the impolite peer: the participant must roll back its offer,
    answer the room's pending offer, and then offer again.
    """


class NoOfferPending(MediaRoomError):
    """An answer arrived although the room had no offer outstanding."""


# --- events of the room -----------------------------------------------------


@dataclass(frozen=True)
class PeerJoined:
    room_id: str
    participant_id: str
    role: str


@dataclass(frozen=True)
class PeerConnected:
    room_id: str
    participant_id: str
    role: str = ""


@dataclass(frozen=True)
class TrackPublished:
    room_id: str
    track: TrackInfo


@dataclass(frozen=True)
class TrackUnpublished:
    room_id: str
    track: TrackInfo


@dataclass(frozen=True)
class PeerDisconnected:
    room_id: str
    participant_id: str
    reason: str


@dataclass(frozen=True)
class MediaRoomClosed:
    room_id: str


RoomEvent = (
    PeerJoined
    | PeerConnected
    | TrackPublished
    | TrackUnpublished
    | PeerDisconnected
    | MediaRoomClosed
)
RoomEventHandler = Callable[[RoomEvent], None]


# --- messages to one participant ---------------------------------------------


@dataclass(frozen=True)
class Answer:
    """The room's answer to the participant's offer (join or renegotiation)."""

    sdp: str
    tracks: Mapping[str, TrackInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class Offer:
    """The room renegotiates: answer it with ``MediaRoom.accept_answer``.

    ``tracks`` maps the mid of every m-line the room sends on to what it carries.
    """

    sdp: str
    tracks: Mapping[str, TrackInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class Disconnected:
    """The last message: the room dropped the participant's connection."""

    reason: str


ParticipantMessage = Answer | Offer | Disconnected
