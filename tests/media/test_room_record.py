"""The media service's record of its rooms follows consultations exactly once, whatever
order their opening and end arrive in (a redelivery, or two replicas sharing the consumer)."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import Tracking

from services.common.errors import RetryLater
from services.common.eventstore import store_env
from services.common.settings import Settings
from services.media.application import MediaRooms

CID = "test-correlation"


def _tracking(sequence: int) -> Tracking:
    return Tracking("BB/media", sequence)


def test_an_end_before_its_opening_waits_for_it_and_closes_the_room(tmp_path: Path) -> None:
    media = MediaRooms(env=store_env(Settings(data_dir=tmp_path), "media"))
    consultation_id = uuid4()
    opened, ended = _tracking(1), _tracking(2)

    with pytest.raises(RetryLater):
        media.close_room(consultation_id, "consultation ended", CID, ended)
    assert not media.was_processed(ended)  # nothing recorded: it comes again

    assert media.open_room(consultation_id, "media-0", CID, opened)
    assert media.close_room(consultation_id, "consultation ended", CID, ended)  # redelivered
    room = media.room(consultation_id)
    assert room is not None and room.closed and room.close_reason == "consultation ended"

    # Delivered once more: nothing changes.
    assert not media.close_room(consultation_id, "consultation ended", CID, ended)
    assert not media.open_room(consultation_id, "media-0", CID, opened)
    topics = [n.topic for n in media.notification_log.select(start=1, limit=10)]
    assert len(topics) == 2, topics  # opened, closed
    media.close()


def test_a_room_closed_without_a_consultation_event_is_not_deferred(tmp_path: Path) -> None:
    """A lost or stopping replica closes rooms on its own (no tracking): an unknown room
    is simply not there."""
    media = MediaRooms(env=store_env(Settings(data_dir=tmp_path), "media"))
    assert not media.close_room(uuid4(), "replica lost", CID)
    media.close()
