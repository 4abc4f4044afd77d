"""Loopback peers for the media tests: synthetic media and an aiortc client that
speaks the ForwardingRoom signalling protocol in-process."""

import asyncio
import contextlib
import fractions
import itertools
import math
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

from services.media.sfu import (
    Answer,
    Disconnected,
    ForwardingRoom,
    Offer,
    TrackInfo,
    TrackSource,
    rtc_configuration,
)

AUDIO_SAMPLE_RATE = 48000
AUDIO_FRAME_SAMPLES = 960  # 20 ms


def parse_track_id(track_id: str) -> tuple[TrackSource, str]:
    """(source, publisher participant id) of a forwarded track's id (``make_track_info``)."""
    source, _serial, publisher_id = track_id.split(".", 2)
    return TrackSource(source), publisher_id


@dataclass(frozen=True)
class Yuv:
    y: int
    u: int
    v: int

    def close_to(self, other: "Yuv", tolerance: int = 16) -> bool:
        return all(
            abs(a - b) <= tolerance for a, b in zip(self.astuple(), other.astuple(), strict=True)
        )

    def astuple(self) -> tuple[int, int, int]:
        return (self.y, self.u, self.v)


RED = Yuv(81, 90, 240)
GREEN = Yuv(145, 54, 34)
BLUE = Yuv(41, 240, 110)
YELLOW = Yuv(210, 16, 146)


