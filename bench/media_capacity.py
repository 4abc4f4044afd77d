"""How many three-person consultations can one media server process carry?

Rooms of three participants who all publish 640x480, 30 fps VP8 (staff, citizen,
interpreter) and receive each other: 3 published and 6 forwarded video streams per
room. Rooms are added step by step until frame loss exceeds 1 % or the p95 added
latency exceeds 50 ms (against a direct aiortc call measured in the same run); the
last step that held is the capacity, reported as video streams actually forwarded
per server core (server process CPU time) at that point. The same ramp runs
against aiortc's stock relay (MediaRelay: decode once, re-encode per subscriber).
Subscribers use aiortc's real receive path (SRTP, NACK, jitter buffer, RTCP receiver
reports, REMB), see bench/media_capacity_peers.py; clients run in ``--workers``
processes, the server in its own.

    .venv/bin/python bench/media_capacity.py [--runs 3] [--seconds 5] [--workers 2]

Each figure is the median of the runs with their range. The machine is shared:
read the forward/relay ratio, which both sides of one run share.
"""

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import VideoFrame
from media_bench_peers import read_json, read_number, send_json
from media_capacity_peers import ROLES, Clip, ClipTrack, Reception, digest, server_process

from services.media.sfu import loopback_host_candidates, rtc_configuration
from services.media.sfu.aiortc_internals import (
    install_encoded_frame_passthrough,
    receive_encoded_frames,
)

LOSS_LIMIT = 0.01
ADDED_P95_LIMIT_MS = 50.0
WARM_UP_SECONDS = 3.0
IN_FLIGHT_SECONDS = 0.5  # frames sent this close to the window's end may still come
FORWARD_STEPS = (1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48)
RELAY_STEPS = (1, 2, 3, 4, 5, 6, 8)
STREAMS_PER_ROOM = 6


# --- client worker (child process) ---------------------------------------------------


class Participant:
    def __init__(self, room: "Room", role: str) -> None:
        self.room, self.role = room, role
        self.pc = RTCPeerConnection(rtc_configuration())
        self.track = ClipTrack(room.clip.frames[role])
        self.pc.addTransceiver(self.track, direction="sendonly")
        self.received = {other: Reception() for other in ROLES if other != role}
        self._tasks: list[asyncio.Future] = []
        self.pc.on("track", self._on_track)

    async def join(self, port: int) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        join = {"op": "join", "room": self.room.name, "id": f"{self.role}-{self.room.name}"}
        await send_json(self._writer, join | {"sdp": self.pc.localDescription.sdp})
        answered = asyncio.get_running_loop().create_future()
        self._tasks.append(asyncio.ensure_future(self._signal(reader, answered)))
        await asyncio.wait_for(answered, 30)

    async def _signal(self, reader: asyncio.StreamReader, answered: asyncio.Future) -> None:
        while (message := await read_json(reader)) is not None:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type=message["type"])
            )
            if message["type"] == "answer" and not answered.done():
                answered.set_result(None)
            elif message["type"] == "offer":
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await send_json(self._writer, {"op": "answer", "sdp": self.pc.localDescription.sdp})

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.room.mode == "forward":
            receive_encoded_frames(track)  # the whole receive path, but no decoder
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        clip = self.room.clip
        try:
            while True:
                data = await track.recv()
                now = time.monotonic()
                if isinstance(data, VideoFrame):
                    found = clip.identify_picture(read_number(data))
                else:
                    found = clip.by_digest.get(digest(bytes(data)))
                if found is None or found[0] == self.role:
                    continue
                role, index = found
                publisher = self.room.participants[role].track
                serial = publisher.serial_of(index)
                reception = self.received[role]
                if serial is None or serial in reception.serials:
                    continue
                reception.serials.add(serial)
                if publisher.sent[serial] >= self.room.window_start:
                    reception.latencies.append(now - publisher.sent[serial])
        except MediaStreamError:
            pass

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if hasattr(self, "_writer"):
            self._writer.close()
        await self.pc.close()


