"""A consultation room with real aiortc peers on loopback."""

import asyncio
import time

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.codecs import vpx

from services.media.sfu import (
    Answer,
    ForwardingRoom,
    NegotiationCollision,
    NoOfferPending,
    Offer,
    ParticipantAlreadyJoined,
    ParticipantLeft,
    RoomClosed,
    RoomClosedError,
    TrackEnded,
    TrackSource,
    rtc_configuration,
)
from services.media.sfu.jitter import ForwardingJitterBuffer
from tests.media.peers import (
    BLUE,
    GREEN,
    RED,
    YELLOW,
    RoomClient,
    SolidColourVideoTrack,
    Yuv,
    eventually,
)

PARTICIPANTS = {
    # participant id: (role, camera colour, tone in Hz)
    "citizen": ("citizen", RED, 440.0),
    "staff": ("staff", GREEN, 660.0),
    "interpreter": ("interpreter", BLUE, 880.0),
}
TONE_TOLERANCE_HZ = 60


def sees(client: RoomClient, publisher_id: str, colour: Yuv) -> bool:
    camera = client.live_track(publisher_id, TrackSource.CAMERA)
    return camera is not None and camera.colour is not None and camera.colour.close_to(colour)


def hears(client: RoomClient, publisher_id: str, frequency: float) -> bool:
    audio = client.live_track(publisher_id, TrackSource.AUDIO)
    if audio is None or audio.tone is None:
        return False
    heard_frequency, peak = audio.tone
    return abs(heard_frequency - frequency) <= TONE_TOLERANCE_HZ and peak > 1000


def sees_and_hears_everyone_else(client: RoomClient) -> bool:
    return all(
        sees(client, other, colour) and hears(client, other, tone)
        for other, (_role, colour, tone) in PARTICIPANTS.items()
        if other != client.participant_id
    )


async def join_everyone(join_client) -> dict[str, RoomClient]:
    clients = {}
    for participant_id, (role, colour, tone) in PARTICIPANTS.items():
        clients[participant_id] = await join_client(participant_id, role, colour, tone)
    return clients


async def test_three_participants_see_and_hear_each_other(
    room: ForwardingRoom, join_client
) -> None:
    clients = await join_everyone(join_client)

    for client in clients.values():
        await eventually(lambda client=client: sees_and_hears_everyone_else(client))

    for participant_id, client in clients.items():
        labels = {(t.publisher_id, t.source) for t in client.announced.values()}
        others = set(PARTICIPANTS) - {participant_id}
        assert labels == {(o, s) for o in others for s in (TrackSource.AUDIO, TrackSource.CAMERA)}


async def test_the_room_neither_decodes_nor_encodes(
    room: ForwardingRoom, join_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"encode": 0, "decode": 0}
    encode, decode = vpx.Vp8Encoder.encode, vpx.Vp8Decoder.decode

    def counting_encode(self, frame, force_keyframe=False):
        calls["encode"] += 1
        return encode(self, frame, force_keyframe)

    def counting_decode(self, encoded_frame):
        calls["decode"] += 1
        return decode(self, encoded_frame)

    monkeypatch.setattr(vpx.Vp8Encoder, "encode", counting_encode)
    monkeypatch.setattr(vpx.Vp8Decoder, "decode", counting_decode)
    citizen = await join_client("citizen", "citizen", RED, None)
    staff = await join_client("staff", "staff", GREEN, None)
    await eventually(lambda: sees(citizen, "staff", GREEN) and sees(staff, "citizen", RED))
    await asyncio.sleep(1)

    forwarded = room.stats()["frames_forwarded"]
    decoded_by_clients = sum(t.frames for c in (citizen, staff) for t in c.received.values())
    assert forwarded > 30
    # Encoding happens only at the two publishers, decoding only at the two
    # clients; the room in between would double either count.
    assert calls["encode"] <= forwarded + 2 * 10
    assert calls["decode"] <= decoded_by_clients + 2 * 10


