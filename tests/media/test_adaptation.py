"""Bandwidth adaptation: a publisher is asked to send less only when everyone who
receives its video is constrained, and the limit is lifted when one has room again."""

from collections.abc import AsyncIterator

import pytest
from aiortc import rtp

from services.media.sfu import ForwardingRoom, SendLimits, TrackSource
from services.media.sfu.adaptation import LIFTED, Feedback, Limits, TrackAdaptation
from services.media.sfu.aiortc_internals import sender_ssrc
from services.media.sfu.forwarding import ForwardedTrack
from tests.media.peers import BLUE, GREEN, RED, RoomClient, SolidColourVideoTrack, eventually


def remb(bitrate: int, ssrcs: list[int]) -> rtp.RtcpPsfbPacket:
    return rtp.RtcpPsfbPacket(
        fmt=rtp.RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=rtp.pack_remb_fci(bitrate, ssrcs)
    )


def receiver_report(ssrc: int, fraction_lost: int) -> rtp.RtcpRrPacket:
    report = rtp.RtcpReceiverInfo(
        ssrc=ssrc,
        fraction_lost=fraction_lost,
        packets_lost=0,
        highest_sequence=0,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    return rtp.RtcpRrPacket(ssrc=1, reports=[report])


def test_feedback_reads_remb_shares_and_the_loss_of_its_own_stream() -> None:
    feedback = Feedback()
    feedback.observe(remb(600_000, [7, 8]), ssrc=7)
    feedback.observe(receiver_report(9, 128), ssrc=7)
    assert (feedback.estimate, feedback.loss) == (300_000, 0.0)
    feedback.observe(receiver_report(7, 64), ssrc=7)
    assert feedback.loss == 0.25


def test_one_subscriber_with_room_keeps_the_publisher_at_full_rate() -> None:
    adaptation = TrackAdaptation()
    decision = adaptation.decide(1_000_000, [Feedback(200_000), Feedback(2_000_000)])
    assert decision is None


def test_when_everyone_is_constrained_the_publisher_sends_less_then_more_again() -> None:
    adaptation = TrackAdaptation()
    constrained = [Feedback(300_000), Feedback(500_000)]
    assert adaptation.decide(1_000_000, constrained) == Limits(300_000, 15.0, None)
    assert adaptation.decide(300_000, constrained) is None  # no flapping at the limit
    lossy = [Feedback(None, 0.2), Feedback(180_000)]
    assert adaptation.decide(300_000, lossy) == Limits(180_000, 15.0, 2.0)
    recovering = [Feedback(260_000), Feedback(400_000)]
    assert adaptation.decide(180_000, recovering) == Limits(260_000, 15.0, None)
    recovered = [Feedback(870_000), Feedback(900_000)]
    assert adaptation.decide(260_000, recovered) == LIFTED
    assert adaptation.decide(1_000_000, [Feedback(900_000)]) is None


def test_one_subscriber_with_room_at_the_full_rate_lifts_the_limit() -> None:
    adaptation = TrackAdaptation()
    assert adaptation.decide(1_000_000, [Feedback(300_000), Feedback(300_000)]) is not None
    assert adaptation.decide(300_000, [Feedback(300_000), Feedback(950_000)]) == LIFTED


def test_nobody_receiving_lifts_the_limit() -> None:
    adaptation = TrackAdaptation()
    assert adaptation.decide(1_000_000, [Feedback(50_000)]) == Limits(100_000, 15.0, 2.0)
    assert adaptation.decide(100_000, []) == LIFTED


@pytest.fixture
async def three(room: ForwardingRoom) -> AsyncIterator[dict[str, RoomClient]]:
    clients = {}
    for role, colour in (("citizen", RED), ("staff", GREEN), ("interpreter", BLUE)):
        client = RoomClient(room, role, role)
        client.publish(SolidColourVideoTrack(colour), TrackSource.CAMERA)
        await client.join()
        clients[role] = client
    for client in clients.values():
        for other in clients:
            if other != client.participant_id:
                await eventually(
                    lambda c=client, o=other: c.live_track(o, TrackSource.CAMERA) is not None
                )
    yield clients
    await room.close()
    for client in clients.values():
        await client.close()


async def tell_room_estimate(room: ForwardingRoom, subscriber: str, bitrate: int) -> None:
    """As if the subscriber's browser sent a REMB for the citizen's video."""
    for transceiver in room.peer_connections()[subscriber].getTransceivers():
        sender = transceiver.sender
        track = sender.track
        citizen_video = track is not None and track.id.startswith("camera.")
        if isinstance(track, ForwardedTrack) and citizen_video and track.id.endswith(".citizen"):
            await sender._handle_rtcp_packet(remb(bitrate, [sender_ssrc(sender)]))


async def check_with_estimates(
    room: ForwardingRoom, staff: RoomClient, estimates: dict[str, int]
) -> None:
    """Once the citizen sent a few more frames: the subscribers' REMBs for its video,
    then the check the room's task makes every 2 s (nothing runs in between, so the
    aiortc clients' own REMBs cannot overwrite these)."""
    track = staff.live_track("citizen", TrackSource.CAMERA)
    assert track is not None
    frames = track.frames
    await eventually(lambda: track.frames >= frames + 5)
    for subscriber, bitrate in estimates.items():
        await tell_room_estimate(room, subscriber, bitrate)
    room._upkeep.bandwidth.check()


def limits_sent(client: RoomClient) -> list[SendLimits]:
    return [m for m in client.messages if isinstance(m, SendLimits)]


async def test_the_room_asks_a_publisher_whose_every_subscriber_is_constrained(
    room: ForwardingRoom, three: dict[str, RoomClient]
) -> None:
    citizen = three["citizen"]
    await check_with_estimates(room, three["staff"], {"staff": 1_000, "interpreter": 50_000_000})
    await check_with_estimates(room, three["staff"], {"staff": 1_000, "interpreter": 50_000_000})
    assert limits_sent(citizen) == []

    await check_with_estimates(room, three["staff"], {"staff": 1_000, "interpreter": 2_000})
    await eventually(lambda: len(limits_sent(citizen)) == 1)
    [limits] = limits_sent(citizen)
    camera_mid = citizen.pc.getTransceivers()[0].mid
    assert limits == SendLimits(camera_mid, limits.track_id, 100_000, 15.0, 2.0)
    assert limits.track_id.startswith("camera.") and limits.track_id.endswith(".citizen")

    await check_with_estimates(room, three["staff"], {"staff": 1_000, "interpreter": 50_000_000})
    await eventually(lambda: len(limits_sent(citizen)) == 2)
    assert limits_sent(citizen)[-1] == SendLimits(camera_mid, limits.track_id, None, None, None)