class Room:
    def __init__(self, name: str, clip: Clip, mode: str) -> None:
        self.name, self.clip, self.mode = name, clip, mode
        self.participants = {role: Participant(self, role) for role in ROLES}
        self.window_start = 0.0

    async def join(self, port: int, within: float = 30.0) -> None:
        """Join all three; return once each receives from both others (or ``within``)."""
        for participant in self.participants.values():
            await participant.join(port)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and not all(
            reception.serials
            for participant in self.participants.values()
            for reception in participant.received.values()
        ):
            await asyncio.sleep(0.1)

    def mark(self, start: float) -> None:
        self.window_start = start
        for participant in self.participants.values():
            for reception in participant.received.values():
                reception.latencies = []

    def tally(self, start: float, end: float) -> tuple[int, int, list[float]]:
        """(frames expected, frames received, latencies) over the window."""
        expected = received = 0
        latencies: list[float] = []
        for participant in self.participants.values():
            for role, reception in participant.received.items():
                sent = self.participants[role].track.sent
                due = [s for s, at in enumerate(sent) if start <= at <= end - IN_FLIGHT_SECONDS]
                expected += len(due)
                received += sum(1 for s in due if s in reception.serials)
                latencies += reception.latencies
        return expected, received, latencies

    async def close(self) -> None:
        for participant in self.participants.values():
            await participant.close()


async def direct_call(clip: Clip, mode: str, seconds: float) -> list[float]:
    """Latencies of a direct publisher -> subscriber call with the same receive path."""
    room = Room("direct", clip, mode)
    publisher, subscriber = room.participants["staff"], room.participants["citizen"]
    subscriber.pc.getTransceivers()[0].direction = "sendrecv"  # receive too
    await subscriber.pc.setLocalDescription(await subscriber.pc.createOffer())
    await publisher.pc.setRemoteDescription(subscriber.pc.localDescription)
    await publisher.pc.setLocalDescription(await publisher.pc.createAnswer())
    await subscriber.pc.setRemoteDescription(publisher.pc.localDescription)
    await asyncio.sleep(WARM_UP_SECONDS)
    room.mark(time.monotonic())
    await asyncio.sleep(seconds)
    latencies = list(subscriber.received["staff"].latencies)
    await room.close()
    return latencies


async def worker_main(conn: Connection) -> None:
    install_encoded_frame_passthrough()
    clip = Clip.encode()
    rooms: list[Room] = []
    loop = asyncio.get_running_loop()
    conn.send("ready")
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "add":
            port, mode, names = args
            for name in names:
                room = Room(name, clip, mode)
                rooms.append(room)
                await room.join(port)
            conn.send("ok")
        elif command == "mark":
            for room in rooms:
                room.mark(args[0])
            conn.send(time.process_time())
        elif command == "tally":
            start, end = args
            tallies = [room.tally(start, end) for room in rooms]
            conn.send(
                (
                    sum(t[0] for t in tallies),
                    sum(t[1] for t in tallies),
                    [lat for t in tallies for lat in t[2]],
                    time.process_time(),
                )
            )
        elif command == "direct":
            conn.send(await direct_call(clip, *args))
        elif command == "clear":
            for room in rooms:
                await room.close()
            rooms = []
            conn.send("ok")
        elif command == "stop":
            return


def worker_process(conn: Connection) -> None:
    with loopback_host_candidates():
        asyncio.run(worker_main(conn))


# --- the ramp (this process) -----------------------------------------------------------


@dataclass
class Step:
    rooms: int
    server_cores: float
    client_cores: float
    loss: float
    p95_ms: float
    added_p95_ms: float

    @property
    def streams(self) -> int:
        return self.rooms * STREAMS_PER_ROOM

    @property
    def streams_per_core(self) -> float:
        return self.streams / self.server_cores if self.server_cores > 0 else float("nan")

    @property
    def held(self) -> bool:
        return self.loss <= LOSS_LIMIT and self.added_p95_ms <= ADDED_P95_LIMIT_MS


class Workers:
    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=worker_process, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)
        for pipe in self.pipes:
            assert pipe.recv() == "ready"

    async def ask(self, pipe: Connection, *command: object) -> object:
        pipe.send(command)
        return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    async def all(self, *command: object) -> list:
        return list(await asyncio.gather(*(self.ask(pipe, *command) for pipe in self.pipes)))

    def stop(self) -> None:
        for pipe, process in zip(self.pipes, self.processes, strict=True):
            pipe.send(("stop",))
            process.join(10)


