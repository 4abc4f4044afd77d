"""Peers, clip and servers for bench/media_capacity.py.

* ``Clip``: 640x480 VP8 encoded once at start (PyAV/libvpx, ~1 Mbit/s, a keyframe
  every second), one second of frames per role with the frame's role and index
  painted into the picture; publishers replay it as ``av.Packet``s, which aiortc's
  sender only re-packetises, so hundreds of publishers fit in a few client processes;
* subscribers use aiortc's real receive path (SRTP, RTP, NACK generation, jitter
  buffer, receiver reports, REMB): ``forward`` runs skip only the decoder (the frame
  is identified by its bytes), ``relay`` runs decode (the stock relay re-encodes, so
  the painted number identifies the frame);
* servers in a child process hosting many rooms: ``forward``
  (services.media.sfu.ForwardingRoom per room) and ``relay`` (aiortc's MediaRelay:
  one decode per published track, one VP8 encode per subscriber);
* line-delimited JSON signalling over TCP (bench/media_bench_peers.py).
"""

import asyncio
import contextlib
import fractions
import hashlib
import multiprocessing
import time
from dataclasses import dataclass, field

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from media_bench_peers import (
    HEIGHT,
    WIDTH,
    paint_number,
    read_json,
    render_templates,
    send_json,
)

from services.media.sfu import ForwardingRoom, loopback_host_candidates, rtc_configuration
from services.media.sfu.events import Answer, Disconnected, Offer

ROLES = ("staff", "citizen", "interpreter")
FPS = 30
CLIP_FRAMES = FPS  # one second per role, starting with a keyframe
VIDEO_CLOCK = 90000


@dataclass
class Clip:
    """Encoded frames of every role: ``frames[role][index]``; ``identify`` by bytes."""

    frames: dict[str, list[bytes]]
    by_digest: dict[bytes, tuple[str, int]]

    @classmethod
    def encode(cls, bitrate: int = 1_000_000) -> "Clip":
        templates = render_templates()
        chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
        frames: dict[str, list[bytes]] = {}
        for number, role in enumerate(ROLES):
            codec = av.CodecContext.create("libvpx", "w")
            codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            codec.bit_rate, codec.framerate = bitrate, fractions.Fraction(FPS)
            codec.time_base = fractions.Fraction(1, FPS)
            codec.gop_size = CLIP_FRAMES
            codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
            encoded: list[bytes] = []
            for index in range(CLIP_FRAMES):
                luma = bytearray(templates[index % len(templates)])
                paint_number(luma, number * CLIP_FRAMES + index)
                frame = av.VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
                frame.planes[0].update(bytes(luma))
                frame.planes[1].update(chroma)
                frame.planes[2].update(chroma)
                frame.pts = index
                frame.pict_type = av.video.frame.PictureType.I if index == 0 else 0
                encoded += [bytes(packet) for packet in codec.encode(frame)]
            encoded += [bytes(packet) for packet in codec.encode(None)]
            frames[role] = encoded[:CLIP_FRAMES]
        by_digest = {
            digest(data): (role, index)
            for role, clip in frames.items()
            for index, data in enumerate(clip)
        }
        return cls(frames, by_digest)

    def identify_picture(self, number: int) -> tuple[str, int] | None:
        role_number, index = divmod(number, CLIP_FRAMES)
        return (ROLES[role_number], index) if role_number < len(ROLES) else None


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


class ClipTrack(MediaStreamTrack):
    """Replays one role's encoded clip at 30 fps; remembers when each serial was sent."""

    kind = "video"

    def __init__(self, frames: list[bytes]) -> None:
        super().__init__()
        self._frames = frames
        self.sent: list[float] = []  # serial -> when handed to the sender
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        serial = len(self.sent)
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + serial / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._frames[serial % CLIP_FRAMES])
        packet.pts = serial * (VIDEO_CLOCK // FPS)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent.append(time.monotonic())
        return packet

    def serial_of(self, index: int) -> int | None:
        """The latest serial that carried clip frame ``index``."""
        last = len(self.sent) - 1
        if last < 0:
            return None
        serial = last - ((last - index) % CLIP_FRAMES)
        return serial if serial >= 0 else None


@dataclass
class Reception:
    """What one participant received from one publisher."""

    serials: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)


