"""Dead peers: a participant whose media path dies while its signalling goes on is
told, may replace its peer connection, and is dropped after a bound; a peer
connection aiortc closes on its own ends the participant like a failed one."""

from collections.abc import AsyncIterator

import pytest

from services.media.sfu import (
    Disconnected,
    ForwardingRoom,
    MediaStalled,
    ParticipantLeft,
    ParticipantStateChanged,
    RoomEvent,
    TrackSource,
)
from services.media.sfu.events import REASON_CONNECTION_FAILED, REASON_MEDIA_LOST
from services.media.sfu.liveness import LivenessBounds, MediaClock, Verdict
from tests.media.peers import (
    BLUE,
    GREEN,
    RED,
    RoomClient,
    SolidColourVideoTrack,
    UdpBlock,
    eventually,
)

QUICK = LivenessBounds(check_interval=0.25, stall_after=1.0, drop_after=3.0, connect_within=5.0)


def test_a_silent_participant_stalls_then_is_dropped() -> None:
    clock = MediaClock(started=0.0, bounds=QUICK)
    assert clock.assess(0.5, 10, connected=True, expecting=True) is Verdict.UNCHANGED
    assert clock.assess(1.0, 20, connected=True, expecting=True) is Verdict.UNCHANGED
    assert clock.assess(2.0, 20, connected=True, expecting=True) is Verdict.STALLED
    assert clock.assess(2.5, 20, connected=True, expecting=True) is Verdict.UNCHANGED
    assert clock.assess(2.75, 25, connected=True, expecting=True) is Verdict.RESUMED
    assert clock.assess(5.0, 25, connected=True, expecting=True) is Verdict.STALLED
    assert clock.assess(5.75, 25, connected=True, expecting=True) is Verdict.DROP_SILENT


def test_silence_counts_only_while_media_is_expected() -> None:
    clock = MediaClock(started=0.0, bounds=QUICK)
    for second in range(10):
        assert clock.assess(second, 3, connected=True, expecting=False) is Verdict.UNCHANGED
    assert clock.assess(9.5, 3, connected=True, expecting=True) is Verdict.UNCHANGED


def test_a_participant_that_never_connects_is_dropped() -> None:
    clock = MediaClock(started=0.0, bounds=QUICK)
    assert clock.assess(4.0, None, connected=False, expecting=False) is Verdict.UNCHANGED
    assert clock.assess(5.0, None, connected=False, expecting=False) is (
        Verdict.DROP_NEVER_CONNECTED
    )


@pytest.fixture
async def quick_room(room_events: list[RoomEvent]) -> AsyncIterator[ForwardingRoom]:
    room = ForwardingRoom("consultation-2", on_event=room_events.append, liveness=QUICK)
    yield room
    await room.close()


@pytest.fixture
async def three(quick_room: ForwardingRoom) -> AsyncIterator[dict[str, RoomClient]]:
    clients = {}
    for role, colour in (("citizen", RED), ("staff", GREEN), ("interpreter", BLUE)):
        client = RoomClient(quick_room, role, role)
        client.publish(SolidColourVideoTrack(colour), TrackSource.CAMERA)
        await client.join()
        clients[role] = client
    for client in clients.values():
        for other in clients:
            if other != client.participant_id:
                await eventually(lambda c=client, o=other: sees(c, o))
    yield clients
    await quick_room.close()
    for client in clients.values():
        await client.close()


def sees(client: RoomClient, publisher: str) -> bool:
    track = client.live_track(publisher, TrackSource.CAMERA)
    return track is not None and track.colour is not None


def frames_from(client: RoomClient, publisher: str) -> int:
    track = client.live_track(publisher, TrackSource.CAMERA)
    return track.frames if track is not None else 0


async def test_a_peer_whose_udp_stops_is_told_then_dropped(
    quick_room: ForwardingRoom, three: dict[str, RoomClient], room_events: list[RoomEvent]
) -> None:
    citizen = three["citizen"]
    UdpBlock(citizen.pc).block()

    await eventually(lambda: any(isinstance(m, MediaStalled) for m in citizen.messages))
    assert ParticipantStateChanged(quick_room.room_id, "citizen", "citizen", "stalled") in (
        room_events
    )
    assert await citizen.disconnected == REASON_MEDIA_LOST
    left = ParticipantLeft(quick_room.room_id, "citizen", REASON_MEDIA_LOST)
    await eventually(lambda: left in room_events)
    assert set(quick_room.participants()) == {"staff", "interpreter"}
    await eventually(lambda: three["staff"].live_track("citizen", TrackSource.CAMERA) is None)


async def test_a_stalled_peer_rejoins_with_a_new_peer_connection(
    quick_room: ForwardingRoom, three: dict[str, RoomClient], room_events: list[RoomEvent]
) -> None:
    citizen, staff = three["citizen"], three["staff"]
    UdpBlock(citizen.pc).block()
    await eventually(lambda: any(isinstance(m, MediaStalled) for m in citizen.messages))

    await citizen.rejoin([(SolidColourVideoTrack(RED), TrackSource.CAMERA)])

    await eventually(lambda: quick_room.participant_states().get("citizen") == "connected")
    seen = frames_from(staff, "citizen")
    await eventually(lambda: frames_from(staff, "citizen") > seen + 10)
    await eventually(lambda: sees(citizen, "staff") and frames_from(citizen, "staff") > 10)
    assert not citizen.disconnected.done()
    assert not any(isinstance(e, ParticipantLeft) for e in room_events)
    assert not any(isinstance(m, Disconnected) for m in citizen.messages)


async def test_a_peer_connection_closed_under_the_room_ends_the_participant(
    quick_room: ForwardingRoom, three: dict[str, RoomClient], room_events: list[RoomEvent]
) -> None:
    await quick_room.peer_connections()["interpreter"].close()

    assert await three["interpreter"].disconnected == REASON_CONNECTION_FAILED
    await eventually(lambda: "interpreter" not in quick_room.participants())
    left = ParticipantLeft(quick_room.room_id, "interpreter", REASON_CONNECTION_FAILED)
    await eventually(lambda: left in room_events)
