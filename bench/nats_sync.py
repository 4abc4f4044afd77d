"""The cost of ``sync_interval: always`` on the embedded NATS server.

JetStream acknowledges a publish before the message is on disk unless the
server runs with ``sync_interval: always`` (then it fsyncs first). Bürgerbüro's
embedded server uses ``always`` so that an acknowledged event survives a crash
of the server or the machine. This measures what that costs, on the same
binary and store as ``buergerbuero up`` (``services.common.natsserver.EmbeddedNats``):

  * raw nats-py, each publish awaited before the next ("one by one");
  * raw nats-py, a sliding window of 64 publishes in flight;
  * the product's own path, ``services.common.bus.Bus.publish`` with batches of
    64 integration events (what the outbox relay does when it is behind).

Each server setting runs in a fresh store, alternating, ``--rounds`` times.
300-byte payloads (about the size of a queue event), ``Nats-Msg-Id`` on every
message as the relay sets it. Also printed: plain fsyncs per second on the
same file system, which is what ``always`` waits for.

    .venv/bin/python bench/nats_sync.py            # 2 rounds x 5 s per figure
    .venv/bin/python bench/nats_sync.py --quick    # 1 round x 2 s

Figures only: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from services.common.bus import Bus
from services.common.contracts import queue as queue_events
from services.common.logging import configure_logging
from services.common.natsserver import EmbeddedNats

PAYLOAD = b"x" * 300
WINDOW = 64


def fsyncs_per_second(directory: Path, seconds: float) -> float:
    """Small writes into a preallocated file, each followed by fdatasync: the floor under
    ``sync_interval: always`` (the server may cover several messages with one sync)."""
    path = directory / "fsync.probe"
    size = 64 << 20
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        os.fsync(fd)
        n, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            os.pwrite(fd, PAYLOAD, (n * len(PAYLOAD)) % size)
            os.fdatasync(fd)
            n += 1
        return n / (time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()


async def one_by_one(js: Any, seconds: float) -> float:
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        await js.publish("bench.one", PAYLOAD, headers={"Nats-Msg-Id": uuid.uuid4().hex})
        n += 1
    return n / (time.perf_counter() - started)


async def in_flight(js: Any, seconds: float, window: int = WINDOW) -> float:
    """A sliding window: a new publish goes out as soon as any acknowledgement comes back."""
    free = asyncio.Semaphore(window)
    acked = 0
    failed: list[BaseException] = []

    def done(future: asyncio.Future[Any]) -> None:
        nonlocal acked
        free.release()
        if future.cancelled() or future.exception() is not None:
            failed.append(future.exception() or asyncio.CancelledError())
        else:
            acked += 1

    pending: list[asyncio.Future[Any]] = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        await free.acquire()
        future = await js.publish_async(
            "bench.many", PAYLOAD, headers={"Nats-Msg-Id": uuid.uuid4().hex}
        )
        future.add_done_callback(done)
        pending.append(future)
        if len(pending) > 4 * window:
            pending = [f for f in pending if not f.done()]
    await asyncio.gather(*pending, return_exceptions=True)
    if failed:
        raise RuntimeError(f"{len(failed)} publishes failed: {failed[0]!r}")
    return acked / (time.perf_counter() - started)


def knocked(i: int, correlation: str) -> queue_events.Knocked:
    ticket = uuid.uuid4()
    return queue_events.Knocked(
        event_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        aggregate_id=ticket,
        aggregate_version=1,
        position=i,
        correlation_id=correlation,
        ticket_id=ticket,
        department_id=ticket,
        priority="walk_in",
        number=i,
    )


async def bus_batches(bus: Bus, seconds: float, batch: int = WINDOW) -> float:
    """The outbox relay's path: ``Bus.publish`` of a batch, all acknowledgements awaited."""
    n, started = 0, time.perf_counter()
    correlation = uuid.uuid4().hex
    while time.perf_counter() - started < seconds:
        events = [knocked(n + i, correlation) for i in range(batch)]
        await bus.publish(events)
        n += batch
    return n / (time.perf_counter() - started)


Measure = Callable[[Any, float], Awaitable[float]]


async def measure_server(sync_always: bool, seconds: float, workdir: Path) -> dict[str, float]:
    store = workdir / f"nats-{'always' if sync_always else 'default'}-{uuid.uuid4().hex[:6]}"
    server = EmbeddedNats(store, sync_always=sync_always)
    server.start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream(timeout=10)
        await js.add_stream(name="BENCH", subjects=["bench.>"])
        figures = {
            "one_by_one": await one_by_one(js, seconds),
            "in_flight": await in_flight(js, seconds),
        }
        await nc.close()
        bus = Bus(server.url, name="bench")
        await bus.connect()
        try:
            figures["bus_batches"] = await bus_batches(bus, seconds)
        finally:
            await bus.close()
        return figures
    finally:
        server.stop()
        shutil.rmtree(store, ignore_errors=True)


def span(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:8.0f}"
    return f"{min(values):6.0f} – {max(values):<6.0f}"


async def main_async(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bb-nats-sync-", dir=args.dir))
    print(
        f"JetStream publish cost of sync_interval: always ({os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}, store under {workdir})"
    )
    results: dict[str, dict[str, list[float]]] = {"default": {}, "always": {}}
    disk: list[float] = []
    try:
        for round_no in range(1, args.rounds + 1):
            disk.append(fsyncs_per_second(workdir, min(2.0, args.seconds)))
            order = [False, True] if round_no % 2 else [True, False]
            for sync_always in order:
                label = "always" if sync_always else "default"
                figures = await measure_server(sync_always, args.seconds, workdir)
                for key, value in figures.items():
                    results[label].setdefault(key, []).append(value)
                print(
                    f"  round {round_no} {label:8s} "
                    + ", ".join(f"{key} {value:7.0f}/s" for key, value in figures.items())
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        ("one_by_one", "awaited one by one"),
        ("in_flight", f"{WINDOW} in flight (sliding window)"),
        ("bus_batches", f"Bus.publish, batches of {WINDOW}"),
    ]
    print(f"\nplain fdatasync on this file system: {span(disk)} syncs/s")
    print(f"{'msg/s':36s} {'default (2 min flush)':>22s} {'always':>18s}   always/default")
    for key, title in rows:
        default, always = results["default"][key], results["always"][key]
        ratio = statistics.median(always) / statistics.median(default)
        print(f"  {title:34s} {span(default):>22s} {span(always):>18s}   {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round of 2 s per figure")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 2)")
    parser.add_argument("--seconds", type=float, help="seconds per figure (default 5)")
    parser.add_argument("--dir", help="where the stores go (default: the temp directory)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    configure_logging("ERROR", json=False)  # no "nats_started"/"nats_disconnected" lines
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
