"""Booking under load: ``buergerbuero up --queue-processes 0`` driven over HTTP on loopback.

Starts the whole system on a fresh data directory (SQLite) and, when the machine's
PostgreSQL answers at ``--postgres`` (postgresql://postgres@127.0.0.1:5432/test), once
more on a fresh database there, then measures per backend:

  (a) bookings per second: N closed-loop citizens booking a random free slot of one of
      10 departments within the next year, each booking from a citizen of its own
      (a distinct X-Forwarded-For), so the per-client limit (10 an hour, counted in NATS)
      is checked on every booking as in production without refusing any;
  (b) p50/p99 of a slot search over a year (``GET /departments/{id}/slots?from=&to=``,
      365 days; each department open Monday to Friday 08:00-18:00 in 15-minute slots of
      two places, about 10,000 slots a year), by a few closed-loop clients in turn over
      the 10 departments;
  baseline: ``GET /healthz`` of the same server under the same client load, in the same run.

Each phase runs ``--runs`` times (3), interleaved; a figure is the median of the runs with
their range. A request that fails or takes longer than ``--timeout`` counts in the
percentiles as never answered (infinitely slow).

The 10 departments' schedules are set through the staff API by an account "bench" that
is admin of them: the demo district has admins for four departments only, so before the
server starts the bench seeds the demo district itself (services/rooms seed_demo_district,
as ``up`` does; ``up`` then finds it seeded) and puts "bench" on the 10 rosters as admin.

    .venv/bin/python bench/booking.py                 # both backends (about 4 minutes)
    .venv/bin/python bench/booking.py --backends sqlite --duration 3   # smoke run

Figures only: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from figures import pct
from limits import Headers, citizen_headers
from loadclient import HOST, HttpError, Pool, Response
from processes import Child, cpu_seconds_of_tree, free_port, revision, venv_script, wait_until

BENCH_ADMIN = "bench"
BENCH_PASSWORD = "bench-password-long-enough"
DEPARTMENTS = 10
SCHEDULE = {
    "hours": [{"weekday": d, "opens": "08:00", "closes": "18:00"} for d in range(5)],
    "slot_minutes": 15,
    "capacity": 2,
    "days_ahead": 366,
    "notice_minutes": 0,
    "state": "NW",
}


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Phase:
    """One closed-loop run: each request's latency (inf when it failed or timed out)."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0  # no answer: connection error or timeout

    def ok(self, *codes: int) -> int:
        return sum(self.statuses.get(code, 0) for code in codes)

    def rate(self, *codes: int) -> float:
        return self.ok(*codes) / self.seconds


Request = Callable[[], Awaitable[Response]]


async def closed_loop(
    make: Callable[[], Request], good: set[int], clients: int, seconds: float, timeout: float
) -> Phase:
    """``clients`` each sending their next request when the last is answered; an answer
    not in ``good`` or none at all counts as an infinitely slow request."""
    phase = Phase()
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            send = make()
            t0 = time.perf_counter()
            try:
                response = await asyncio.wait_for(send(), timeout)
            except (OSError, asyncio.IncompleteReadError, HttpError, TimeoutError):
                phase.failures += 1
                phase.latencies.append(math.inf)
                await asyncio.sleep(0.01)
                continue
            phase.statuses[response.status] = phase.statuses.get(response.status, 0) + 1
            good_answer = response.status in good
            phase.latencies.append(time.perf_counter() - t0 if good_answer else math.inf)

    await asyncio.gather(*(client() for _ in range(clients)))
    phase.seconds = time.perf_counter() - started
    return phase


def spread(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if math.isfinite(v)]
    median = statistics.median(values) if values else math.nan
    return {
        "median": median,
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
        "runs": len(values),
        "finite_runs": len(finite),
    }


def shown(summary: dict[str, float], unit: str, scale: float = 1.0, digits: int = 1) -> str:
    def one(v: float) -> str:
        return "never (failed)" if math.isinf(v) else f"{v * scale:.{digits}f}"

    return (f"{one(summary['median'])} {unit} (runs {one(summary['min'])}–"
            f"{one(summary['max'])}, n={summary['runs']})")


# -- the system under test ---------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"bb_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_answers(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return True
    except Exception:  # any failure means: no PostgreSQL to measure on
        return False


def seed_district(data_dir: Path, database_url: str | None) -> list[str]:
    """The demo district as ``up`` seeds it, and "bench" admin of 10 departments; their slugs."""
    from services.common.eventstore import store_env
    from services.common.identity import LocalAccounts
    from services.common.logging import new_correlation_id
    from services.common.settings import Settings
    from services.rooms import seed
    from services.rooms.application import Rooms
    from services.rooms.domain import Department
    from services.rooms.service import seed_demo_district

    settings = Settings(data_dir=data_dir, database_url=database_url)
    rooms = Rooms(env=store_env(settings, "rooms"))
    accounts = LocalAccounts(env=store_env(settings, "identity"))
    try:
        seed_demo_district(rooms, accounts)
        accounts.add(BENCH_ADMIN, "Bench Admin", BENCH_PASSWORD, ["staff"])
        slugs = [d["slug"] for d in seed.DEPARTMENTS][:DEPARTMENTS]
        correlation_id = new_correlation_id()
        for slug in slugs:
            rooms.assign_staff(Department.create_id(slug), BENCH_ADMIN, "admin", correlation_id)
        return slugs
    finally:
        rooms.close()
        accounts.close()