async def test_screen_share_appears_and_disappears(
    room: ForwardingRoom, join_client, room_events
) -> None:
    citizen = await join_client("citizen", "citizen", RED, 440.0)
    staff = await join_client("staff", "staff", GREEN, 660.0)
    await eventually(lambda: sees(citizen, "staff", GREEN) and sees(staff, "citizen", RED))

    screen = staff.publish(SolidColourVideoTrack(YELLOW, 480, 270), TrackSource.SCREEN)
    await staff.renegotiate()
    await eventually(lambda: _screen_colour(citizen, "staff") == YELLOW)
    assert sees(citizen, "staff", GREEN), "the camera tile stays"
    shared = citizen.live_track("staff", TrackSource.SCREEN)

    screen.direction = "inactive"
    await staff.renegotiate()
    await eventually(shared.ended.is_set)
    assert citizen.live_track("staff", TrackSource.SCREEN) is None
    assert sees(citizen, "staff", GREEN)
    sources = [(type(e).__name__, e.track.source) for e in room_events if hasattr(e, "track")]
    assert ("TrackStarted", TrackSource.SCREEN) in sources
    assert ("TrackEnded", TrackSource.SCREEN) in sources


def _screen_colour(client: RoomClient, publisher_id: str) -> Yuv | None:
    screen = client.live_track(publisher_id, TrackSource.SCREEN)
    if screen is None or screen.colour is None:
        return None
    return YELLOW if screen.colour.close_to(YELLOW) else screen.colour


async def test_late_joiner_decodes_video_within_a_second(room: ForwardingRoom, join_client) -> None:
    citizen = await join_client("citizen", "citizen", RED, 440.0)
    staff = await join_client("staff", "staff", GREEN, 660.0)
    await eventually(lambda: sees(citizen, "staff", GREEN) and sees(staff, "citizen", RED))
    keyframe_requests = {c.participant_id: _count_keyframe_requests(c) for c in (citizen, staff)}
    await asyncio.sleep(1.5)  # well past the first keyframes
    requests_before = {pid: count[0] for pid, count in keyframe_requests.items()}

    interpreter = await join_client("interpreter", "interpreter", BLUE, 880.0)
    await eventually(
        lambda: sees(interpreter, "citizen", RED) and sees(interpreter, "staff", GREEN)
    )

    for publisher_id in ("citizen", "staff"):
        camera = interpreter.live_track(publisher_id, TrackSource.CAMERA)
        assert camera.first_frame_at - camera.received_at < 1.0
        assert keyframe_requests[publisher_id][0] > requests_before[publisher_id]


def _count_keyframe_requests(client: RoomClient) -> list[int]:
    """Count PLI/FIR reaching the client's camera sender (a test spy on aiortc)."""
    count = [0]
    sender = next(s for s in client.pc.getSenders() if s.kind == "video")
    original = sender._send_keyframe

    def spy() -> None:
        count[0] += 1
        original()

    sender._send_keyframe = spy
    return count


async def test_subscriber_keyframe_request_reaches_the_publisher(
    room: ForwardingRoom, join_client
) -> None:
    citizen = await join_client("citizen", "citizen", RED, None)
    staff = await join_client("staff", "staff", GREEN, None)
    await eventually(lambda: sees(staff, "citizen", RED))
    requests = _count_keyframe_requests(citizen)
    await asyncio.sleep(room_keyframe_interval(room))
    before = requests[0]

    camera = staff.live_track("citizen", TrackSource.CAMERA).track
    receiver = next(r for r in staff.pc.getReceivers() if r.track is camera)
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
    await eventually(lambda: requests[0] > before, within=3)


def room_keyframe_interval(room: ForwardingRoom) -> float:
    return room._keyframe_interval


async def test_leaving_ends_the_tracks_at_the_others(
    room: ForwardingRoom, join_client, room_events
) -> None:
    clients = await join_everyone(join_client)
    for client in clients.values():
        await eventually(lambda client=client: sees_and_hears_everyone_else(client))
    from_interpreter = [
        track
        for client in (clients["citizen"], clients["staff"])
        for track in client.tracks_from("interpreter")
    ]
    assert len(from_interpreter) == 4

    await room.leave("interpreter")

    assert await asyncio.wait_for(clients["interpreter"].disconnected, 5) == "left"
    for track in from_interpreter:
        await eventually(track.ended.is_set)
    assert "interpreter" not in room.participants()
    assert ParticipantLeft(room.room_id, "interpreter", "left") in room_events
    unpublished = [e for e in room_events if isinstance(e, TrackEnded)]
    assert {e.track.publisher_id for e in unpublished} == {"interpreter"}
    await asyncio.sleep(0.3)
    assert sees(clients["citizen"], "staff", GREEN) and sees(clients["staff"], "citizen", RED)


