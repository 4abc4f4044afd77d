"""Events published by the media service (the audio/video rooms of consultations).

Only pseudonymous ids: the consultation, the participant id from the rooms
service's participant token, the media replica. Never names or addresses.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from services.common.contracts.base import IntegrationEvent


class _MediaEvent(IntegrationEvent):
    SERVICE = "media"


class MediaRoomOpened(_MediaEvent):
    consultation_id: UUID
    replica_id: str


class PeerConnected(_MediaEvent):
    consultation_id: UUID
    participant_id: str
    role: str


class TrackPublished(_MediaEvent):
    consultation_id: UUID
    participant_id: str
    track_id: str
    source: Literal["audio", "camera", "screen"]


class PeerDisconnected(_MediaEvent):
    consultation_id: UUID
    participant_id: str
    reason: str


class MediaRoomClosed(_MediaEvent):
    consultation_id: UUID
    replica_id: str
    # "consultation ended" or "replica lost"
    reason: str
