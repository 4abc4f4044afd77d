"""Two media replicas share the registry: rooms are spread, and losing one touches
only its rooms: their participants' sockets drop, the survivor takes the rooms over,
and the participants reconnect there (the consultation goes on)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.natsserver import EmbeddedNats
from services.media.sfu import TrackSource
from services.media.signalling import CloseCode
from tests.conftest import SystemProcess
from tests.media.peers import GREEN, RED, eventually
from tests.media.socket_client import SocketClient
from tests.media.system_support import (
    Consultation,
    EventTap,
    join_over_socket,
    open_consultation,
    where_is_the_room,
)

TTL = "3"  # seconds without a heartbeat before a replica counts as lost


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(tmp_path_factory.mktemp("replicas-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, nats_url: str
) -> Iterator[tuple[SystemProcess, SystemProcess]]:
    """``up`` (hosting one media replica) and a second ``serve media`` on the same store."""
    data = Path(tmp_path_factory.mktemp("replicas-data"))
    env = {"BB_MEDIA_REGISTRY_TTL_SECONDS": TTL}
    system = SystemProcess(data, nats_url, env)
    extra = SystemProcess(data, nats_url, env, args=["serve", "media"])
    try:
        system.start()
        extra.start()
        yield system, extra
    finally:
        extra.stop()
        system.stop()


@pytest.fixture
async def tap(nats_url: str) -> AsyncIterator[EventTap]:
    events = EventTap()
    await events.start(nats_url)
    yield events
    await events.stop()


async def test_rooms_are_spread_and_a_lost_replicas_rooms_move_to_the_survivor(
    replicas: tuple[SystemProcess, SystemProcess], tap: EventTap
) -> None:
    system, extra = replicas
    rooms: dict[int, Consultation] = {}  # port of the hosting replica -> a room there
    for _ in range(6):
        consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)
        where = await asyncio.to_thread(
            where_is_the_room, system.base, consultation.id, consultation.tokens["citizen"]
        )
        rooms.setdefault(int(where["signal_url"].split(":")[2].split("/")[0]), consultation)
        if len(rooms) == 2:
            break
    assert set(rooms) == {system.port, extra.port}, "both replicas host a room"
    staying, lost = rooms[system.port], rooms[extra.port]

    # the room's replica is the only door: the other one sends the participant there
    wrong_door = SocketClient(
        f"ws://127.0.0.1:{system.port}/api/v1/media/consultations/{lost.id}/signal",
        lost.tokens["citizen"],
    )
    with pytest.raises(Exception, match=str(int(CloseCode.WRONG_REPLICA))):
        await wrong_door.connect()
    await wrong_door.close()

    clients: dict[str, list[SocketClient]] = {}
    try:
        for name, consultation in (("staying", staying), ("lost", lost)):
            citizen = await join_over_socket(
                system.base, consultation.id, consultation.tokens["citizen"], RED
            )
            staff = await join_over_socket(
                system.base, consultation.id, consultation.tokens["staff"], GREEN
            )
            clients[name] = [citizen, staff]
            await eventually(lambda c=citizen, s=staff: _sees(c, s.participant_id), within=15)

        extra.kill()

        for client in clients["lost"]:
            code, _reason = await asyncio.wait_for(client.closed, 10)
            assert code == 1006  # the socket dropped: the page says "connection lost"
        def moved() -> bool:
            return len(tap.of_type("MediaRoomOpened", consultation_id=lost.id)) == 2

        await eventually(moved, within=20)
        closed = tap.of_type("MediaRoomClosed", consultation_id=lost.id)[-1]
        assert closed["reason"] == "replica lost"
        reopened = tap.of_type("MediaRoomOpened", consultation_id=lost.id)[-1]
        assert reopened["replica_id"] != closed["replica_id"]
        where = await asyncio.to_thread(
            where_is_the_room, system.base, lost.id, lost.tokens["citizen"]
        )
        assert f":{system.port}/" in where["signal_url"]

        # The participants reconnect on the survivor and see each other again.
        citizen = await join_over_socket(system.base, lost.id, lost.tokens["citizen"], RED)
        staff = await join_over_socket(system.base, lost.id, lost.tokens["staff"], GREEN)
        clients["moved"] = [citizen, staff]
        await eventually(lambda: _sees(citizen, staff.participant_id), within=15)
        await eventually(lambda: _sees(staff, citizen.participant_id), within=15)

        # the other room goes on as if nothing happened
        citizen, staff = clients["staying"]
        camera = citizen.live_track(staff.participant_id, _camera())
        frames = camera.frames
        await asyncio.sleep(1)
        assert camera.frames > frames + 15
        assert not citizen.closed.done() and not staff.closed.done()
        assert tap.of_type("MediaRoomClosed", consultation_id=staying.id) == []
    finally:
        for group in clients.values():
            for client in group:
                await client.close()


def _camera() -> TrackSource:
    return TrackSource.CAMERA


def _sees(client: SocketClient, publisher_id: str) -> bool:
    camera = client.live_track(publisher_id, _camera())
    return camera is not None and camera.colour is not None


async def test_a_stopping_replica_moves_its_rooms_and_says_connect_again(
    tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    """A rolling update stops a replica whose room is still in use: the room moves to the
    other replica, the participant's socket closes with 4003, and they connect again."""
    events = EventTap()
    await events.start(nats_server.url)
    env = {"BB_MEDIA_REGISTRY_TTL_SECONDS": TTL}
    system = SystemProcess(tmp_path / "data", nats_server.url, env)
    stopping = SystemProcess(tmp_path / "data", nats_server.url, env, args=["serve", "media"])
    clients: list[SocketClient] = []
    try:
        system.start()
        stopping.start()
        for _ in range(8):
            consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)
            where = await asyncio.to_thread(
                where_is_the_room, system.base, consultation.id, consultation.tokens["citizen"]
            )
            if f":{stopping.port}/" in where["signal_url"]:
                break
        else:
            pytest.fail("no room was placed on the second replica")
        citizen = await join_over_socket(
            system.base, consultation.id, consultation.tokens["citizen"], RED
        )
        clients.append(citizen)

        await asyncio.to_thread(stopping.stop)  # SIGTERM: a graceful stop

        # uvicorn closes open sockets first (1012 "service restart"), then the service
        # moves its rooms (a socket still open then gets 4003). Either way the page
        # offers to connect again, never "the consultation has ended" (4000).
        code, reason = await asyncio.wait_for(citizen.closed, 10)
        assert code in (1012, int(CloseCode.MOVED)), (code, reason)

        def moved() -> list[dict[str, Any]]:
            return events.of_type("MediaRoomOpened", consultation_id=consultation.id)

        await eventually(lambda: len(moved()) == 2, within=15)
        assert moved()[1]["replica_id"] != moved()[0]["replica_id"]
        closed = events.of_type("MediaRoomClosed", consultation_id=consultation.id)
        assert [c["reason"] for c in closed] == ["media server stopped"]
        where = await asyncio.to_thread(
            where_is_the_room, system.base, consultation.id, consultation.tokens["citizen"]
        )
        assert f":{system.port}/" in where["signal_url"]
        again = await join_over_socket(
            system.base, consultation.id, consultation.tokens["citizen"], RED
        )
        clients.append(again)
        staff = await join_over_socket(
            system.base, consultation.id, consultation.tokens["staff"], GREEN
        )
        clients.append(staff)
        await eventually(lambda: _sees(again, staff.participant_id), within=15)
    finally:
        for client in clients:
            await client.close()
        stopping.stop()
        system.stop()
        await events.stop()