@dataclass
class Bookable:
    id: str
    slug: str
    anonymous: bool
    slots: list[str] = field(default_factory=list)  # free slot starts within the year


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, backend: str,
                 database_url: str | None) -> None:
        self.args = args
        self.workdir = workdir
        self.backend = backend
        self.database_url = database_url
        self.port = free_port()
        self.data_dir = workdir / "data"
        self.pool = Pool(self.port)
        self.base = f"http://{HOST}:{self.port}"
        self.child: Child | None = None
        self.departments: list[Bookable] = []
        self.citizen: Headers = citizen_headers()

    async def start(self) -> None:
        slugs = await asyncio.to_thread(seed_district, self.data_dir, self.database_url)
        env = {"BB_LOG_LEVEL": "WARNING", "BB_BOOKINGS_PER_CLIENT_PER_HOUR": "10"}
        if self.database_url:
            env["BB_DATABASE_URL"] = self.database_url
        argv = [venv_script("buergerbuero"), "up", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--queue-processes", "0"]
        self.child = Child(argv, self.workdir / "server.log", env=env)

        async def ready() -> bool:
            return (await self.pool.request("GET", "/readyz")).status == 200

        await wait_until(ready, 90, "/readyz")
        async with httpx.AsyncClient(base_url=f"{self.base}/api/v1", timeout=30) as client:
            listed = {d["slug"]: d for d in (await client.get("/departments")).json()}
            self.departments = [
                Bookable(str(listed[s]["id"]), s, bool(listed[s].get("anonymous")))
                for s in slugs
            ]
            signed = await client.post(
                "/auth/login", json={"username": BENCH_ADMIN, "password": BENCH_PASSWORD}
            )
            signed.raise_for_status()
            headers = {"X-CSRF-Token": signed.json()["csrf_token"]}
            for department in self.departments:
                path = f"/offices/{department.id}/schedule"

                async def set_schedule(path: str = path) -> bool:
                    # 403 until booking has heard of the roster (rooms' events over NATS)
                    answer = await client.put(path, json=SCHEDULE, headers=headers)
                    return answer.status_code == 200

                await wait_until(set_schedule, 60, f"the schedule of {department.slug}")
            low, high = self.year()
            for department in self.departments:
                found = await client.get(f"/departments/{department.id}/slots",
                                         params={"from": low, "to": high})
                found.raise_for_status()
                department.slots = [s["start"] for s in found.json()["slots"]]

    def year(self) -> tuple[str, str]:
        now = datetime.now(UTC).replace(microsecond=0)
        return now.isoformat(), (now + timedelta(days=365)).isoformat()

    def stop(self) -> None:
        self.pool.close()
        if self.child:
            self.child.stop()

    async def quiesce(self, limit: float = 20.0) -> float:
        """Wait until the server is idle (below 0.1 cores for a second): after bookings the
        outbox relays, the audit and the mail outbox still work through a backlog."""
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

    # the three requests

    def healthz(self) -> Request:
        return lambda: self.pool.request("GET", "/healthz", None, self.citizen())

    def booking(self) -> Request:
        department = random.choice(self.departments)
        body: dict[str, Any] = {"start": random.choice(department.slots), "language": "de",
                                "request_id": str(uuid.uuid4())}
        if not department.anonymous:
            body |= {"display_name": "Bench Citizen", "email": "citizen@example.org"}
        data = json.dumps(body).encode()
        path = f"/api/v1/departments/{department.id}/appointments"
        return lambda: self.pool.request("POST", path, data, self.citizen())

    def search(self) -> Request:
        self._turn = (getattr(self, "_turn", -1) + 1) % len(self.departments)
        low, high = self.year()
        path = (f"/api/v1/departments/{self.departments[self._turn].id}/slots"
                f"?from={low.replace('+', '%2B')}&to={high.replace('+', '%2B')}")
        return lambda: self.pool.request("GET", path, None, self.citizen())

    async def measure(self) -> dict[str, Any]:
        a = self.args
        runs: dict[str, list[Phase]] = {"healthz": [], "book": [], "search": [],
                                        "healthz_search": []}
        cpu: dict[str, list[float]] = {"book": []}
        assert self.child
        for run in range(a.runs):
            await self.quiesce()
            runs["healthz"].append(
                await closed_loop(self.healthz, {200}, a.clients, a.duration, a.timeout))
            cpu0 = cpu_seconds_of_tree(self.child.pid)
            book = await closed_loop(self.booking, {201}, a.clients, a.duration, a.timeout)
            cpu["book"].append((cpu_seconds_of_tree(self.child.pid) - cpu0) / max(1, book.ok(201)))
            runs["book"].append(book)
            await self.quiesce()
            runs["healthz_search"].append(
                await closed_loop(self.healthz, {200}, a.search_clients, a.duration, a.timeout))
            runs["search"].append(
                await closed_loop(self.search, {200}, a.search_clients, a.duration, a.timeout))
            h, b, s = runs["healthz"][-1], book, runs["search"][-1]
            print(f"    run {run + 1}: /healthz {h.rate(200):7.1f}/s, "
                  f"bookings {b.rate(201):6.1f}/s ({dict(sorted(b.statuses.items()))}, "
                  f"{b.failures} failed), search p50 {_ms(pct(s.latencies, 50))} "
                  f"p99 {_ms(pct(s.latencies, 99))} (n={len(s.latencies)}, "
                  f"{s.failures} failed)", flush=True)
        return self.figures(runs, cpu)

    def figures(self, runs: dict[str, list[Phase]], cpu: dict[str, list[float]]) -> dict[str, Any]:
        def rates(name: str, code: int) -> list[float]:
            return [p.rate(code) for p in runs[name]]

        def q(name: str, quantile: float) -> list[float]:
            return [pct(p.latencies, quantile) or math.inf for p in runs[name]]

        bookings, healthz = rates("book", 201), rates("healthz", 200)
        return {
            "backend": self.backend,
            "departments": [d.slug for d in self.departments],
            "slots_per_year": {d.slug: len(d.slots) for d in self.departments},
            "bookings_per_s": spread(bookings),
            "healthz_per_s": spread(healthz),
            "bookings_to_healthz": spread([b / h for b, h in zip(bookings, healthz, strict=True)]),
            "booking_p50_s": spread(q("book", 50)),
            "booking_p99_s": spread(q("book", 99)),
            "booking_cpu_ms": spread([c * 1000 for c in cpu["book"]]),
            "booking_statuses": [p.statuses for p in runs["book"]],
            "booking_failures": [p.failures for p in runs["book"]],
            "search_p50_s": spread(q("search", 50)),
            "search_p99_s": spread(q("search", 99)),
            "search_per_s": spread(rates("search", 200)),
            "search_statuses": [p.statuses for p in runs["search"]],
            "search_failures": [p.failures for p in runs["search"]],
            "healthz_search_p50_s": spread(q("healthz_search", 50)),
            "healthz_search_p99_s": spread(q("healthz_search", 99)),
            "search_p50_to_healthz": spread([
                s / h for s, h in zip(q("search", 50), q("healthz_search", 50), strict=True)
            ]),
        }


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "never" if math.isinf(value) else f"{value * 1000:.1f} ms"


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    r = result
    print(f"  [{r['backend']}] (a) {shown(r['bookings_per_s'], 'bookings/s')} with "
          f"{args.clients} clients; /healthz {shown(r['healthz_per_s'], 'req/s')}; ratio "
          f"{shown(r['bookings_to_healthz'], '%', 100, 1)}")
    print(f"        booking p50 {shown(r['booking_p50_s'], 'ms', 1000)}, "
          f"p99 {shown(r['booking_p99_s'], 'ms', 1000)}; server CPU per booking "
          f"{shown(r['booking_cpu_ms'], 'ms')}")
    print(f"      (b) year search p50 {shown(r['search_p50_s'], 'ms', 1000)}, "
          f"p99 {shown(r['search_p99_s'], 'ms', 1000)} with {args.search_clients} clients; "
          f"/healthz p50 {shown(r['healthz_search_p50_s'], 'ms', 1000, 2)} under the same "
          f"load; slots per department {sorted(set(r['slots_per_year'].values()))}")


async def run_backend(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bb-booking-{backend}-"))
    try:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(postgres_database(args.postgres)) \
                if backend == "postgres" else None
            bench = Bench(args, workdir, backend, url)
            try:
                started = time.perf_counter()
                await bench.start()
                print(f"  [{backend}] up and 10 schedules set in "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
                result = await bench.measure()
            finally:
                bench.stop()
            report(result, args)
            return result
    finally:
        if args.keep:
            print(f"  kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def load() -> str:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def main(args: argparse.Namespace) -> None:
    backends = args.backends.split(",")
    if "postgres" in backends and not postgres_answers(args.postgres):
        print(f"  no PostgreSQL at {args.postgres}: SQLite only")
        backends.remove("postgres")
    started = time.perf_counter()
    print(f"  machine: {os.cpu_count()} cores, load average {load()} (other work included)")
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_before": load(),
        "revision": revision(),
        "argv": sys.argv[1:],
        "clients": args.clients,
        "search_clients": args.search_clients,
        "duration_s": args.duration,
        "runs": args.runs,
        "backends": [await run_backend(args, b) for b in backends],
    }
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["load_average_after"] = load()
    print(f"  whole bench {results['wall_s']:.0f} s; load average {load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--clients", type=int, default=16, help="concurrent booking citizens")
    parser.add_argument("--search-clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