def percentile(values: list[float], quantile: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


async def server_cpu(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await send_json(writer, {"op": "cpu"})
    reply = await read_json(reader)
    writer.close()
    assert reply is not None
    return float(reply["cpu"])


async def ramp(workers: Workers, mode: str, direct_p95_ms: float, seconds: float) -> list[Step]:
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(target=server_process, args=(mode, port_queue), daemon=True)
    server.start()
    port = await asyncio.get_running_loop().run_in_executor(None, port_queue.get, True, 60)
    steps: list[Step] = []
    rooms = 0
    try:
        for target in FORWARD_STEPS if mode == "forward" else RELAY_STEPS:
            names = [f"r{number}" for number in range(rooms, target)]
            await asyncio.gather(
                *(
                    workers.ask(pipe, "add", port, mode, names[index :: len(workers.pipes)])
                    for index, pipe in enumerate(workers.pipes)
                )
            )
            rooms = target
            await asyncio.sleep(WARM_UP_SECONDS)
            start = time.monotonic()
            cpu_before = await server_cpu(port)
            clients_before = sum(await workers.all("mark", start))
            await asyncio.sleep(seconds)
            end = time.monotonic()
            cpu_after = await server_cpu(port)
            tallies = await workers.all("tally", start, end)
            expected = sum(t[0] for t in tallies)
            received = sum(t[1] for t in tallies)
            latencies = [lat for t in tallies for lat in t[2]]
            p95 = 1000 * percentile(latencies, 0.95)
            step = Step(
                rooms,
                (cpu_after - cpu_before) / (end - start),
                (sum(t[3] for t in tallies) - clients_before) / (end - start),
                1 - received / expected if expected else 1.0,
                p95,
                p95 - direct_p95_ms,
            )
            print(f"  {mode:7s} {describe(step)}", flush=True)
            steps.append(step)
            if not step.held:
                break
    finally:
        await workers.all("clear")
        server.terminate()
        server.join(10)
    return steps


def describe(step: Step) -> str:
    return (
        f"{step.rooms:3d} rooms ({step.streams:3d} streams): server {step.server_cores:.3f} "
        f"cores, clients {step.client_cores:.2f}, loss {100 * step.loss:.2f} %, p95 "
        f"{step.p95_ms:.1f} ms (+{step.added_p95_ms:.1f}) {'held' if step.held else 'BROKE'}"
    )


def capacity(steps: list[Step]) -> Step | None:
    held = [step for step in steps if step.held]
    return held[-1] if held else None


async def one_run(workers: Workers, seconds: float) -> dict[str, list[Step]]:
    direct = {}
    for mode in ("forward", "relay"):
        [latencies, *_] = await workers.all("direct", mode, seconds)
        direct[mode] = 1000 * percentile(latencies, 0.95)
        print(f"  direct call ({mode} receive path): p95 {direct[mode]:.1f} ms", flush=True)
    return {mode: await ramp(workers, mode, direct[mode], seconds) for mode in direct}


def summary(name: str, values: list[float], unit: str = "") -> str:
    if not values:
        return f"{name}: no run held even one room"
    return (
        f"{name}: median {statistics.median(values):.1f}{unit} "
        f"(range {min(values):.1f}–{max(values):.1f}; runs: "
        + ", ".join(f"{v:.1f}" for v in values)
        + ")"
    )


async def main(args: argparse.Namespace) -> None:
    print(f"load average at start: {os.getloadavg()}", flush=True)
    workers = Workers(args.workers)
    results = []
    try:
        for run in range(1, args.runs + 1):
            print(f"run {run}:", flush=True)
            results.append(await one_run(workers, args.seconds))
    finally:
        workers.stop()
    print(f"load average at end: {os.getloadavg()}")
    print(
        f"capacity: the last step with loss <= {100 * LOSS_LIMIT:.0f} % and added p95 <= "
        f"{ADDED_P95_LIMIT_MS:.0f} ms"
    )
    for mode in ("forward", "relay"):
        held = [s for s in (capacity(r[mode]) for r in results) if s is not None]
        print(f"{mode}: {len(held)} of {len(results)} runs held at least one room")
        print("  " + summary("rooms at capacity", [float(s.rooms) for s in held]))
        print("  " + summary("video streams forwarded", [float(s.streams) for s in held]))
        print("  " + summary("server cores at capacity", [s.server_cores for s in held]))
        print("  " + summary("streams per server core", [s.streams_per_core for s in held]))
        print("  " + summary("added p95 latency", [s.added_p95_ms for s in held], " ms"))
        first = [r[mode][0] for r in results if r[mode]]
        print(
            "  "
            + summary("streams per server core at one room", [s.streams_per_core for s in first])
        )
        print("  " + summary("frame loss at one room", [100 * s.loss for s in first], " %"))
    ratios = [
        r["forward"][0].streams_per_core / r["relay"][0].streams_per_core
        for r in results
        if r["forward"] and r["relay"]
    ]
    print(summary("streams per server core at one room, forward / relay", ratios, "×"))
    print("(the relay's streams are counted as forwarded even where it lost frames)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
