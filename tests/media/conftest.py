"""Real aiortc peers on loopback: host candidates on 127.0.0.1 only, no STUN."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from services.media.sfu import ForwardingRoom, RoomEvent, TrackSource, loopback_host_candidates
from tests.media.peers import RoomClient, SolidColourVideoTrack, ToneAudioTrack, Yuv

JoinClient = Callable[[str, str, Yuv | None, float | None], Awaitable[RoomClient]]


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    with loopback_host_candidates():
        yield


@pytest.fixture
def room_events() -> list[RoomEvent]:
    return []


@pytest.fixture
async def room(room_events: list[RoomEvent]) -> AsyncIterator[ForwardingRoom]:
    media_room = ForwardingRoom("consultation-1", on_event=room_events.append)
    yield media_room
    await media_room.close()


@pytest.fixture
async def join_client(room: ForwardingRoom) -> AsyncIterator[JoinClient]:
    """join_client(participant_id, role, camera colour, tone Hz) -> joined RoomClient."""
    clients: list[RoomClient] = []

    async def join(
        participant_id: str, role: str, colour: Yuv | None = None, tone: float | None = None
    ) -> RoomClient:
        client = RoomClient(room, participant_id, role)
        if colour is not None:
            client.publish(SolidColourVideoTrack(colour), TrackSource.CAMERA)
        if tone is not None:
            client.publish(ToneAudioTrack(tone), TrackSource.AUDIO)
        clients.append(client)
        await client.join()
        return client

    yield join
    await room.close()
    for client in clients:
        await client.close()