# --- servers (child process) ----------------------------------------------------


class ForwardRooms:
    def __init__(self) -> None:
        self.rooms: dict[str, ForwardingRoom] = {}

    async def serve(self, join: dict, reader: asyncio.StreamReader, writer) -> None:
        room = self.rooms.setdefault(join["room"], ForwardingRoom(join["room"]))
        pid = join["id"]
        await room.join(pid, join["id"].split("-")[0], join["sdp"], {"0": "camera"})
        relay = asyncio.ensure_future(self._relay(room, pid, writer))
        try:
            while (message := await read_json(reader)) is not None:
                await room.accept_answer(pid, message["sdp"])
        finally:
            await room.leave(pid)
            relay.cancel()

    async def _relay(self, room: ForwardingRoom, pid: str, writer) -> None:
        async for message in room.messages(pid):
            if isinstance(message, Disconnected):
                return
            if isinstance(message, Answer | Offer):
                kind = "answer" if isinstance(message, Answer) else "offer"
                await send_json(writer, {"type": kind, "sdp": message.sdp})


@dataclass
class RelayParticipant:
    pc: RTCPeerConnection
    writer: asyncio.StreamWriter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answer: asyncio.Future | None = None


class StockRelayRooms:
    """aiortc's own fan-out, per room: decode each published track once, re-encode it
    for every other participant."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.rooms: dict[str, dict[str, RelayParticipant]] = {}
        self.tracks: dict[str, dict[str, MediaStreamTrack]] = {}
        self._background: set[asyncio.Future] = set()

    async def serve(self, join: dict, reader: asyncio.StreamReader, writer) -> None:
        room, pid = join["room"], join["id"]
        participants = self.rooms.setdefault(room, {})
        tracks = self.tracks.setdefault(room, {})
        me = RelayParticipant(RTCPeerConnection(rtc_configuration()), writer)
        published: asyncio.Future = asyncio.get_running_loop().create_future()
        me.pc.on("track", lambda track: published.done() or published.set_result(track))
        await me.pc.setRemoteDescription(RTCSessionDescription(join["sdp"], "offer"))
        await me.pc.setLocalDescription(await me.pc.createAnswer())
        await send_json(writer, {"type": "answer", "sdp": me.pc.localDescription.sdp})
        participants[pid] = me
        tracks[pid] = await published
        for other_id, other in list(participants.items()):
            if other_id == pid:
                continue
            other.pc.addTransceiver(self.relay.subscribe(tracks[pid]), direction="sendonly")
            self._background.add(asyncio.ensure_future(self._offer(other)))
            if other_id in tracks:
                me.pc.addTransceiver(self.relay.subscribe(tracks[other_id]), direction="sendonly")
        if len(me.pc.getTransceivers()) > 1:
            self._background.add(asyncio.ensure_future(self._offer(me)))
        try:
            while (message := await read_json(reader)) is not None:
                if me.answer is not None and not me.answer.done():
                    me.answer.set_result(message["sdp"])
        finally:
            participants.pop(pid, None)
            await me.pc.close()

    async def _offer(self, participant: RelayParticipant) -> None:
        async with participant.lock:
            participant.answer = asyncio.get_running_loop().create_future()
            await participant.pc.setLocalDescription(await participant.pc.createOffer())
            await send_json(
                participant.writer, {"type": "offer", "sdp": participant.pc.localDescription.sdp}
            )
            sdp = await participant.answer
            await participant.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))


async def run_server(mode: str, port_queue: multiprocessing.Queue) -> None:
    server = ForwardRooms() if mode == "forward" else StockRelayRooms()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await read_json(reader)
        if first is not None and first["op"] == "cpu":
            await send_json(writer, {"cpu": time.process_time()})
        elif first is not None and first["op"] == "join":
            with contextlib.suppress(Exception):
                await server.serve(first, reader, writer)
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_queue.put(listener.sockets[0].getsockname()[1])
    await listener.serve_forever()


def server_process(mode: str, port_queue: multiprocessing.Queue) -> None:
    with loopback_host_candidates():
        asyncio.run(run_server(mode, port_queue))
