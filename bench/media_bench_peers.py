"""Peers, servers and signalling for bench/media_fanout.py.

* ``NumberedVideoTrack``: synthetic 640x480, 30 fps video (a moving gradient and a
  moving noise square) with the frame number painted into the top rows;
* ``SubscriberProbe``: decodes a received track, reads the number back -> latency;
* ``RtpCounter``: a subscriber that neither depacketises nor decodes: it counts RTP
  packets, sequence gaps (loss) and marker bits (frames), so that one client
  process can hold hundreds of subscribers;
* servers in a child process: ``forward`` (services.media.sfu.ForwardingRoom) and ``relay``
  (aiortc's MediaRelay: one decode, one VP8 encode per subscriber);
* line-delimited JSON signalling over TCP.
"""

import asyncio
import contextlib
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack
from aiortc.rtp import RtpPacket
from av import VideoFrame

from services.media.sfu import ForwardingRoom, loopback_host_candidates, rtc_configuration
from services.media.sfu.events import Answer, Disconnected

WIDTH, HEIGHT = 640, 480
NUMBER_BITS = 16
BIT_BLOCK = 24  # pixels per side of the square that carries one bit
TEMPLATE_FRAMES = 60
WARM_UP_SECONDS = 2.0
MODES = ("forward", "relay")

# --- synthetic numbered video -------------------------------------------------


