"""What the flood limits add to one knock, in CPU time: measured in one process, so the
figure does not depend on how busy the machine is (unlike knocks per second).

Runs the checks a knock goes through with the limits on (the client's address and its
tag, the line limit, the per-minute count in NATS, the waiting tickets per client),
for N knocks as many as 64 at a time, against the embedded nats-server with the
product's settings; prints the CPU per knock of this process and of nats-server (the
publish that counts a knock). Twice: every knock from an address of its own (citizens,
as in bench/knock_admit.py), then every knock from one of 100 addresses (the count
checked with NATS before each knock).

    .venv/bin/python bench/knock_limits.py            # 20,000 knocks
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import uvloop
from processes import cpu_seconds_of_tree

from services.common.bus import Bus
from services.common.clients import ClientTags, client_address
from services.common.natsserver import EmbeddedNats
from services.common.settings import Settings
from services.queue.floods import KnockLimits
from services.queue.waiting import WaitingRooms


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(knocks: int, workdir: Path) -> None:
    server = EmbeddedNats(workdir / "nats")
    server.start()
    bus = Bus(server.url, "queue")
    try:
        await bus.connect()
        for addresses, what in ((knocks, "each from its own address"), (100, "from 100 addresses")):
            # As many knocks a minute as are sent: every one is counted and answered.
            settings = Settings(
                data_dir=workdir, secret_key="x" * 48, knocks_per_client_per_minute=knocks
            )
            limits = KnockLimits(settings, WaitingRooms())
            limits.rate.bucket = f"bench_{addresses}"
            await limits.rate.start(bus)
            await one_round(bus, server, limits, ClientTags(settings.signing_key), knocks,
                            addresses, what)
    finally:
        await bus.close()
        server.stop()


async def one_round(
    bus: Bus,
    server: EmbeddedNats,
    limits: KnockLimits,
    tags: ClientTags,
    knocks: int,
    addresses: int,
    what: str,
) -> None:
    department = uuid4()

    async def knock_from(n: int) -> None:
        n %= addresses
        scope = {"client": (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", 40000)}
        await limits.check(department, uuid4(), tags.tag(client_address(scope)))

    async def citizen(first: int) -> None:
        for n in range(first, knocks, 64):
            await knock_from(n)

    assert server.process is not None and bus.nc is not None
    await knock_from(knocks)  # the stream and the code paths warm
    cpu0, nats0, wall0 = own_cpu(), cpu_seconds_of_tree(server.process.pid), time.time()
    await asyncio.gather(*(citizen(i) for i in range(64)))
    await bus.nc.flush()  # every count has reached the server
    cpu, nats = own_cpu() - cpu0, cpu_seconds_of_tree(server.process.pid) - nats0
    print(
        f"{knocks} knocks {what}, limits checked in {time.time() - wall0:.1f} s: "
        f"{cpu / knocks * 1e6:.1f} µs CPU per knock here, "
        f"{nats / knocks * 1e6:.1f} µs in nats-server, {(cpu + nats) / knocks * 1e6:.1f} µs in all"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--knocks", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bb-limits-") as workdir:
        uvloop.run(measure(args.knocks, Path(workdir)))  # as uvicorn runs the server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
