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
from services.media.application import MediaRooms, to_contract
from services.media.domain import MediaRoom

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


def test_a_room_whose_replica_is_lost_moves_and_is_recorded_so(tmp_path: Path) -> None:
    """Its peers there are disconnected, it closes there and opens on another replica:
    for the audit a closed room and an opened one, for the participants a room to
    reconnect to. Noticed twice (two surviving replicas), it moves once."""
    media = MediaRooms(env=store_env(Settings(data_dir=tmp_path), "media"))
    consultation_id = uuid4()
    media.open_room(consultation_id, "media-0", CID, _tracking(1))
    media.change_room(consultation_id, lambda room: room.connect_peer("p-1", "citizen", CID))

    for _ in range(2):
        media.change_room(consultation_id, lambda room: room.move("media-1", "replica lost", CID))

    room = media.room(consultation_id)
    assert room is not None and not room.closed
    assert room.replica_id == "media-1" and room.peers == {}
    contracts = [to_contract(media.mapper.to_domain_event(n), n.id)
                 for n in media.notification_log.select(start=1, limit=20)]
    assert [(c.type, getattr(c, "replica_id", None)) for c in contracts if c] == [
        ("MediaRoomOpened", "media-0"),
        ("PeerConnected", None),
        ("PeerDisconnected", None),
        ("MediaRoomClosed", "media-0"),
        ("MediaRoomOpened", "media-1"),
    ]
    assert contracts[2].reason == "replica lost"  # type: ignore[union-attr]

    # The consultation ends: the moved room closes like any other; a late move does nothing.
    assert media.close_room(consultation_id, "consultation ended", CID, _tracking(2))
    media.change_room(consultation_id, lambda room: room.move("media-2", "replica lost", CID))
    room = media.room(consultation_id)
    assert room is not None and room.closed and room.replica_id == "media-1"
    media.close()


def test_every_event_of_the_room_record_is_published_or_declared_internal() -> None:
    """A new event on the aggregate must be mapped to a contract or declared internal
    (a typo in the table is an AttributeError at import, never a silent miss)."""
    assert to_contract.unmapped(MediaRoom) == []
    assert not to_contract.maps(MediaRoom.TrackUnpublished)  # type: ignore[attr-defined]