class SolidColourVideoTrack(VideoStreamTrack):
    """30 fps frames of one colour."""

    def __init__(self, colour: Yuv, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.colour = colour
        template = VideoFrame(width=width, height=height, format="yuv420p")
        self._planes = [
            bytes([value]) * plane.buffer_size
            for value, plane in zip(colour.astuple(), template.planes, strict=True)
        ]
        self._size = (width, height)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self._size[0], height=self._size[1], format="yuv420p")
        for plane, data in zip(frame.planes, self._planes, strict=True):
            plane.update(data)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A sine tone, 48 kHz mono, in 20 ms frames."""

    kind = "audio"

    def __init__(self, frequency: float, amplitude: int = 8000) -> None:
        super().__init__()
        self.frequency = frequency
        self._amplitude = amplitude
        self._samples_sent = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            due = self._start + self._samples_sent / AUDIO_SAMPLE_RATE
            await asyncio.sleep(max(0.0, due - time.time()))
        frame = AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME_SAMPLES)
        frame.planes[0].update(self._tone(self._samples_sent).tobytes())
        frame.pts = self._samples_sent
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
        self._samples_sent += AUDIO_FRAME_SAMPLES
        return frame

    def _tone(self, first_sample: int) -> array:
        step = 2 * math.pi * self.frequency / AUDIO_SAMPLE_RATE
        return array(
            "h",
            (
                int(self._amplitude * math.sin(step * (first_sample + i)))
                for i in range(AUDIO_FRAME_SAMPLES)
            ),
        )


def centre_colour(frame: VideoFrame) -> Yuv:
    y, u, v = frame.planes[0], frame.planes[1], frame.planes[2]
    row, column = frame.height // 2, frame.width // 2
    return Yuv(
        memoryview(y)[row * y.line_size + column],
        memoryview(u)[(row // 2) * u.line_size + column // 2],
        memoryview(v)[(row // 2) * v.line_size + column // 2],
    )


def dominant_frequency(frame: AudioFrame) -> tuple[float, int]:
    """(frequency from zero crossings, peak amplitude) of the first channel."""
    samples = array("h", bytes(frame.planes[0]))
    channels = len(frame.layout.channels)
    # Planes may be padded: use only the frame's own samples.
    if frame.format.is_packed:
        mono = samples[: frame.samples * channels : channels]
    else:
        mono = samples[: frame.samples]
    crossings = sum(1 for a, b in itertools.pairwise(mono) if (a < 0) != (b < 0))
    duration = len(mono) / frame.sample_rate
    return crossings / 2 / duration, max((abs(s) for s in mono), default=0)


@dataclass
class ReceivedTrack:
    """A track a client receives from the room, consumed and summarised."""

    track: MediaStreamTrack
    source: TrackSource
    publisher_id: str
    received_at: float = field(default_factory=time.monotonic)
    frames: int = 0
    first_frame_at: float | None = None
    colour: Yuv | None = None
    tone: tuple[float, int] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, frame: VideoFrame | AudioFrame) -> None:
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        if isinstance(frame, VideoFrame):
            self.colour = centre_colour(frame)
        else:
            self.tone = dominant_frequency(frame)


class RoomClient:
    """An aiortc participant of a ForwardingRoom, signalling in-process."""

    def __init__(self, room: ForwardingRoom, participant_id: str, role: str) -> None:
        self.room = room
        self.participant_id = participant_id
        self.role = role
        self.pc = RTCPeerConnection(rtc_configuration())
        self.received: dict[str, ReceivedTrack] = {}
        self.disconnected: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.offers_answered = 0
        self.announced: dict[str, TrackInfo] = {}  # mid -> track, as the room last said
        self.messages: list[object] = []
        self._sources: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def publish(self, track: MediaStreamTrack, source: TrackSource) -> RTCRtpTransceiver:
        self._sources[track.id] = str(source)
        return self.pc.addTransceiver(track, direction="sendonly")

    async def join(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.room.join(
            self.participant_id, self.role, self.pc.localDescription.sdp, self._sources
        )
        self._tasks.append(asyncio.ensure_future(self._relay_messages()))

    async def rejoin(self, tracks: list[tuple[MediaStreamTrack, TrackSource]]) -> None:
        """Replace the peer connection by a new one publishing ``tracks``."""
        await self.pc.close()
        self.pc = RTCPeerConnection(rtc_configuration())
        self.pc.on("track", self._on_track)
        self._sources = {}
        for track, source in tracks:
            self.publish(track, source)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.room.rejoin(self.participant_id, self.pc.localDescription.sdp, self._sources)

    async def renegotiate(self) -> None:
        """Offer the current set of published tracks (after publish or unpublish)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.room.handle_offer(
            self.participant_id, self.pc.localDescription.sdp, self._sources
        )

    def tracks_from(self, publisher_id: str, live_only: bool = True) -> list[ReceivedTrack]:
        return [
            t
            for t in self.received.values()
            if t.publisher_id == publisher_id and not (live_only and t.ended.is_set())
        ]

    def live_track(self, publisher_id: str, source: TrackSource) -> ReceivedTrack | None:
        found = [t for t in self.tracks_from(publisher_id) if t.source is source]
        return found[-1] if found else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()

    async def _relay_messages(self) -> None:
        async for message in self.room.messages(self.participant_id):
            self.messages.append(message)
            if isinstance(message, Answer | Offer):
                self.announced = dict(message.tracks)
            if isinstance(message, Answer):
                answer = RTCSessionDescription(sdp=message.sdp, type="answer")
                await self.pc.setRemoteDescription(answer)
            elif isinstance(message, Offer):
                await self._answer(message.sdp)
            elif isinstance(message, Disconnected):
                self.disconnected.set_result(message.reason)

    async def _answer(self, offer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.room.accept_answer(self.participant_id, self.pc.localDescription.sdp)
        self.offers_answered += 1

    def _on_track(self, track: MediaStreamTrack) -> None:
        source, publisher_id = parse_track_id(track.id)
        received = ReceivedTrack(track, source, publisher_id)
        self.received[track.id] = received
        self._tasks.append(asyncio.ensure_future(_consume(received)))


class UdpBlock:
    """Drops every datagram a connected peer connection sends or receives, as a firewall
    or an expired NAT binding would, while its signalling goes on."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        ice = pc.getTransceivers()[0].sender.transport.transport
        self._protocols = list(ice._connection._protocols)

    def block(self) -> None:
        for protocol in self._protocols:
            protocol.datagram_received = lambda data, addr: None
            protocol.transport.sendto = lambda data, addr=None: None

    def lift(self) -> None:
        for protocol in self._protocols:
            with contextlib.suppress(AttributeError):
                del protocol.datagram_received
                del protocol.transport.sendto


async def _consume(received: ReceivedTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await received.track.recv()
            if isinstance(frame, VideoFrame | AudioFrame):
                received.note(frame)
    received.ended.set()


async def eventually(
    condition: Callable[[], bool], within: float = 10.0, interval: float = 0.02
) -> None:
    """Wait until ``condition()`` holds; TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        # Polling: peer connection and track state changes have no common event.
        while not condition():
            await asyncio.sleep(interval)