async def test_closing_the_room_disconnects_everyone(
    room: ForwardingRoom, join_client, room_events
) -> None:
    clients = await join_everyone(join_client)
    for client in clients.values():
        await eventually(lambda client=client: sees_and_hears_everyone_else(client))

    await room.close()

    for client in clients.values():
        assert await asyncio.wait_for(client.disconnected, 5) == "room closed"
        for track in client.received.values():
            await eventually(track.ended.is_set)
    assert room.closed and room.participants() == {}
    assert room_events[-1] == RoomClosed(room.room_id)
    late = RoomClient(room, "late", "citizen")
    with pytest.raises(RoomClosedError):
        await late.join()
    await late.close()


async def test_a_participant_leaving_while_the_room_closes_hears_why_it_closed(
    room: ForwardingRoom, join_client, room_events
) -> None:
    """Staff end the consultation while the citizen's socket session ends too (its page
    answered a renegotiation the room no longer takes): the citizen's last word is the
    room's reason, not "left", or its page would not say that the call ended (the cause
    of test_names_chat_dialog_and_screen_preview failing now and then)."""
    citizen = await join_client("citizen", "citizen", RED, 440.0)

    closing = asyncio.create_task(room.close("consultation ended"))
    await asyncio.sleep(0)  # the room is closed; its participants are not dropped yet
    assert room.closed and room.close_reason == "consultation ended"
    await room.leave("citizen")  # what the ending socket session does
    await closing

    assert await asyncio.wait_for(citizen.disconnected, 5) == "consultation ended"
    left = [event for event in room_events if isinstance(event, ParticipantLeft)]
    assert [(event.participant_id, event.reason) for event in left] == [
        ("citizen", "consultation ended")
    ]


async def test_an_unconsumed_track_is_drained(room: ForwardingRoom, join_client) -> None:
    """A publisher alone in the room: nobody subscribes, nothing piles up."""
    citizen = await join_client("citizen", "citizen", RED, 440.0)
    await eventually(lambda: room.stats()["frames_received"] > 60)
    started = time.monotonic()
    while time.monotonic() - started < 1:
        for receiver in room._participants["citizen"].pc.getReceivers():
            assert receiver.track._queue.qsize() < 10
            buffer = receiver._RTCRtpReceiver__jitter_buffer
            assert isinstance(buffer, ForwardingJitterBuffer)
        await asyncio.sleep(0.1)
    assert citizen.received == {}


async def test_signalling_mistakes_are_refused(room: ForwardingRoom, join_client) -> None:
    await join_client("citizen", "citizen", RED, None)
    duplicate = RoomClient(room, "citizen", "citizen")
    with pytest.raises(ParticipantAlreadyJoined):
        await duplicate.join()
    await duplicate.close()
    with pytest.raises(ValueError):
        await room.join("no spaces allowed", "citizen", "v=0")
    with pytest.raises(NoOfferPending):
        await room.accept_answer("citizen", "v=0")
    published = [info.publisher_id for info in room.published_tracks()]
    assert published == ["citizen"]


async def test_an_offer_while_the_rooms_offer_is_unanswered_collides(
    room: ForwardingRoom, join_client
) -> None:
    pc = RTCPeerConnection(rtc_configuration())
    pc.addTransceiver(SolidColourVideoTrack(RED), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await room.join("citizen", "citizen", pc.localDescription.sdp)
    messages = room.messages("citizen")
    answer = await anext(messages)
    assert isinstance(answer, Answer)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
    await eventually(lambda: pc.connectionState == "connected")

    await join_client("staff", "staff", GREEN, 660.0)
    offer = await asyncio.wait_for(anext(messages), 5)
    assert isinstance(offer, Offer)
    assert {(t.publisher_id, t.source) for t in offer.tracks.values()} == {
        ("staff", TrackSource.CAMERA),
        ("staff", TrackSource.AUDIO),
    }
    assert "a=msid:main.staff camera." in offer.sdp

    await pc.setLocalDescription(await pc.createOffer())
    with pytest.raises(NegotiationCollision):
        await room.handle_offer("citizen", pc.localDescription.sdp)
    await pc.close()
