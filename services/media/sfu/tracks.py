"""What a forwarded track is, and how its identity is written into ``a=msid``.

A page labels its tiles from the msid of each received track (or from the
``tracks`` map sent with every offer):

* stream id ``main.<participant_id>`` groups a participant's audio and camera,
  ``screen.<participant_id>`` holds a screen share;
* track id ``<source>.<serial>.<participant_id>``, source one of
  ``audio``/``camera``/``screen``; the serial makes a re-started share a new track.
"""

import re
from dataclasses import dataclass
from enum import StrEnum


class TrackSource(StrEnum):
    AUDIO = "audio"
    CAMERA = "camera"
    SCREEN = "screen"

    @property
    def kind(self) -> str:
        return "audio" if self is TrackSource.AUDIO else "video"

    @property
    def stream_label(self) -> str:
        return "screen" if self is TrackSource.SCREEN else "main"


# msid ids are RFC 4566 tokens of at most 64 characters; leave room for the prefix.
PARTICIPANT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]{1,40}")


class InvalidParticipantId(ValueError):
    pass


def check_participant_id(participant_id: str) -> None:
    if not PARTICIPANT_ID.fullmatch(participant_id):
        raise InvalidParticipantId(
            f"participant id {participant_id!r} must be 1-40 characters of an SDP token"
        )


@dataclass(frozen=True)
class TrackInfo:
    """A published track as every subscriber sees it."""

    track_id: str
    stream_id: str
    publisher_id: str
    publisher_role: str
    source: TrackSource

    @property
    def kind(self) -> str:
        return self.source.kind

    def as_dict(self) -> dict[str, str]:
        return {
            "track_id": self.track_id,
            "stream_id": self.stream_id,
            "participant_id": self.publisher_id,
            "role": self.publisher_role,
            "source": str(self.source),
            "kind": self.kind,
        }


def make_track_info(
    publisher_id: str, publisher_role: str, source: TrackSource, serial: int
) -> TrackInfo:
    return TrackInfo(
        track_id=f"{source}.{serial}.{publisher_id}",
        stream_id=f"{source.stream_label}.{publisher_id}",
        publisher_id=publisher_id,
        publisher_role=publisher_role,
        source=source,
    )
