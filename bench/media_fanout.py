"""Forwarding encoded frames vs aiortc's stock decode-and-re-encode relay.

One publisher sends synthetic 640x480, 30 fps VP8 (a moving gradient and a
moving textured square, the frame number painted into the top rows) through a
media server running in its own process; aiortc subscribers in this process
decode every frame and read the number back. Measured side by side:

* server CPU (cores) with 1 and with N subscribers -> CPU per added subscriber;
* publisher -> subscriber latency (frame handed to the encoder -> frame decoded)
  against a direct peer-to-peer call in this process -> added latency;
* frames delivered and frame rate at the subscribers.

Servers: ``forward`` = services.media.MediaRoom; ``relay`` = aiortc's
MediaRelay with one RTCRtpSender, hence one VP8 encoder, per subscriber.

    .venv/bin/python bench/media_fanout.py [--subscribers 4] [--seconds 5]
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack
from av import VideoFrame

from services.media import MediaRoom, loopback_host_candidates, rtc_configuration
from services.media.events import Answer, Disconnected

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
        self.room = MediaRoom("bench")

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


@dataclass
class Window:
    subscribers: int
    server_cores: float
    fps: float
    delivered: float
    latencies: list[float]

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


async def measure(port: int | None, probes, publisher, seconds: float) -> Window:
    await asyncio.sleep(WARM_UP_SECONDS)
    for probe in probes:
        probe.reset()
    sent_before = publisher.frames_sent
    cpu_before = await server_cpu_seconds(port) if port else 0.0
    await asyncio.sleep(seconds)
    cpu_after = await server_cpu_seconds(port) if port else 0.0
    sent = publisher.frames_sent - sent_before
    frames = [probe.frames for probe in probes]
    return Window(
        subscribers=len(probes),
        server_cores=(cpu_after - cpu_before) / seconds,
        fps=min(frames) / seconds,
        delivered=min(frames) / max(sent, 1),
        latencies=[latency for probe in probes for latency in probe.latencies],
    )


async def run_server_mode(mode: str, subscribers: int, seconds: float) -> list[Window]:
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    process = context.Process(target=server_process, args=(mode, port_queue), daemon=True)
    process.start()
    port = await asyncio.get_running_loop().run_in_executor(None, port_queue.get, True, 30)
    track = NumberedVideoTrack()
    publisher = SignalledPeer(port, "publisher", "publisher")
    publisher.pc.addTransceiver(track, direction="sendonly")
    await publisher.join()
    peers = [publisher]
    probes: list[SubscriberProbe] = []
    windows = []
    try:
        for count in (1, subscribers):
            while len(probes) < count:
                peer, probe = await add_subscriber(port, len(probes) + 1, track)
                peers.append(peer)
                probes.append(probe)
            windows.append(await measure(port, probes, track, seconds))
    finally:
        for peer in peers:
            await peer.close()
        process.terminate()
        process.join()
    return windows


async def run_direct_call(seconds: float) -> Window:
    track = NumberedVideoTrack()
    caller, callee = RTCPeerConnection(rtc_configuration()), RTCPeerConnection(rtc_configuration())
    probe = SubscriberProbe(track)
    tasks = []
    callee.on("track", lambda remote: tasks.append(asyncio.ensure_future(probe.consume(remote))))
    caller.addTransceiver(track, direction="sendonly")
    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    await caller.setRemoteDescription(callee.localDescription)
    try:
        return await measure(None, [probe], track, seconds)
    finally:
        for task in tasks:
            task.cancel()
        await caller.close()
        await callee.close()


# --- report -------------------------------------------------------------------------


def describe(name: str, window: Window, direct: Window) -> str:
    added50 = window.latency_ms(0.5) - direct.latency_ms(0.5)
    added95 = window.latency_ms(0.95) - direct.latency_ms(0.95)
    return (
        f"{name:<8} {window.subscribers:>4} {window.server_cores:>8.3f} {window.fps:>6.1f} "
        f"{100 * window.delivered:>6.1f}% {window.latency_ms(0.5):>7.1f} "
        f"{window.latency_ms(0.95):>7.1f} {added50:>+8.1f} {added95:>+8.1f}"
    )


def per_added_subscriber(windows: list[Window]) -> float:
    first, last = windows[0], windows[-1]
    return (last.server_cores - first.server_cores) / max(last.subscribers - first.subscribers, 1)


async def main(subscribers: int, seconds: float) -> None:
    with loopback_host_candidates():
        direct = await run_direct_call(seconds)
        results = {mode: await run_server_mode(mode, subscribers, seconds) for mode in MODES}
    print(f"640x480 VP8 30 fps, {seconds:.0f} s windows, {os.cpu_count()} CPUs, loopback")
    print(
        "server   subs    cores    fps  deliv.  p50 ms  p95 ms  +p50 ms  +p95 ms"
        "   (+ = added vs direct call)"
    )
    print(
        f"direct   {1:>4} {'-':>8} {direct.fps:>6.1f} {100 * direct.delivered:>6.1f}% "
        f"{direct.latency_ms(0.5):>7.1f} {direct.latency_ms(0.95):>7.1f}"
    )
    for mode, windows in results.items():
        for window in windows:
            print(describe(mode, window, direct))
    forward, relay = (per_added_subscriber(results[mode]) for mode in MODES)
    print(
        f"\nserver CPU per added subscriber: forward {forward:.4f} cores, relay {relay:.4f} cores"
    )
    if forward > 0:
        print(f"relay / forward CPU per added subscriber: {relay / forward:.1f}x")
        print(f"extrapolated forwarded streams per core (CPU only): {1 / forward:.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.subscribers, arguments.seconds))
