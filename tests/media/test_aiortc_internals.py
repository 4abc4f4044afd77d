"""The aiortc internals the forwarding unit relies on. If one of these fails after
an aiortc upgrade, read services/media/aiortc_internals.py before pinning anew."""

import asyncio
import fractions

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

from services.media.sfu import aiortc_internals
from services.media.sfu.aiortc_internals import (
    UnsupportedAiortc,
    check_aiortc_internals,
    install_encoded_frame_passthrough,
    is_vp8_keyframe,
    receive_encoded_frames,
    redirect_keyframe_requests,
    send_picture_loss_indication,
    set_sender_stream_id,
    set_track_id,
)
from services.media.sfu.ice import rtc_configuration
from tests.media.peers import GREEN, RED, SolidColourVideoTrack, eventually


def test_the_installed_aiortc_is_the_pinned_one() -> None:
    assert aiortc_internals.installed_aiortc_version() == "1.16.0"
    check_aiortc_internals()


def test_another_aiortc_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_internals, "installed_aiortc_version", lambda: "1.17.0")
    with pytest.raises(UnsupportedAiortc, match=r"1\.17\.0"):
        check_aiortc_internals()


def test_a_changed_decoder_worker_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def decoder_worker(loop, input_q, output_q, decode_error, extra):
        pass

    monkeypatch.setattr(aiortc_internals, "_original_decoder_worker", decoder_worker)
    with pytest.raises(UnsupportedAiortc, match="decoder_worker"):
        check_aiortc_internals()


class LoopbackPair:
    """A sending and a receiving aiortc peer connection, connected on loopback."""

    def __init__(self) -> None:
        self.sender_pc = RTCPeerConnection(rtc_configuration())
        self.receiver_pc = RTCPeerConnection(rtc_configuration())
        self.remote_tracks: list[MediaStreamTrack] = []

    async def connect(self, mark_encoded: bool) -> None:
        @self.receiver_pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if mark_encoded and not self.remote_tracks:
                receive_encoded_frames(track)  # only the first track
            self.remote_tracks.append(track)

        await self.sender_pc.setLocalDescription(await self.sender_pc.createOffer())
        await self.receiver_pc.setRemoteDescription(self.sender_pc.localDescription)
        await self.receiver_pc.setLocalDescription(await self.receiver_pc.createAnswer())
        await self.sender_pc.setRemoteDescription(self.receiver_pc.localDescription)
        await eventually(lambda: self.sender_pc.connectionState == "connected")

    async def close(self) -> None:
        await self.sender_pc.close()
        await self.receiver_pc.close()


@pytest.fixture
async def pair():
    install_encoded_frame_passthrough()
    loopback_pair = LoopbackPair()
    yield loopback_pair
    await loopback_pair.close()


async def test_a_marked_receiver_hands_out_encoded_frames_and_others_still_decode(
    pair: LoopbackPair,
) -> None:
    pair.sender_pc.addTrack(SolidColourVideoTrack(RED))
    pair.sender_pc.addTrack(SolidColourVideoTrack(GREEN))
    await pair.connect(mark_encoded=True)
    encoded_track, decoded_track = pair.remote_tracks

    first = await asyncio.wait_for(encoded_track.recv(), 5)
    second = await asyncio.wait_for(encoded_track.recv(), 5)
    assert isinstance(first, av.Packet) and isinstance(second, av.Packet)
    assert first.is_keyframe and is_vp8_keyframe(bytes(first))
    assert not second.is_keyframe
    assert first.time_base == fractions.Fraction(1, 90000)
    assert abs(second.pts - first.pts - 3000) <= 1  # 30 fps on the 90 kHz clock
    assert isinstance(await asyncio.wait_for(decoded_track.recv(), 5), av.VideoFrame)


async def test_keyframe_requests_can_be_redirected_and_sent(pair: LoopbackPair) -> None:
    sender = pair.sender_pc.addTrack(SolidColourVideoTrack(RED))
    requests: list[str] = []
    redirect_keyframe_requests(sender, lambda: requests.append("pli"))
    await pair.connect(mark_encoded=True)
    await asyncio.wait_for(pair.remote_tracks[0].recv(), 5)
    receiver = pair.receiver_pc.getReceivers()[0]

    assert await send_picture_loss_indication(receiver)
    await eventually(lambda: requests == ["pli"], within=3)


async def test_stream_and_track_ids_reach_the_msid_line(pair: LoopbackPair) -> None:
    track = SolidColourVideoTrack(RED)
    set_track_id(track, "camera.7.citizen")
    sender = pair.sender_pc.addTrack(track)
    set_sender_stream_id(sender, "main.citizen")
    await pair.connect(mark_encoded=False)

    assert "a=msid:main.citizen camera.7.citizen" in pair.sender_pc.localDescription.sdp
    assert pair.remote_tracks[0].id == "camera.7.citizen"


def test_private_names_still_exist() -> None:
    assert callable(RTCRtpSender._send_keyframe)
    assert asyncio.iscoroutinefunction(RTCRtpReceiver._send_rtcp_pli)
