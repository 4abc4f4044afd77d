"""What a ForwardingRoom tells the outside world.

Room events go to the ``on_event`` callback (for domain events, metrics, logs).
Participant messages go, in order, to the one participant they concern, through
``ForwardingRoom.messages(participant_id)``; the signalling layer relays them as they
come.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .tracks import TrackInfo

# Why a participant's connection ended.
REASON_LEFT = "left"
REASON_CONNECTION_FAILED = "connection failed"
REASON_ROOM_CLOSED = "room closed"
# Nothing arrived on its peer connection for too long while its socket stayed open.
REASON_MEDIA_LOST = "media connection lost"

# A participant's connection as the others see it (``ParticipantStateChanged``).
STATE_CONNECTING = "connecting"
STATE_CONNECTED = "connected"
STATE_STALLED = "stalled"
STATE_RECONNECTING = "reconnecting"
STATE_LEFT = "left"


class RoomError(Exception):
    pass


class RoomClosedError(RoomError):
    pass


class UnknownParticipant(RoomError):
    pass


class ParticipantAlreadyJoined(RoomError):
    pass


class NegotiationCollision(RoomError):
    """The participant offered while an offer of the room was still unanswered.

    The room is the impolite peer: the participant must roll back its offer,
    answer the room's pending offer, and then offer again.
    """


class IceRestartUnsupported(RoomError):
    """The participant offered new ICE credentials: aiortc cannot restart ICE, the
    participant replaces its peer connection instead (``ForwardingRoom.rejoin``)."""


class NoOfferPending(RoomError):
    """An answer arrived although the room had no offer outstanding."""


# --- events of the room -----------------------------------------------------


@dataclass(frozen=True)
class ParticipantJoined:
    room_id: str
    participant_id: str
    role: str


@dataclass(frozen=True)
class ParticipantConnected:
    room_id: str
    participant_id: str
    role: str = ""


@dataclass(frozen=True)
class TrackStarted:
    room_id: str
    track: TrackInfo


@dataclass(frozen=True)
class TrackEnded:
    room_id: str
    track: TrackInfo


@dataclass(frozen=True)
class ParticipantLeft:
    room_id: str
    participant_id: str
    reason: str


@dataclass(frozen=True)
class ParticipantStateChanged:
    """The state of a participant's connection (``STATE_*``) changed."""

    room_id: str
    participant_id: str
    role: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class RoomClosed:
    room_id: str


RoomEvent = (
    ParticipantJoined
    | ParticipantConnected
    | TrackStarted
    | TrackEnded
    | ParticipantLeft
    | ParticipantStateChanged
    | RoomClosed
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
    """The room renegotiates: answer it with ``ForwardingRoom.accept_answer``.

    ``tracks`` maps the mid of every m-line the room sends on to what it carries.
    """

    sdp: str
    tracks: Mapping[str, TrackInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class Disconnected:
    """The last message: the room dropped the participant's connection."""

    reason: str


@dataclass(frozen=True)
class MediaStalled:
    """Nothing arrived from the participant's peer connection for ``silent_seconds``:
    it should replace its peer connection (``ForwardingRoom.rejoin``) before the room
    drops it, ``drop_after_seconds`` of silence in all."""

    silent_seconds: float
    drop_after_seconds: float


@dataclass(frozen=True)
class MediaResumed:
    """Media arrives again after ``MediaStalled``."""


@dataclass(frozen=True)
class SendLimits:
    """Everyone receiving the participant's track is constrained: it should send less.

    ``mid`` is the participant's own m-line of the track; all limits None lifts them.
    """

    mid: str
    track_id: str
    max_bitrate: int | None
    max_framerate: float | None
    scale_resolution_down_by: float | None


ParticipantMessage = Answer | Offer | Disconnected | MediaStalled | MediaResumed | SendLimits
