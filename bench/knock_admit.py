"""Knock and admit under load: ``buergerbuero up`` driven over HTTP on loopback.

Starts the whole system (embedded NATS, SQLite stores, demo seed) as a child
process on a free port with a fresh data directory (as ``up`` runs by default:
on a machine with several cores a process tree with one queue process per core;
``--queue-processes 0`` for everything in one process), then measures:

  (a) sustained knocks per second: N concurrent citizens knocking on the 24/7
      "demo" department as fast as the server answers (closed loop);
  (b) p50/p99 from sending a knock to its ``knocked`` event on the staff's
      queue streams, at saturation and at fixed offered rates (open loop);
  (c) p50/p99 from sending an admit to the citizen's own ticket stream showing
      ``admitted``, and to ``consultation_id`` arriving (queue -> NATS -> rooms
      -> NATS -> queue);
  (d) resident memory (RSS of the server and its children, nats-server
      included) with 5,000 citizens waiting on open ticket streams, and the
      knock/admit latencies while they are open.

Every p99 of knock -> staff is also given counting failed (error, refusal), dropped (open
loop: 1,000 already in flight) and late (not on a staff stream within 10 s) knocks as never
answered, with their share beside it; open-loop knocks are timed from when they were due,
not from when the client got round to sending them.

Baselines in the same run, on the same machine and with the same client: a
no-op FastAPI endpoint on uvicorn (requests per second) and raw JetStream
publishes (nats-py against the same embedded nats-server binary and setting).

Every knock comes from a citizen of its own: a distinct X-Forwarded-For, as behind
the Ingress (the server believes it from loopback, ``BB_TRUSTED_PROXIES``). With
``--limits on`` (the default) the server checks the flood limits on every knock and
stream (knocks per client per minute in NATS, waiting tickets per client, streams per
ticket, the line limit raised to hold the benchmark's line); ``--limits off`` turns
them off, to measure what they cost.

The client is the small asyncio HTTP/1.1 client in ``bench/loadclient.py``
(keep-alive, chunked SSE) rather than httpx, which is only used for the few
setup calls.

    .venv/bin/python bench/knock_admit.py            # full run (about 5 minutes)
    .venv/bin/python bench/knock_admit.py --quick    # smoke run (about 40 seconds)
    .venv/bin/python bench/knock_admit.py --phases ab --limits off   # what the limits cost

Figures only: nothing here asserts timings. Targets are printed with PASS/MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from figures import line, mib, pct, summary, verdict
from limits import LIMITS, Headers, citizen_headers
from loadclient import HOST, EventStream, HttpError, OnEvent, Pool
from processes import (
    Child,
    cpu_seconds_of_tree,
    free_port,
    raise_fd_limit,
    revision,
    rss_of_tree,
    venv_script,
    wait_until,
)
from pydantic import BaseModel, Field

DEMO_PASSWORD = "buergerbuero"
DEMO_STAFF = ("anna", "ben", "carla")  # try these; those serving "demo" stream its queue
TARGET_KNOCKS = 500.0
TARGET_P99_MS = 50.0
TARGET_RSS = 1 << 30  # 1 GiB
TARGET_STREAMS = 5000
LATE_SECONDS = 10.0  # a knock on the staff streams later than this counts as failed


# -- load shapes -------------------------------------------------------------------------------


@dataclass
class Sent:
    started: float
    finished: float
    status: int
    ticket_id: str | None = None
    token: str | None = None


@dataclass
class Run:
    sent: list[Sent] = field(default_factory=list)
    errors: int = 0

    def ok(self) -> list[Sent]:
        return [s for s in self.sent if s.status in (200, 201)]


async def closed_loop(
    pool: Pool,
    method: str,
    path: str,
    body: Callable[[], bytes],
    concurrency: int,
    seconds: float,
    headers: Headers | None = None,
) -> tuple[Run, float]:
    """``concurrency`` clients, each sending the next request when the last is answered."""
    run = Run()
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                response = await pool.request(method, path, body(), headers and headers())
            except (OSError, asyncio.IncompleteReadError, HttpError):
                run.errors += 1
                await asyncio.sleep(0.01)
                continue
            sent = Sent(t0, time.perf_counter(), response.status)
            if response.status == 201:
                data = response.json()
                sent.ticket_id, sent.token = data.get("ticket_id"), data.get("token")
            run.sent.append(sent)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return run, time.perf_counter() - started


async def open_loop(
    pool: Pool,
    path: str,
    body: Callable[[], bytes],
    rate: float,
    seconds: float,
    max_in_flight: int = 1000,
    headers: Headers | None = None,
) -> tuple[Run, float, int]:
    """Requests sent on a fixed schedule, whether or not earlier ones were answered; each
    timed from when it was due (a client that fell behind its schedule must not hide the
    wait: coordinated omission). One due while ``max_in_flight`` are unanswered is dropped
    (``skipped``): counted as failed in the p99 that counts failures."""
    run = Run()
    skipped = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def one(t0: float) -> None:
        try:
            response = await pool.request("POST", path, body(), headers and headers())
        except (OSError, asyncio.IncompleteReadError, HttpError):
            run.errors += 1
            return
        sent = Sent(t0, time.perf_counter(), response.status)
        if response.status == 201:
            data = response.json()
            sent.ticket_id, sent.token = data["ticket_id"], data["token"]
        run.sent.append(sent)

    started = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            skipped += 1
            continue
        task = asyncio.create_task(one(due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight)
    return run, time.perf_counter() - started, skipped


def counting_failures(latencies: list[float], failed: int) -> dict[str, Any]:
    """The p99 with every failed, dropped or late sample counted as never answered, and the
    share of those beside it: a server that refuses the slow tail must not look fast."""
    total = len(latencies) + failed
    p99 = pct(latencies + [math.inf] * failed, 99)
    return {
        "n": total,
        "failed": failed,
        "failed_fraction": failed / total if total else 0.0,
        "p99_ms": None if p99 is None or math.isinf(p99) else round(p99 * 1000, 2),
    }


def counted_line(figures: dict[str, Any]) -> str:
    p99 = figures["p99_ms"]
    shown = "never (more than 1 % failed)" if p99 is None else f"{p99:.1f} ms"
    return (
        f"p99 counting failures {shown}; failed, dropped or late "
        f"{figures['failed']} of {figures['n']} ({figures['failed_fraction']:.2%})"
    )


class NoopBody(BaseModel):
    display_name: str | None = Field(default=None, max_length=60)
    language: str = "de"
    knock_id: uuid.UUID | None = None


# -- baselines ---------------------------------------------------------------------------------


def serve_noop(port: int) -> None:
    """The no-op baseline server: FastAPI on uvicorn with the product's uvicorn defaults."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/noop", status_code=201)
    async def noop(body: NoopBody) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host=HOST, port=port, log_config=None, access_log=False)


