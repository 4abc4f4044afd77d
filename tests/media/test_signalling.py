"""Signalling over the real WebSocket against the real system (``buergerbuero up``),
with aiortc participants on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from services.common.natsserver import EmbeddedNats
from services.common.tokens import TokenSigner
from services.media.sfu import ForwardingRoom, TrackSource
from services.media.signalling import (
    REASON_REVOKED,
    Admitted,
    CloseCode,
    SignallingSession,
)
from tests.conftest import SystemProcess
from tests.media.peers import (
    BLUE,
    GREEN,
    RED,
    YELLOW,
    SolidColourVideoTrack,
    UdpBlock,
    eventually,
)
from tests.media.socket_client import SocketClient
from tests.media.system_support import (
    EventTap,
    bearer,
    join_over_socket,
    open_consultation,
    where_is_the_room,
)

TONES = {"citizen": 440.0, "staff": 660.0, "interpreter": 880.0}
COLOURS = {"citizen": RED, "staff": GREEN, "interpreter": BLUE}
OTHER_KEY = b"not-the-system-key-but-just-as-long-and-random!!"


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedNats(tmp_path_factory.mktemp("media-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, nats_url: str) -> Iterator[SystemProcess]:
    system = SystemProcess(Path(tmp_path_factory.mktemp("media-data")), nats_url)
    try:
        system.start()
        yield system
    finally:
        system.stop()


@pytest.fixture
async def tap(nats_url: str) -> AsyncIterator[EventTap]:
    events = EventTap()
    await events.start(nats_url)
    yield events
    await events.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[SocketClient]]:
    joined: list[SocketClient] = []
    yield joined
    for client in joined:
        await client.close()


def sees(client: SocketClient, publisher_id: str, colour, source=TrackSource.CAMERA) -> bool:
    track = client.live_track(publisher_id, source)
    return track is not None and track.colour is not None and track.colour.close_to(colour)


def hears(client: SocketClient, publisher_id: str, frequency: float) -> bool:
    track = client.live_track(publisher_id, TrackSource.AUDIO)
    return (
        track is not None
        and track.tone is not None
        and abs(track.tone[0] - frequency) < 60
        and track.tone[1] > 1000
    )


def labels(client: SocketClient) -> set[tuple[str, str, str]]:
    """(participant, role, source) of every track the room announced to the client."""
    found = set()
    for message in client.messages:
        for track in message.get("tracks", {}).values():
            found.add((track["participant_id"], track["role"], track["source"]))
    return found


async def test_three_participants_see_and_hear_each_other(
    system: SystemProcess, tap: EventTap, clients: list[SocketClient]
) -> None:
    consultation = await asyncio.to_thread(open_consultation, system.base)
    by_role = {}
    for role, token in consultation.tokens.items():
        client = await join_over_socket(
            system.base, consultation.id, token, COLOURS[role], TONES[role]
        )
        clients.append(client)
        by_role[role] = client
    assert {c.welcome["role"] for c in clients} == set(TONES)
    ids = {role: client.participant_id for role, client in by_role.items()}

    for role, client in by_role.items():
        for other, other_id in ids.items():
            if other != role:
                await eventually(lambda c=client, o=other, i=other_id: sees(c, i, COLOURS[o]))
                await eventually(lambda c=client, o=other, i=other_id: hears(c, i, TONES[o]))
        others = {(ids[o], o, s) for o in ids if o != role for s in ("camera", "audio")}
        assert others <= labels(client)

    # a screen share appears at the others, labelled, and disappears again
    staff = by_role["staff"]
    screen = staff.publish(SolidColourVideoTrack(YELLOW, 480, 270), TrackSource.SCREEN)
    await staff.renegotiate()
    citizen = by_role["citizen"]
    await eventually(lambda: sees(citizen, ids["staff"], YELLOW, TrackSource.SCREEN))
    assert (ids["staff"], "staff", "screen") in labels(citizen)
    shared = citizen.live_track(ids["staff"], TrackSource.SCREEN)
    screen.direction = "inactive"
    await staff.renegotiate()
    await eventually(shared.ended.is_set)
    assert sees(citizen, ids["staff"], GREEN)

    await eventually(lambda: len(tap.of_type("PeerConnected")) >= 3)
    published = tap.of_type("TrackPublished", consultation_id=consultation.id)
    assert {(e["participant_id"], e["source"]) for e in published} >= {
        (ids["staff"], "screen"),
        (ids["citizen"], "camera"),
        (ids["interpreter"], "audio"),
    }
    for event in tap.events:  # pseudonymous ids only
        assert set(event) <= {
            *ENVELOPE,
            "consultation_id",
            "participant_id",
            "role",
            "track_id",
            "source",
            "reason",
            "replica_id",
        }


ENVELOPE = {
    "event_id",
    "occurred_at",
    "type",
    "version",
    "service",
    "aggregate_id",
    "aggregate_version",
    "position",
    "correlation_id",
}


async def refused_with(signal_url: str, token: str) -> tuple[int, str, list[str]]:
    """Connect, send the token, and read until the server closes: (code, reason, messages)."""
    received = []
    async with websockets.connect(signal_url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": token}))
        try:
            while True:
                received.append(await asyncio.wait_for(socket.recv(), 5))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason, received


async def test_foreign_expired_and_forged_tokens_are_refused_before_any_media(
    system: SystemProcess, tap: EventTap
) -> None:
    room = await asyncio.to_thread(open_consultation, system.base, "anna", False)
    other = await asyncio.to_thread(open_consultation, system.base, "anna", False)
    signal_url = (
        await asyncio.to_thread(where_is_the_room, system.base, room.id, room.tokens["citizen"])
    )["signal_url"]
    genuine = TokenSigner(system.env["BB_SECRET_KEY"].encode())
    claims = {"consultation": room.id, "department": "x", "role": "citizen"}
    expired = genuine.issue("participant", "someone", -5, **claims)
    forged = TokenSigner(OTHER_KEY).issue("participant", "someone", 600, **claims)
    wrong_scope = genuine.issue("ticket", "someone", 600, **claims)

    cases = [
        (other.tokens["citizen"], CloseCode.TOKEN_OTHER_ROOM, "another consultation"),
        (expired, CloseCode.TOKEN_EXPIRED, "expired"),
        (forged, CloseCode.TOKEN_INVALID, "not valid"),
        (wrong_scope, CloseCode.TOKEN_INVALID, "not valid"),
        ("", CloseCode.TOKEN_MISSING, "required"),
    ]
    for token, code, reason in cases:
        closed_code, closed_reason, messages = await refused_with(signal_url, token)
        assert (closed_code, messages) == (code, []), closed_reason
        assert reason in closed_reason
    for token in (other.tokens["citizen"], expired, forged):
        response = httpx.get(
            f"{system.base}/api/v1/media/consultations/{room.id}", headers=bearer(token)
        )
        assert response.status_code in (401, 403)
    await asyncio.sleep(0.5)
    assert tap.of_type("PeerConnected", consultation_id=room.id) == []
    metrics = httpx.get(f"{system.base}/metrics").text
    assert "bb_media_peers" in metrics


async def test_ending_the_consultation_disconnects_everyone(
    system: SystemProcess, tap: EventTap, clients: list[SocketClient]
) -> None:
    consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)
    for role in ("citizen", "staff"):
        clients.append(
            await join_over_socket(
                system.base, consultation.id, consultation.tokens[role], COLOURS[role]
            )
        )
    citizen, staff = clients
    await eventually(lambda: sees(citizen, staff.participant_id, GREEN))

    ended = await asyncio.to_thread(
        consultation.staff.post, f"/consultations/{consultation.id}/end"
    )
    assert ended.status_code == 200, ended.text

    for client in clients:
        code, reason = await asyncio.wait_for(client.closed, 10)
        assert (code, reason) == (CloseCode.ROOM_CLOSED, "consultation ended")
        assert {"type": "bye", "reason": "consultation ended"} in client.messages
        for track in client.received.values():
            await eventually(track.ended.is_set)
    await eventually(
        lambda: tap.of_type("MediaRoomClosed", consultation_id=consultation.id), within=10
    )
    assert tap.of_type("MediaRoomClosed")[-1]["reason"] == "consultation ended"
    await eventually(
        lambda: len(tap.of_type("PeerDisconnected", consultation_id=consultation.id)) == 2
    )
    gone = httpx.get(
        f"{system.base}/api/v1/media/consultations/{consultation.id}",
        headers=bearer(consultation.tokens["citizen"]),
    )
    assert gone.status_code == 410
    late = SocketClient(citizen.signal_url, consultation.tokens["citizen"])
    with pytest.raises(Exception, match="4404"):
        await late.connect()
    await late.close()


def frames(client: SocketClient, publisher_id: str) -> int:
    track = client.live_track(publisher_id, TrackSource.CAMERA)
    return track.frames if track is not None else 0


async def test_a_socket_the_relay_did_not_close_in_time_closes_with_the_real_reason() -> None:
    """The endpoint closes the socket itself when the room's relay has not within 2 s (a
    loaded machine): with why the room closed or why the server dropped the participant,
    never with 1000 "left", which the page takes for its own leaving and stays silent."""
    room = ForwardingRoom("consultation-farewell")
    session = SignallingSession(
        None,  # type: ignore[arg-type]  # farewell() reads no socket
        room,
        Admitted("citizen-1", "citizen"),
        lambda listener: lambda: None,
    )
    assert session.farewell() == (CloseCode.LEFT, "left")

    await room.close("consultation ended")
    assert session.farewell() == (CloseCode.ROOM_CLOSED, "consultation ended")

    session._dropped = REASON_REVOKED  # as drop() notes it
    assert session.farewell() == (CloseCode.TOKEN_REVOKED, REASON_REVOKED)


async def test_a_peer_whose_udp_stops_is_dropped_and_can_join_again(
    system: SystemProcess, tap: EventTap, clients: list[SocketClient]
) -> None:
    consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)
    tokens = consultation.tokens
    citizen = await join_over_socket(system.base, consultation.id, tokens["citizen"], RED)
    clients.append(citizen)
    staff = await join_over_socket(system.base, consultation.id, tokens["staff"], GREEN)
    clients.append(staff)
    await eventually(lambda: sees(staff, citizen.participant_id, RED))
    await eventually(lambda: sees(citizen, staff.participant_id, GREEN))

    UdpBlock(citizen.pc).block()  # its socket stays open

    def others_see_it_leave() -> bool:
        lists = [m["participants"] for m in staff.messages if m["type"] == "participants"]
        return bool(lists) and citizen.participant_id not in {
            p["participant_id"] for p in lists[-1]
        }

    gone = tap.of_type  # PeerDisconnected for the citizen, on the bus
    await eventually(others_see_it_leave, within=10)
    await eventually(
        lambda: gone("PeerDisconnected", participant_id=citizen.participant_id), within=10
    )
    assert gone("PeerDisconnected", participant_id=citizen.participant_id)[0]["reason"] == (
        "media connection lost"
    )
    assert any(m["type"] == "media-stalled" for m in citizen.messages)
    assert await asyncio.wait_for(citizen.closed, 5) == (4002, "media connection lost")
    states = [
        (m["participant_id"], m["state"]) for m in staff.messages if m["type"] == "peer-state"
    ]
    assert (citizen.participant_id, "stalled") in states
    assert (citizen.participant_id, "left") in states

    again = await join_over_socket(
        system.base, consultation.id, consultation.tokens["citizen"], RED
    )
    clients.append(again)
    await eventually(lambda: sees(again, staff.participant_id, GREEN))
    seen = frames(staff, citizen.participant_id)
    await eventually(lambda: sees(staff, citizen.participant_id, RED))
    await eventually(lambda: frames(staff, citizen.participant_id) > seen + 10)


async def test_a_stalled_peer_rejoins_on_the_same_socket(
    system: SystemProcess, tap: EventTap, clients: list[SocketClient]
) -> None:
    consultation = await asyncio.to_thread(open_consultation, system.base, "anna", False)
    tokens = consultation.tokens
    citizen = await join_over_socket(system.base, consultation.id, tokens["citizen"], RED)
    clients.append(citizen)
    staff = await join_over_socket(system.base, consultation.id, tokens["staff"], GREEN)
    clients.append(staff)
    await eventually(lambda: sees(staff, citizen.participant_id, RED))
    await eventually(lambda: sees(citizen, staff.participant_id, GREEN))

    # aiortc cannot restart ICE: an offer with new credentials is refused, nothing changes
    sdp = citizen.pc.localDescription.sdp
    ufrag = next(line for line in sdp.splitlines() if line.startswith("a=ice-ufrag:"))
    await citizen.send({"type": "offer", "sdp": sdp.replace(ufrag, "a=ice-ufrag:restart1")})
    await eventually(
        lambda: {"type": "error", "detail": "ice-restart-unsupported"} in citizen.messages
    )

    UdpBlock(citizen.pc).block()
    await eventually(lambda: any(m["type"] == "media-stalled" for m in citizen.messages))
    await citizen.rejoin([(SolidColourVideoTrack(RED), TrackSource.CAMERA)])

    seen = frames(staff, citizen.participant_id)
    await eventually(lambda: frames(staff, citizen.participant_id) > seen + 10)
    await eventually(lambda: frames(citizen, staff.participant_id) > 10)
    states = [
        (m["participant_id"], m["state"]) for m in staff.messages if m["type"] == "peer-state"
    ]
    assert (citizen.participant_id, "reconnecting") in states
    assert states[-1] == (citizen.participant_id, "connected")
    assert not citizen.closed.done()
    assert tap.of_type("PeerDisconnected", participant_id=citizen.participant_id) == []


async def test_the_browser_client_is_served_as_a_module(system: SystemProcess) -> None:
    response = httpx.get(f"{system.base}/api/v1/media/client.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "export async function joinConsultation" in response.text