def render_templates() -> list[bytes]:
    """Luma planes: a diagonal gradient moving right, a noise square moving down."""
    gradient = bytes((i * 2) & 0xFF for i in range(WIDTH + HEIGHT + 4 * TEMPLATE_FRAMES))
    texture = os.urandom(128 * 128).translate(bytes(64 + b // 2 for b in range(256)))
    templates = []
    for t in range(TEMPLATE_FRAMES):
        shift = 4 * t
        luma = bytearray(b"".join(gradient[y + shift : y + shift + WIDTH] for y in range(HEIGHT)))
        top, left = 64 + (3 * t) % (HEIGHT - 192), 200 + (5 * t) % (WIDTH - 328)
        for row in range(128):
            start = (top + row) * WIDTH + left
            luma[start : start + 128] = texture[row * 128 : (row + 1) * 128]
        templates.append(bytes(luma))
    return templates


def paint_number(luma: bytearray, number: int) -> None:
    for bit in range(NUMBER_BITS):
        value = 235 if number >> bit & 1 else 16
        block = bytes([value]) * BIT_BLOCK
        for row in range(BIT_BLOCK):
            start = row * WIDTH + bit * BIT_BLOCK
            luma[start : start + BIT_BLOCK] = block


def read_number(frame: VideoFrame) -> int:
    plane = frame.planes[0]
    pixels = memoryview(plane)
    row = BIT_BLOCK // 2
    number = 0
    for bit in range(NUMBER_BITS):
        if pixels[row * plane.line_size + bit * BIT_BLOCK + BIT_BLOCK // 2] > 128:
            number |= 1 << bit
    return number


class NumberedVideoTrack(VideoStreamTrack):
    """30 fps; remembers when each numbered frame was handed to the encoder."""

    def __init__(self) -> None:
        super().__init__()
        self._templates = render_templates()
        self._chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
        self.sent_at: dict[int, float] = {}
        self.frames_sent = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        number = self.frames_sent % (1 << NUMBER_BITS)
        luma = bytearray(self._templates[self.frames_sent % TEMPLATE_FRAMES])
        paint_number(luma, number)
        frame = VideoFrame(width=WIDTH, height=HEIGHT, format="yuv420p")
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts, frame.time_base = pts, time_base
        self.sent_at[number] = time.monotonic()
        self.frames_sent += 1
        return frame


@dataclass
class SubscriberProbe:
    """Consumes a received track: frames and latencies since the last reset."""

    publisher: NumberedVideoTrack
    frames: int = 0
    latencies: list[float] = field(default_factory=list)

    async def consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if not isinstance(frame, VideoFrame):
                    continue
                sent_at = self.publisher.sent_at.get(read_number(frame))
                self.frames += 1
                if sent_at is not None and 0 <= now - sent_at < 5:
                    self.latencies.append(now - sent_at)

    def reset(self) -> None:
        self.frames = 0
        self.latencies = []


class RtpCounter:
    """Counts what reaches one subscriber, below aiortc's depacketiser and decoder."""

    def __init__(self) -> None:
        self.packets = 0
        self.lost = 0
        self.frames = 0
        self._last_sequence: int | None = None

    def attach(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        receiver._handle_rtp_packet = self.on_packet  # bench only: skip the receive path

    async def on_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.packets += 1
        self.frames += packet.marker
        if self._last_sequence is not None:
            step = (packet.sequence_number - self._last_sequence) & 0xFFFF
            if step == 0 or step >= 0x8000:
                return  # duplicate or late: not a gap
            self.lost += step - 1
        self._last_sequence = packet.sequence_number

    def reset(self) -> None:
        self.packets = self.lost = self.frames = 0


# --- line-delimited JSON signalling over TCP ------------------------------------


async def send_json(writer: asyncio.StreamWriter, message: dict) -> None:
    writer.write(json.dumps(message).encode() + b"\n")
    await writer.drain()


async def read_json(reader: asyncio.StreamReader) -> dict | None:
    line = await reader.readline()
    return json.loads(line) if line else None


# --- servers (child process) ----------------------------------------------------


class ForwardServer:
    def __init__(self) -> None:
        self.room = ForwardingRoom("bench")

    async def serve(self, join: dict, reader: asyncio.StreamReader, writer) -> None:
        participant_id = join["id"]
        await self.room.join(participant_id, join["role"], join["sdp"])
        relay = asyncio.ensure_future(self._relay_messages(participant_id, writer))
        try:
            while (message := await read_json(reader)) is not None:
                await self.room.accept_answer(participant_id, message["sdp"])
        finally:
            await self.room.leave(participant_id)
            relay.cancel()

    async def _relay_messages(self, participant_id: str, writer) -> None:
        async for message in self.room.messages(participant_id):
            if isinstance(message, Disconnected):
                return
            kind = "answer" if isinstance(message, Answer) else "offer"
            await send_json(writer, {"type": kind, "sdp": message.sdp})


class StockRelayServer:
    """aiortc's own fan-out: decode once, re-encode for every subscriber."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.source: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.drain = MediaBlackhole()
        self.drain_task: asyncio.Future[None] | None = None

    async def serve(self, join: dict, reader: asyncio.StreamReader, writer) -> None:
        pc = RTCPeerConnection(rtc_configuration())
        if join["role"] == "publisher":
            pc.on("track", self._on_source)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=join["sdp"], type="offer"))
        if join["role"] == "subscriber":
            pc.addTrack(self.relay.subscribe(await self.source))
        await pc.setLocalDescription(await pc.createAnswer())
        await send_json(writer, {"type": "answer", "sdp": pc.localDescription.sdp})
        try:
            while await read_json(reader) is not None:
                pass
        finally:
            await pc.close()

    def _on_source(self, track: MediaStreamTrack) -> None:
        self.source.set_result(track)
        # Keep the decoded source drained even before anyone subscribes.
        self.drain.addTrack(self.relay.subscribe(track))
        self.drain_task = asyncio.ensure_future(self.drain.start())


async def run_server(mode: str, port_queue: multiprocessing.Queue) -> None:
    server = ForwardServer() if mode == "forward" else StockRelayServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await read_json(reader)
        if first is not None and first["op"] == "cpu":
            await send_json(writer, {"cpu": time.process_time()})
        elif first is not None and first["op"] == "join":
            await server.serve(first, reader, writer)
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_queue.put(listener.sockets[0].getsockname()[1])
    await listener.serve_forever()


def server_process(mode: str, port_queue: multiprocessing.Queue) -> None:
    with loopback_host_candidates():
        asyncio.run(run_server(mode, port_queue))


# --- clients (this process) -------------------------------------------------------


class SignalledPeer:
    def __init__(self, port: int, participant_id: str, role: str) -> None:
        self.port, self.participant_id, self.role = port, participant_id, role
        self.pc = RTCPeerConnection(rtc_configuration())
        self._tasks: list[asyncio.Task[None]] = []

    async def join(self) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        join = {"op": "join", "id": self.participant_id, "role": self.role}
        await send_json(self._writer, join | {"sdp": self.pc.localDescription.sdp})
        self._tasks.append(asyncio.ensure_future(self._handle_messages(reader)))

    async def _handle_messages(self, reader: asyncio.StreamReader) -> None:
        while (message := await read_json(reader)) is not None:
            description = RTCSessionDescription(sdp=message["sdp"], type=message["type"])
            await self.pc.setRemoteDescription(description)
            if message["type"] == "offer":
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await send_json(self._writer, {"op": "answer", "sdp": self.pc.localDescription.sdp})

    def watch(self, coroutine) -> None:
        self._tasks.append(asyncio.ensure_future(coroutine))

    async def close(self) -> None:
        self._writer.close()
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


async def server_cpu_seconds(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await send_json(writer, {"op": "cpu"})
    reply = await read_json(reader)
    writer.close()
    if reply is None:
        raise ConnectionError("the media server went away")
    return reply["cpu"]


async def add_subscriber(port: int, number: int, publisher: NumberedVideoTrack):
    peer = SignalledPeer(port, f"subscriber-{number}", "subscriber")
    peer.pc.addTransceiver("video", direction="recvonly")
    probe = SubscriberProbe(publisher)
    peer.pc.on("track", lambda track: peer.watch(probe.consume(track)))
    await peer.join()
    return peer, probe


async def add_counting_subscriber(port: int, number: int) -> tuple[SignalledPeer, RtpCounter]:
    peer = SignalledPeer(port, f"counter-{number}", "subscriber")
    peer.pc.addTransceiver("video", direction="recvonly")
    counter = RtpCounter()
    peer.pc.on("track", lambda track: counter.attach(peer.pc, track))
    await peer.join()
    return peer, counter


async def start_server(mode: str) -> tuple[multiprocessing.process.BaseProcess, int]:
    """A media server (``forward`` or ``relay``) in a child process, and its port."""
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    process = context.Process(target=server_process, args=(mode, port_queue), daemon=True)
    process.start()
    port = await asyncio.get_running_loop().run_in_executor(None, port_queue.get, True, 30)
    return process, port