async def noop_baseline(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    child = Child([sys.executable, __file__, "--serve-noop", str(port)], workdir / "noop.log")
    pool = Pool(port)
    try:

        async def healthy() -> bool:
            return (await pool.request("GET", "/healthz")).status == 200

        await wait_until(healthy, 30, "the no-op server")
        cpu0 = cpu_seconds_of_tree(child.pid)
        run, elapsed = await closed_loop(
            pool, "POST", "/noop", knock_body, args.citizens, args.duration, citizen_headers()
        )
        cpu = cpu_seconds_of_tree(child.pid) - cpu0
    finally:
        pool.close()
        child.stop()
    ok = run.ok()
    return {
        "req_per_s": len(ok) / elapsed,
        "requests": len(ok),
        "errors": run.errors,
        "refused": len(run.sent) - len(ok),
        "http": summary([s.finished - s.started for s in ok]),
        "server_cpu_per_s": cpu / elapsed,
        "server_cpu_ms_per_request": cpu / max(1, len(ok)) * 1000,
    }


async def nats_baseline(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Raw JetStream publishes (300-byte payloads, Nats-Msg-Id) on the product's server setting,
    measured as in ``bench/nats_sync.py``."""
    import nats
    from nats_sync import in_flight, one_by_one  # bench/ is on sys.path as the script's dir

    from services.common.natsserver import EmbeddedNats
    from services.common.settings import Settings

    sync_always = Settings().nats_sync_always
    server = EmbeddedNats(workdir / "nats-baseline", sync_always=sync_always)
    server.start()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(name="BENCH", subjects=["bench.>"])
        seconds = max(2.0, args.duration / 4)
        return {
            "sync_always": sync_always,
            "one_by_one_per_s": await one_by_one(js, seconds),
            "in_flight_64_per_s": await in_flight(js, seconds),
        }
    finally:
        await nc.close()
        server.stop()


# -- the system under test ---------------------------------------------------------------------


def knock_body() -> bytes:
    """A knock as a browser sends it: with a fresh ``knock_id``, so a retry is safe."""
    return json.dumps(
        {"language": "de", "display_name": "Bench Citizen", "knock_id": str(uuid.uuid4())}
    ).encode()


@dataclass
class StaffMember:
    username: str
    cookie: str
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie, "X-CSRF-Token": self.csrf}


class Observer:
    """Every ``knocked`` seen on staff streams and every status on ticket streams, timed."""

    def __init__(self) -> None:
        self.knocked: list[dict[str, float]] = []  # one dict per staff stream
        self.admitted: dict[str, float] = {}
        self.consultation: dict[str, float] = {}
        self.statuses = 0

    def staff_listener(self) -> OnEvent:
        seen: dict[str, float] = {}
        self.knocked.append(seen)

        def on_event(name: str, data: dict[str, Any], arrived: float) -> None:
            if name == "knocked":
                seen.setdefault(data["ticket_id"], arrived)

        return on_event

    def on_ticket_event(self, name: str, data: dict[str, Any], arrived: float) -> None:
        if name != "status":
            return
        self.statuses += 1
        if data.get("status") == "admitted":
            self.admitted.setdefault(data["ticket_id"], arrived)
            if data.get("consultation_id"):
                self.consultation.setdefault(data["ticket_id"], arrived)

    def knock_latencies(self, sent: list[Sent]) -> tuple[list[float], int]:
        """Knock sent (or due) to its ``knocked`` on each staff stream; the second figure
        counts (knock, stream) pairs never seen, or seen later than ``LATE_SECONDS``."""
        latencies, missing = [], 0
        for s in sent:
            for seen in self.knocked:
                if s.ticket_id in seen and seen[s.ticket_id] - s.started <= LATE_SECONDS:
                    latencies.append(seen[s.ticket_id] - s.started)
                else:
                    missing += 1
        return latencies, missing

    def failed_samples(self, run: Run, skipped: int = 0) -> int:
        """Knocks that failed (errors, refusals) or were dropped, once per staff stream."""
        refused = sum(1 for s in run.sent if s.status not in (200, 201))
        return (run.errors + refused + skipped) * len(self.knocked)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.port = free_port()
        self.data_dir = workdir / "data"
        self.child: Child | None = None
        self.queue_processes: int | None = args.queue_processes
        self.pool = Pool(self.port)
        self.base = f"http://{HOST}:{self.port}"
        self.department = ""
        self.staff: list[StaffMember] = []
        self.observer = Observer()
        self.staff_streams: list[EventStream] = []
        self.tickets: list[Sent] = []  # every ticket knocked, in order
        self.taken: set[str] = set()  # tickets admitted or streamed already
        self.results: dict[str, Any] = {}
        self.citizen = citizen_headers()

    @property
    def knock_path(self) -> str:
        return f"/api/v1/departments/{self.department}/knock"

    def server_argv(self) -> list[str]:
        return [
            venv_script("buergerbuero"),
            "up",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *(["--queue-processes", str(self.queue_processes)]
              if self.queue_processes is not None else []),
        ]

    async def start(self) -> None:
        self.child = Child(
            self.server_argv(), self.workdir / "server.log", env=LIMITS[self.args.limits]
        )

        async def ready() -> bool:
            return (await self.pool.request("GET", "/readyz")).status == 200

        started = time.perf_counter()
        await wait_until(ready, 180, "/readyz")  # a loaded machine starts slowly

        async def demo_open() -> bool:
            response = await self.pool.request("GET", "/api/v1/departments")
            for department in response.json():
                if department["slug"] == "demo" and department["open"]:
                    self.department = department["id"]
                    return True
            return False

        await wait_until(demo_open, 60, "the demo department to open")
        self.results["startup_s"] = round(time.perf_counter() - started, 2)
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            for username in DEMO_STAFF:
                response = await client.post(
                    "/api/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD}
                )
                if response.status_code != 200:
                    continue
                cookie = "; ".join(f"{k}={v}" for k, v in response.cookies.items())
                member = StaffMember(username, cookie, response.json()["csrf_token"])
                probe = await client.get(
                    f"/api/v1/departments/{self.department}/queue", headers={"Cookie": cookie}
                )
                if probe.status_code == 200:
                    self.staff.append(member)
        if not self.staff:
            raise SystemExit("no demo staff could sign in")
        for member in self.staff:
            stream = EventStream(
                self.port,
                f"/api/v1/departments/{self.department}/queue/stream",
                {"Cookie": member.cookie},
            )
            status = await stream.open(self.observer.staff_listener())
            if status != 200:
                raise SystemExit(f"staff stream refused: {status}")
            await asyncio.wait_for(stream.first.wait(), 30)
            self.staff_streams.append(stream)

    def stop(self) -> None:
        for stream in self.staff_streams:
            stream.close()
        self.pool.close()
        if self.child:
            self.child.stop()

    def rss(self) -> tuple[int, dict[str, int]]:
        assert self.child
        return rss_of_tree(self.child.pid)

    async def waiting_count(self) -> int:
        response = await self.pool.request("GET", f"/api/v1/departments/{self.department}")
        return int(response.json()["waiting"])

    async def settle(self, expected: int, seconds: float = 10.0) -> None:
        """Let the staff streams catch up with the knocks sent so far."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if all(len(seen) >= expected for seen in self.observer.knocked):
                return
            await asyncio.sleep(0.1)

    async def quiesce(self, limit: float = 60.0) -> float:
        """Wait until the server is idle (below 0.1 cores for a second): after a saturation
        phase the outbox relay and the audit consumer still work through a backlog, which
        would otherwise land in the next phase's latencies. Returns the seconds waited."""
        assert self.child
        started = time.perf_counter()
        previous = cpu_seconds_of_tree(self.child.pid)
        while time.perf_counter() - started < limit:
            await asyncio.sleep(1.0)
            now = cpu_seconds_of_tree(self.child.pid)
            if now - previous < 0.1:
                break
            previous = now
        return time.perf_counter() - started

    # (a) and (b) at saturation
    async def knock_throughput(self) -> None:
        a = self.args
        assert self.child
        cpu0 = cpu_seconds_of_tree(self.child.pid)
        run, elapsed = await closed_loop(
            self.pool, "POST", self.knock_path, knock_body, a.citizens, a.duration, self.citizen
        )
        cpu = cpu_seconds_of_tree(self.child.pid) - cpu0
        ok = run.ok()
        self.tickets += ok
        await self.settle(len(self.tickets))
        latencies, missing = self.observer.knock_latencies(ok)
        refused = [s.status for s in run.sent if s.status not in (200, 201)]
        self.results["saturation"] = {
            "concurrency": a.citizens,
            "seconds": round(elapsed, 2),
            "knocks": len(ok),
            "knocks_per_s": len(ok) / elapsed,
            "errors": run.errors,
            "refused": len(refused),
            "refused_statuses": sorted(set(refused)),
            "http": summary([s.finished - s.started for s in ok]),
            "knock_to_staff": summary(latencies),
            "not_seen_on_staff_stream": missing,
            "knock_to_staff_counting_failures": counting_failures(
                latencies, missing + self.observer.failed_samples(run)
            ),
            "server_cpu_per_s": cpu / elapsed,
            "server_cpu_ms_per_knock": cpu / max(1, len(ok)) * 1000,
        }
        print(
            f"  (a) {len(ok) / elapsed:7.1f} knocks/s with {a.citizens} concurrent citizens "
            f"over {elapsed:.1f} s ({len(ok)} knocks, {run.errors} errors, "
            f"{len(refused)} refused); server CPU {cpu / elapsed:.2f} cores, "
            f"{cpu / max(1, len(ok)) * 1000:.2f} ms per knock"
        )
        print(f"      knock HTTP         {line([s.finished - s.started for s in ok])}")
        print(
            f"  (b) knock -> staff     {line(latencies)} at saturation"
            f"{f'; {missing} never seen' if missing else ''}"
        )
        counted = self.results["saturation"]["knock_to_staff_counting_failures"]
        print(f"                         {counted_line(counted)}")

    # (b) at fixed rates
    async def knock_latency_at(self, rate: float) -> None:
        seconds = self.args.rate_seconds
        idle_after = await self.quiesce()
        waiting = await self.waiting_count()
        run, elapsed, skipped = await open_loop(
            self.pool, self.knock_path, knock_body, rate, seconds, headers=self.citizen
        )
        ok = run.ok()
        self.tickets += ok
        await self.settle(len(self.tickets))
        latencies, missing = self.observer.knock_latencies(ok)
        http = [s.finished - s.started for s in ok]
        self.results.setdefault("fixed_rate", {})[str(int(rate))] = {
            "offered_per_s": rate,
            "waited_for_idle_s": round(idle_after, 1),
            "achieved_per_s": len(ok) / elapsed,
            "knocks": len(ok),
            "errors": run.errors,
            "skipped": skipped,
            "waiting_before": waiting,
            "http": summary(http),
            "knock_to_staff": summary(latencies),
            "not_seen_on_staff_stream": missing,
            "knock_to_staff_counting_failures": counting_failures(
                latencies, missing + self.observer.failed_samples(run, skipped)
            ),
        }
        not_sent = f"; {skipped} not sent, 1000 in flight" if skipped else ""
        print(
            f"  (b) {rate:5.0f}/s offered -> {len(ok) / elapsed:6.1f}/s answered "
            f"({waiting} already waiting{not_sent}; server idle after {idle_after:.0f} s)"
        )
        print(f"      knock HTTP         {line(http)}")
        print(
            f"      knock -> staff     {line(latencies)}"
            f"{f'; {missing} never seen' if missing else ''}"
        )
        counted = self.results["fixed_rate"][str(int(rate))]["knock_to_staff_counting_failures"]
        print(f"                         {counted_line(counted)}")

    def free_tickets(self, n: int) -> list[Sent]:
        chosen = [t for t in self.tickets if t.ticket_id not in self.taken][:n]
        self.taken.update(t.ticket_id for t in chosen if t.ticket_id)
        return chosen

    async def open_ticket_streams(
        self,
        tickets: list[Sent],
        parallel: int = 100,
    ) -> list[EventStream]:
        streams: list[EventStream] = []
        gate = asyncio.Semaphore(parallel)
        failures = 0

        async def one(ticket: Sent) -> None:
            nonlocal failures
            async with gate:
                stream = EventStream(
                    self.port, f"/api/v1/tickets/{ticket.ticket_id}/stream?token={ticket.token}"
                )
                try:
                    status = await stream.open(self.observer.on_ticket_event)
                    if status == 200:
                        await asyncio.wait_for(stream.first.wait(), 60)
                        streams.append(stream)
                        return
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    pass
                stream.close()
                failures += 1

        await asyncio.gather(*(one(t) for t in tickets))
        if failures:
            print(f"      {failures} ticket streams failed to open")
        return streams

    async def admit_latency(self, tickets: list[Sent], gap: float) -> dict[str, Any]:
        staff = self.staff[0]
        started: dict[str, float] = {}
        http: list[float] = []
        refused = 0
        for ticket in tickets:
            assert ticket.ticket_id
            t0 = time.perf_counter()
            started[ticket.ticket_id] = t0
            response = await self.pool.request(
                "POST", f"/api/v1/tickets/{ticket.ticket_id}/admit", b"", staff.headers
            )
            http.append(time.perf_counter() - t0)
            if response.status != 200:
                refused += 1
            await asyncio.sleep(gap)
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline and any(
            t not in self.observer.consultation for t in started
        ):
            await asyncio.sleep(0.1)
        admitted = [
            self.observer.admitted[t] - s for t, s in started.items() if t in self.observer.admitted
        ]
        consulted = [
            self.observer.consultation[t] - s
            for t, s in started.items()
            if t in self.observer.consultation
        ]
        return {
            "admits": len(tickets),
            "refused": refused,
            "http": summary(http),
            "to_admitted": summary(admitted),
            "to_consultation": summary(consulted),
            "_raw": (http, admitted, consulted),
        }

    # (c)
    async def admits(self) -> None:
        n = self.args.admits
        tickets = self.free_tickets(n)
        streams = await self.open_ticket_streams(tickets)
        await self.quiesce()
        waiting = await self.waiting_count()
        result = await self.admit_latency(tickets, self.args.admit_gap)
        for stream in streams:
            stream.close()
        http, admitted, consulted = result.pop("_raw")
        result["waiting_before"] = waiting
        self.results["admit"] = result
        print(
            f"  (c) {n} admits, one every {self.args.admit_gap * 1000:.0f} ms, "
            f"{len(streams)} ticket streams open ({waiting} waiting)"
        )
        print(f"      admit HTTP         {line(http)}")
        print(f"      admit -> admitted  {line(admitted)}")
        print(f"      admit -> consult.  {line(consulted)}")

    # (d)
    async def memory(self) -> None:
        n = self.args.streams
        missing = n - len([t for t in self.tickets if t.ticket_id not in self.taken])
        if missing > 0:
            print(f"      knocking {missing} more citizens to have {n} waiting")
            while missing > 0:
                run, _ = await closed_loop(
                    self.pool,
                    "POST",
                    self.knock_path,
                    knock_body,
                    self.args.citizens,
                    2.0,
                    self.citizen,
                )
                self.tickets += run.ok()
                missing -= len(run.ok())
        await self.quiesce()
        before, _ = self.rss()
        tickets = self.free_tickets(n)
        started = time.perf_counter()
        streams = await self.open_ticket_streams(tickets)
        opened_in = time.perf_counter() - started
        await self.quiesce()
        after, parts = self.rss()
        waiting = await self.waiting_count()
        self.results["memory"] = {
            "streams": len(streams),
            "waiting": waiting,
            "open_seconds": round(opened_in, 2),
            "rss_before": before,
            "rss_with_streams": after,
            "per_stream_bytes": (after - before) / max(1, len(streams)),
            "processes": parts,
        }
        print(
            f"  (d) {len(streams)} ticket streams open in {opened_in:.1f} s "
            f"({waiting} waiting): RSS {mib(after)} (before {mib(before)}, "
            f"+{(after - before) / max(1, len(streams)) / 1024:.1f} KiB per stream)"
        )
        print("      " + ", ".join(f"{name} {mib(size)}" for name, size in parts.items()))

        # What the open streams cost every other request: a few knocks and admits, slowly.
        k = self.args.under_load
        sent: list[Sent] = []
        for _ in range(k):
            t0 = time.perf_counter()
            response = await self.pool.request(
                "POST", self.knock_path, knock_body(), self.citizen()
            )
            s = Sent(t0, time.perf_counter(), response.status)
            if response.status == 201:
                data = response.json()
                s.ticket_id, s.token = data["ticket_id"], data["token"]
                sent.append(s)
            await asyncio.sleep(0.2)
        self.tickets += sent
        await self.settle(len(self.tickets))
        knock_latencies, _ = self.observer.knock_latencies(sent)
        result = await self.admit_latency(tickets[:k], 0.2)
        http, admitted, consulted = result.pop("_raw")
        self.results["under_streams"] = {
            "knock_http": summary([s.finished - s.started for s in sent]),
            "knock_to_staff": summary(knock_latencies),
            **result,
        }
        print(f"      with them open, {k} knocks and {k} admits, one every 200 ms:")
        print(f"      knock HTTP         {line([s.finished - s.started for s in sent])}")
        print(f"      knock -> staff     {line(knock_latencies)}")
        print(f"      admit HTTP         {line(http)}")
        print(f"      admit -> admitted  {line(admitted)}")
        print(f"      admit -> consult.  {line(consulted)}")
        for stream in streams:
            stream.close()


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--duration", type=float, help="seconds of saturation (default 20)")
    parser.add_argument("--citizens", type=int, default=64, help="concurrent knocking citizens")
    parser.add_argument("--rates", help="fixed offered knock rates per second (default 100,500)")
    parser.add_argument("--rate-seconds", type=float, help="seconds per fixed rate (default 10)")
    parser.add_argument("--admits", type=int, help="admits measured (default 200)")
    parser.add_argument("--admit-gap", type=float, default=0.02, help="seconds between admits")
    parser.add_argument("--streams", type=int, help="open waiting ticket streams (default 5000)")
    parser.add_argument("--under-load", type=int, help="knocks/admits with the streams open")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument(
        "--queue-processes",
        type=int,
        help="passed to `buergerbuero up` (default: up's own default; 0: one process)",
    )
    parser.add_argument(
        "--phases",
        default="abcd",
        help="which of (a) knocks, (b) fixed rates, (c) admits, (d) memory to run; "
        "(a) always runs; the summary needs all four",
    )
    parser.add_argument(
        "--limits",
        choices=sorted(LIMITS),
        default="on",
        help="the server's flood limits on (the defaults; every knock from its own address) "
        "or off",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs")
    parser.add_argument("--serve-noop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (5.0 if quick else 20.0)
    args.rates = [float(r) for r in (args.rates or ("100" if quick else "100,500")).split(",") if r]
    args.rate_seconds = args.rate_seconds or (3.0 if quick else 10.0)
    args.admits = args.admits or (20 if quick else 200)
    args.streams = args.streams or (500 if quick else TARGET_STREAMS)
    args.under_load = args.under_load or (5 if quick else 20)
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_fd_limit(args.streams * 2 + 2048)
    workdir = Path(tempfile.mkdtemp(prefix="bb-bench-"))
    print(
        f"Bürgerbüro knock/admit benchmark{' (quick)' if args.quick else ''}: "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, fd limit {limit}, "
        f"revision {revision()}, work dir {workdir}, queue processes "
        f"{'up default' if args.queue_processes is None else args.queue_processes}, "
        f"limits {args.limits}"
    )
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "revision": revision(),
        "load_at_start": os.getloadavg(),
        "args": {k: v for k, v in vars(args).items() if k not in ("json", "serve_noop")},
    }
    try:
        if not args.skip_baselines:
            print("baselines")
            noop = await noop_baseline(args, workdir)
            results["noop"] = noop
            print(
                f"  no-op FastAPI/uvicorn  {noop['req_per_s']:7.1f} req/s with "
                f"{args.citizens} concurrent clients (HTTP p50 {noop['http']['p50_ms']} ms, "
                f"p99 {noop['http']['p99_ms']} ms; server CPU "
                f"{noop['server_cpu_per_s']:.2f} cores, "
                f"{noop['server_cpu_ms_per_request']:.2f} ms per request)"
            )
            js = await nats_baseline(args, workdir)
            results["jetstream"] = js
            print(
                f"  JetStream publish      {js['one_by_one_per_s']:7.1f} msg/s awaited one by "
                f"one, {js['in_flight_64_per_s']:7.1f} msg/s with 64 in flight "
                f"(sync_interval always: {js['sync_always']})"
            )
        bench = Bench(args, workdir)
        print("buergerbuero up")
        try:
            await bench.start()
            rss0, _ = bench.rss()
            bench.results["rss_idle"] = rss0
            print(
                f"  ready in {bench.results['startup_s']} s; demo department "
                f"{bench.department}; {len(bench.staff)} staff streams "
                f"({', '.join(s.username for s in bench.staff)}); RSS idle {mib(rss0)}"
            )
            await bench.knock_throughput()
            if "b" in args.phases:
                for rate in args.rates:
                    await bench.knock_latency_at(rate)
            if "c" in args.phases:
                await bench.admits()
            if "d" in args.phases:
                await bench.memory()
        finally:
            bench.stop()
        results.update(bench.results)
        if args.phases == "abcd":
            report(results, args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
            print(f"figures written to {args.json}")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    sat = results["saturation"]
    print("\nsummary")
    knocks = sat["knocks_per_s"]
    if "noop" in results:
        noop = results["noop"]["req_per_s"]
        js = results["jetstream"]
        per_knock = sat["server_cpu_ms_per_knock"]
        per_noop = results["noop"]["server_cpu_ms_per_request"]
        print(
            f"  server CPU per knock {per_knock:.2f} ms = {per_knock / per_noop:.1f} x "
            f"per no-op request ({per_noop:.2f} ms)"
        )
        print(
            f"  knocks/s {knocks:.1f} = {knocks / noop:.3f} x no-op req/s ({noop:.1f}), "
            f"{knocks / js['in_flight_64_per_s']:.3f} x JetStream publishes/s with 64 in flight "
            f"({js['in_flight_64_per_s']:.1f}), "
            f"{knocks / js['one_by_one_per_s']:.3f} x one by one "
            f"({js['one_by_one_per_s']:.1f})"
        )
    rates = results.get("fixed_rate", {})
    target_rate = rates.get(str(int(TARGET_KNOCKS)))
    at_target = target_rate or sat
    p99 = at_target["knock_to_staff_counting_failures"]["p99_ms"]  # failures count as never
    where = f"at {TARGET_KNOCKS:.0f}/s offered" if target_rate else "at saturation"
    memory = results["memory"]
    print("targets")
    print(
        f"  [{verdict(knocks >= TARGET_KNOCKS)}] >= {TARGET_KNOCKS:.0f} knocks/s sustained: "
        f"{knocks:.1f}/s"
    )
    print(
        f"  [{verdict(p99 is not None and p99 < TARGET_P99_MS)}] p99 knock -> staff stream "
        f"< {TARGET_P99_MS:.0f} ms: {p99} ms {where}"
    )
    full = memory["streams"] >= TARGET_STREAMS
    print(
        f"  [{verdict(full and memory['rss_with_streams'] < TARGET_RSS)}] "
        f"{TARGET_STREAMS} open waiting streams < 1 GiB RSS: "
        f"{mib(memory['rss_with_streams'])} with {memory['streams']} streams"
        f"{'' if full else ' (not the full 5,000: a quick run)'}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_noop:
        serve_noop(args.serve_noop)
        return 0
    from services.common.logging import configure_logging

    configure_logging("ERROR", json=False)  # the baseline's embedded NATS logs otherwise
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_async(args))
    else:
        uvloop.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
