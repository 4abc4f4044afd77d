"""Forwarding encoded frames vs aiortc's stock decode-and-re-encode relay.

One publisher sends synthetic 640x480, 30 fps VP8 (frame number painted into the
picture) through a media server in its own process; subscribers run in this
process. One run measures, side by side (peers in bench/media_bench_peers.py):

1. latency: publisher -> subscriber (frame handed to the encoder -> frame decoded
   with its number read back) through ``forward`` and ``relay`` with one decoding
   probe among N subscribers, against a direct peer-to-peer call -> added latency;
2. capacity: subscribers are added step by step (cheap ``RtpCounter`` subscribers
   that count RTP packets, gaps and frames without decoding) until packet loss
   passes 1 % or the 10th-percentile subscriber frame rate falls below 95 % of what
   the publisher sends; the last step that held is the measured capacity, and the
   server CPU per added subscriber is the slope over the steps that held.

Servers: ``forward`` = services.media.sfu.ForwardingRoom (no decoding, no encoding);
``relay`` = aiortc's MediaRelay with one RTCRtpSender, hence one VP8 encoder, per
subscriber.

    .venv/bin/python bench/media_fanout.py [--seconds 4] [--latency-subscribers 8]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiortc import RTCPeerConnection
from media_bench_peers import (
    NumberedVideoTrack,
    RtpCounter,
    SignalledPeer,
    SubscriberProbe,
    add_counting_subscriber,
    add_subscriber,
    server_cpu_seconds,
    start_server,
)

from services.media.sfu import loopback_host_candidates, rtc_configuration

WARM_UP_SECONDS = 3.0
LOSS_LIMIT = 0.01
FPS_FLOOR = 0.95
JOIN_BATCH = 10
FORWARD_STEPS = (10, 25, 50, 75, 100, 125, 150, 175, 200, 250, 300, 350, 400)
RELAY_STEPS = (1, 2, 3, 4, 6, 8, 10, 12, 16)
TARGET_CPU_RATIO = 15.0
TARGET_STREAMS_PER_CORE = 150
TARGET_ADDED_P95_MS = 50.0
TARGET_FPS = 30 * FPS_FLOOR


@dataclass
class LatencyWindow:
    subscribers: int
    server_cores: float
    fps: float
    latencies: list[float]

    def ms(self, quantile: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


@dataclass
class Step:
    subscribers: int
    server_cores: float
    client_loop: float  # share of this process's event-loop thread in use
    sent_fps: float
    fps_p10: float
    loss: float

    @property
    def held(self) -> bool:
        return self.loss <= LOSS_LIMIT and self.fps_p10 >= FPS_FLOOR * self.sent_fps


class Publisher:
    def __init__(self, port: int) -> None:
        self.track = NumberedVideoTrack()
        self.peer = SignalledPeer(port, "publisher", "publisher")
        self.peer.pc.addTransceiver(self.track, direction="sendonly")


async def server_cores_during(port: int, seconds: float) -> float:
    before = await server_cpu_seconds(port)
    await asyncio.sleep(seconds)
    return (await server_cpu_seconds(port) - before) / seconds


async def add_counters(port: int, peers: list, counters: list[RtpCounter], total: int) -> None:
    """Add subscribers up to ``total``; return once every one of them receives media
    (ICE and DTLS handshakes done, so that they do not count as forwarding CPU)."""
    while len(counters) < total:
        batch = range(len(counters), min(total, len(counters) + JOIN_BATCH))
        joined = await asyncio.gather(*(add_counting_subscriber(port, n) for n in batch))
        for peer, counter in joined:
            peers.append(peer)
            counters.append(counter)
    for counter in counters:
        counter.reset()
    deadline = time.monotonic() + 30
    while any(c.packets == 0 for c in counters) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def latency_windows(mode: str, subscribers: int, seconds: float) -> list[LatencyWindow]:
    """One decoding probe, alone and then among ``subscribers - 1`` counting ones."""
    process, port = await start_server(mode)
    publisher = Publisher(port)
    await publisher.peer.join()
    peer, probe = await add_subscriber(port, 0, publisher.track)
    peers: list = [publisher.peer, peer]
    counters: list[RtpCounter] = []
    windows = []
    try:
        for total in (1, subscribers):
            await add_counters(port, peers, counters, total - 1)
            await asyncio.sleep(WARM_UP_SECONDS)
            probe.reset()
            cores = await server_cores_during(port, seconds)
            windows.append(LatencyWindow(total, cores, probe.frames / seconds, probe.latencies))
    finally:
        await close_all(peers, process)
    return windows


async def capacity_ramp(mode: str, steps: tuple[int, ...], seconds: float) -> list[Step]:
    process, port = await start_server(mode)
    publisher = Publisher(port)
    await publisher.peer.join()
    peers: list = [publisher.peer]
    counters: list[RtpCounter] = []
    results = []
    try:
        for total in steps:
            await add_counters(port, peers, counters, total)
            await asyncio.sleep(WARM_UP_SECONDS)
            for counter in counters:
                counter.reset()
            sent_before, loop_before = publisher.track.frames_sent, time.thread_time()
            cores = await server_cores_during(port, seconds)
            step = Step(
                subscribers=total,
                server_cores=cores,
                client_loop=(time.thread_time() - loop_before) / seconds,
                sent_fps=(publisher.track.frames_sent - sent_before) / seconds,
                fps_p10=percentile([c.frames / seconds for c in counters], 0.10),
                loss=sum(c.lost for c in counters)
                / max(1, sum(c.lost + c.packets for c in counters)),
            )
            results.append(step)
            print(f"  {mode:<8} {describe_step(step)}", flush=True)
            if not step.held:
                break
    finally:
        await close_all(peers, process)
    return results


async def direct_call(seconds: float) -> LatencyWindow:
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
        await asyncio.sleep(WARM_UP_SECONDS)
        probe.reset()
        await asyncio.sleep(seconds)
        return LatencyWindow(1, 0.0, probe.frames / seconds, probe.latencies)
    finally:
        for task in tasks:
            task.cancel()
        await caller.close()
        await callee.close()


async def close_all(peers: list, process) -> None:
    await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
    process.terminate()
    process.join()


# --- report -------------------------------------------------------------------------


def percentile(values: list[float], quantile: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def describe_step(step: Step) -> str:
    return (
        f"{step.subscribers:>4} subs  server {step.server_cores:.3f} cores  "
        f"fps p10 {step.fps_p10:5.1f}/{step.sent_fps:4.1f}  loss {100 * step.loss:5.2f}%  "
        f"client loop {100 * step.client_loop:3.0f}%  {'held' if step.held else 'BROKE'}"
    )


def slope(steps: list[Step]) -> float:
    """Server cores per added subscriber over the steps that held (least squares)."""
    held = [s for s in steps if s.held]
    if len(held) < 2:
        return float("nan")
    xs, ys = [s.subscribers for s in held], [s.server_cores for s in held]
    return statistics.linear_regression(xs, ys).slope


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(direct, latency, ramps, seconds: float) -> None:
    print(f"\n640x480 VP8 30 fps, {seconds:.0f} s windows, {os.cpu_count()} CPUs, loopback")
    print("latency (one decoding probe; + = added vs the direct call)")
    print(
        f"  direct          fps {direct.fps:5.1f}  p50 {direct.ms(0.5):6.1f}  "
        f"p95 {direct.ms(0.95):6.1f} ms"
    )
    for mode, windows in latency.items():
        for w in windows:
            print(
                f"  {mode:<8} {w.subscribers:>3} subs  fps {w.fps:5.1f}  p50 {w.ms(0.5):6.1f}  "
                f"p95 {w.ms(0.95):6.1f} ms  (+{w.ms(0.5) - direct.ms(0.5):.1f} / "
                f"+{w.ms(0.95) - direct.ms(0.95):.1f})  server {w.server_cores:.3f} cores"
            )
    print("capacity (steps until loss > 1 % or fps p10 < 95 % of sent)")
    per_sub = {}
    for mode, steps in ramps.items():
        held = [s for s in steps if s.held]
        per_sub[mode] = slope(steps)
        best = held[-1] if held else None
        if best:
            print(
                f"  {mode:<8} held {best.subscribers} subscribers at "
                f"{best.server_cores:.3f} server cores = "
                f"{best.subscribers / best.server_cores:.0f} streams per server core; "
                f"{per_sub[mode]:.4f} cores per added subscriber"
            )
        broke = next((s for s in steps if not s.held), None)
        print(f"  {mode:<8} broke at: {describe_step(broke) if broke else 'did not break'}")
    ratio = per_sub["relay"] / per_sub["forward"]
    forward_held = [s for s in ramps["forward"] if s.held]
    best = forward_held[-1] if forward_held else None
    streams_per_core = best.subscribers / best.server_cores if best else 0.0
    added_p95 = latency["forward"][-1].ms(0.95) - direct.ms(0.95)
    print("\ntargets")
    print(
        f"  CPU per added subscriber, relay / forward: {ratio:.1f}x (>= {TARGET_CPU_RATIO:.0f}x)"
        f" {verdict(ratio >= TARGET_CPU_RATIO)}"
    )
    print(
        f"  forwarded 640x480 streams per core: {streams_per_core:.0f} measured at "
        f"{best.subscribers if best else 0} subscribers (>= {TARGET_STREAMS_PER_CORE}) "
        f"{verdict(streams_per_core >= TARGET_STREAMS_PER_CORE)}"
    )
    print(
        f"  p95 added latency, forward with {latency['forward'][-1].subscribers} subscribers: "
        f"{added_p95:.1f} ms (< {TARGET_ADDED_P95_MS:.0f}) "
        f"{verdict(added_p95 < TARGET_ADDED_P95_MS)}"
    )
    fps = best.fps_p10 if best else 0.0
    print(
        f"  frame rate at capacity (10th percentile subscriber): {fps:.1f} fps "
        f"(>= {TARGET_FPS:.1f}; EN 301 549 asks >= 20) {verdict(fps >= TARGET_FPS)}"
    )


async def main(args: argparse.Namespace) -> None:
    with loopback_host_candidates():
        first_direct = await direct_call(args.seconds)
        latency = {
            mode: await latency_windows(mode, args.latency_subscribers, args.seconds)
            for mode in ("forward", "relay")
        }
        ramps = {
            "forward": await capacity_ramp("forward", args.forward_steps, args.seconds),
            "relay": await capacity_ramp("relay", args.relay_steps, args.seconds),
        }
        # The baseline twice (first and last); the faster one, so added latency is not understated.
        last_direct = await direct_call(args.seconds)
    direct = min(first_direct, last_direct, key=lambda w: w.ms(0.95))
    report(direct, latency, ramps, args.seconds)


def steps(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--latency-subscribers", type=int, default=8)
    parser.add_argument("--forward-steps", type=steps, default=FORWARD_STEPS)
    parser.add_argument("--relay-steps", type=steps, default=RELAY_STEPS)
    asyncio.run(main(parser.parse_args()))
