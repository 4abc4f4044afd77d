"""``/readyz`` means ready: 503 until a process's views have caught up with the stream, and
while NATS or its store cannot be reached; in every process of ``up``'s tree."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking
from nats.js.api import AckPolicy, ConsumerConfig

from services.common.bus import Bus
from services.common.eventstore import ServiceApplication
from services.common.readiness import CatchUp
from services.rooms import seed
from tests.conftest import ROOT, SystemProcess
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(180)


class Thing(Aggregate):
    """Something stored, for the relay to publish."""


def _status(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0  # not listening (yet)


def _start_and_watch(system: SystemProcess, timeout: float = 60.0) -> list[int]:
    """Start ``system`` without waiting for it; poll /readyz until it first answers 200 and
    check the department list right then. Returns every status seen on the way."""
    system.data_dir.mkdir(parents=True, exist_ok=True)
    log = system.log_path.open("ab")
    system.process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", *system.args, "--port", str(system.port)],
        cwd=ROOT, env=system.env, stdout=log, stderr=log,
    )
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert system.process.poll() is None, system.log_path.read_text()[-3000:]
        seen.append(_status(system.base))
        if seen[-1] == 200:
            departments = httpx.get(f"{system.base}/api/v1/departments", timeout=5).json()
            assert len(departments) == len(seed.DEPARTMENTS), departments
            assert [d["open"] for d in departments if d["slug"] == "demo"] == [True]
            return seen
        time.sleep(0.02)
    raise AssertionError(f"never ready: {seen[-5:]} {system.log_path.read_text()[-3000:]}")


def _tree_ports(pid: int) -> dict[str, int]:
    """The core process's port and each queue process's private port, from their command
    lines (``up`` picks them)."""
    ports: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
            if "serve" not in argv:
                continue
            if "--private-port" in argv:
                ports[f"queue-{child}"] = int(argv[argv.index("--private-port") + 1])
            else:
                ports["core"] = int(argv[argv.index("--port") + 1])
    return ports


def test_one_process_ready_only_with_every_office(tmp_path, nats_server) -> None:  # type: ignore[no-untyped-def]
    system = SystemProcess(
        tmp_path / "data", nats_server.url, args=["up", "--queue-processes", "0"]
    )
    try:
        _start_and_watch(system)
    finally:
        system.stop()


def test_every_process_of_the_tree_follows_nats(tmp_path, nats_server) -> None:  # type: ignore[no-untyped-def]
    system = SystemProcess(
        tmp_path / "data", nats_server.url, args=["up", "--queue-processes", "1"]
    )
    try:
        _start_and_watch(system)
        assert system.process is not None
        ports = _tree_ports(system.process.pid)
        assert sorted(p.split("-")[0] for p in ports) == ["core", "queue"], ports
        urls = [system.base, *(f"http://127.0.0.1:{port}" for port in ports.values())]
        assert [_status(url) for url in urls] == [200] * len(urls)

        nats_server.kill()
        eventually(lambda: all(_status(url) == 503 for url in urls), 60)
        detail = httpx.get(f"{urls[-1]}/readyz", timeout=5).json()
        assert detail["checks"]["queue.nats"] is False, detail

        nats_server.start()
        eventually(lambda: all(_status(url) == 200 for url in urls), 60)
    finally:
        system.stop()


@pytest.mark.postgres
def test_unready_while_the_database_refuses(tmp_path, nats_server, postgres_url) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    system = SystemProcess(
        tmp_path / "data", nats_server.url, env={"BB_DATABASE_URL": postgres_url},
        args=["up", "--queue-processes", "0"],
    )
    database = postgres_url.rsplit("/", 1)[1]
    admin_url = postgres_url.rsplit("/", 1)[0] + "/postgres"
    try:
        _start_and_watch(system)
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
        try:
            eventually(lambda: _status(system.base) == 503, 60)
            checks = httpx.get(f"{system.base}/readyz", timeout=5).json()["checks"]
            assert checks["queue.store"] is False, checks
        finally:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        # Ready again once the database takes connections: every store, and the audit
        # log's own connections too (they reconnect; they used to stay broken for good).
        eventually(lambda: _status(system.base) == 200, 90)
    finally:
        system.stop()


async def test_catch_up_waits_for_the_backlog_and_then_holds(nats_server) -> None:  # type: ignore[no-untyped-def]
    """What /readyz asks, without racing a starting process: a consumer with messages
    pending is not caught up, and one that caught up once stays so."""
    bus = Bus(nats_server.url, name="readiness-test")
    await bus.connect()
    app = ServiceApplication()
    try:
        startup = CatchUp(app, "BB")
        await bus.js.add_consumer("BB", ConsumerConfig(
            durable_name="slow", ack_policy=AckPolicy.EXPLICIT, filter_subject="bb.test.>"))
        for n in range(3):
            await bus.js.publish(f"bb.test.{n}", b"{}")
        assert not await startup.consumers(bus.js, ["slow"])
        assert not await startup.consumers(bus.js, ["not-created-yet"])

        subscription = await bus.js.pull_subscribe_bind("slow", stream="BB")
        for message in await subscription.fetch(3, timeout=5):
            await message.ack_sync()
        assert await startup.consumers(bus.js, ["slow"])
        await bus.js.publish("bb.test.later", b"{}")
        assert await startup.consumers(bus.js, ["slow"])  # remembered: a later backlog is load

        # The relay: caught up once it published the store's newest event, or (not leading)
        # once the leader confirmed that in the shared store.
        app.save(Thing())
        assert not await startup.relay(held=True, position=0, tracking_name="outbox:test")
        assert not await startup.relay(held=False, position=0, tracking_name="outbox:test")
        app.recorder.insert_tracking(Tracking("outbox:test", 1))
        assert await startup.relay(held=False, position=0, tracking_name="outbox:test")
    finally:
        await bus.close()
        app.close()

