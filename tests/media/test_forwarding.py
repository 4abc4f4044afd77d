"""Fan-out, keyframe gating and keyframe request pacing, without the network."""

import asyncio

import av
import pytest

from services.media.sfu.forwarding import (
    MAX_QUEUED_VIDEO_FRAMES,
    ForwardedTrack,
    KeyframeRequester,
)
from services.media.sfu.tracks import (
    InvalidParticipantId,
    TrackSource,
    check_participant_id,
    make_track_info,
)
from tests.media.peers import parse_track_id


def video_packet(keyframe: bool) -> av.Packet:
    packet = av.Packet(b"\x10\x02\x00" if keyframe else b"\x11\x02\x00")
    packet.is_keyframe = keyframe
    return packet


class CountingRequest:
    def __init__(self) -> None:
        self.sent = 0

    async def __call__(self) -> bool:
        self.sent += 1
        return True


async def test_keyframe_requests_are_merged_and_paced() -> None:
    send = CountingRequest()
    requester = KeyframeRequester(send, min_interval=0.2)

    for _ in range(10):
        requester.request()
    await asyncio.sleep(0.05)
    assert send.sent == 1

    await asyncio.sleep(0.25)  # no keyframe came: ask again, once
    assert send.sent == 2

    requester.keyframe_seen()
    await asyncio.sleep(0.3)
    assert send.sent == 2
    requester.close()


async def test_a_request_within_the_interval_is_sent_when_it_ends() -> None:
    send = CountingRequest()
    requester = KeyframeRequester(send, min_interval=0.2)
    requester.request()
    await asyncio.sleep(0.01)
    requester.keyframe_seen()
    requester.request()
    await asyncio.sleep(0.1)
    assert send.sent == 1
    await asyncio.sleep(0.2)
    assert send.sent == 2
    requester.close()


async def test_a_video_subscriber_starts_at_a_keyframe_and_asks_for_one() -> None:
    requests: list[str] = []
    track = ForwardedTrack("video", "camera.1.staff", lambda: requests.append("key"))
    track.push(video_packet(keyframe=True))  # before the sender pulls: dropped

    pulled = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert requests == ["key"]
    track.push(video_packet(keyframe=False))
    track.push(video_packet(keyframe=True))
    track.push(video_packet(keyframe=False))

    assert (await pulled).is_keyframe
    assert not (await track.recv()).is_keyframe
    assert track.frames_dropped == 1


async def test_a_slow_video_subscriber_is_reset_to_the_next_keyframe() -> None:
    requests: list[str] = []
    track = ForwardedTrack("video", "camera.1.staff", lambda: requests.append("key"))
    pulled = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.push(video_packet(keyframe=True))
    await pulled
    for _ in range(MAX_QUEUED_VIDEO_FRAMES + 5):
        track.push(video_packet(keyframe=False))

    assert requests == ["key", "key"]
    track.push(video_packet(keyframe=True))
    assert (await track.recv()).is_keyframe


async def test_a_stopped_track_ends_its_sender() -> None:
    from aiortc.mediastreams import MediaStreamError

    track = ForwardedTrack("audio", "audio.1.staff", lambda: None)
    pulled = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await pulled


def test_track_ids_name_publisher_and_source() -> None:
    info = make_track_info("staff.7", "staff", TrackSource.SCREEN, 12)
    assert info.stream_id == "screen.staff.7"
    assert info.kind == "video"
    assert parse_track_id(info.track_id) == (TrackSource.SCREEN, "staff.7")
    camera = make_track_info("staff.7", "staff", TrackSource.CAMERA, 3)
    assert camera.stream_id == make_track_info("staff.7", "staff", TrackSource.AUDIO, 4).stream_id


@pytest.mark.parametrize("bad", ["", "has space", "a:b", "x" * 41, "ümlaut"])
def test_participant_ids_must_fit_in_msid(bad: str) -> None:
    with pytest.raises(InvalidParticipantId):
        check_participant_id(bad)
