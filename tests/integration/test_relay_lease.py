"""Replicas of a service on one shared store: only the lease holder relays its outbox.

Each replica here is what a process has: its own application on the shared SQLite
file, its own NATS connection and its own relay. The relays poll only every
minute, so whatever reaches the stream sooner came through a wake-up.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from services.common.bus import Bus
from services.common.contracts import IntegrationEvent
from services.common.eventstore import store_env
from services.common.lease import BUCKET
from services.common.natsserver import EmbeddedNats
from services.common.outbox import OutboxRelay
from services.common.settings import Settings
from services.rooms.application import Rooms, to_contract
from tests.unit.support import CID, seeded

SLOW_POLL = 60.0


class CountingBus(Bus):
    """Remembers the ids of every event this replica published."""

    def __init__(self, servers: str) -> None:
        super().__init__(servers, name="rooms")
        self.published: list[str] = []

    async def publish(self, events: Sequence[IntegrationEvent]) -> int:
        self.published.extend(str(e.event_id) for e in events)
        return await super().publish(events)


class Replica:
    def __init__(self, url: str, data_dir: Path, ttl: float) -> None:
        self.app = Rooms(store_env(Settings(data_dir=data_dir, database_url=None), "rooms"))
        self.bus = CountingBus(url)
        self.relay = OutboxRelay(
            self.app, self.bus, to_contract, "rooms", poll_seconds=SLOW_POLL, lease_ttl_seconds=ttl
        )

    async def start(self) -> Replica:
        await self.bus.connect()
        self.relay.start()
        await self.relay.serve_reads()
        return self

    async def stop(self) -> None:
        await self.relay.stop()
        await self.bus.close()
        await asyncio.to_thread(self.app.close)

    async def crash(self) -> None:
        """As after a kill -9: no last confirmation, the lease not given up."""
        for task in (self.relay._task, self.relay.lease._task):
            assert task is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert self.bus.nc is not None
        await self.bus.nc.close()
        await asyncio.to_thread(self.app.close)

    async def register(self, *slugs: str) -> None:
        demo = seeded("demo")
        for slug in slugs:
            await asyncio.to_thread(
                self.app.register_department, slug, demo["profile"], demo["weekly"], [], CID
            )

    def stored(self) -> set[str]:
        """Ids of every integration event in the shared store."""
        notifications = self.app.notification_log.select(start=1, limit=1000)
        contracts = (self.relay._contract(n) for n in notifications)
        return {str(c.event_id) for c in contracts if c is not None}


async def until(check: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s")
        await asyncio.sleep(0.05)


async def in_stream(url: str) -> Counter[str]:
    """How often each event id is on the stream."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        state = (await js.stream_info("BB")).state
        if not state.messages:
            return Counter()
        found: Counter[str] = Counter()
        for seq in range(state.first_seq, state.last_seq + 1):
            msg = await js.get_msg("BB", seq)
            if msg.subject.startswith("bb.rooms."):
                found[json.loads(msg.data or b"{}")["event_id"]] += 1
        return found
    finally:
        await nc.close()


async def until_relayed(url: str, replica: Replica, timeout: float = 15.0) -> None:
    """Every stored event is on the stream, each exactly once."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stored = await asyncio.to_thread(replica.stored)
        found = await in_stream(url)
        assert all(n == 1 for n in found.values()), found
        if set(found) == stored:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"missing from the stream: {stored - set(found)}")
        await asyncio.sleep(0.1)


async def test_only_the_lease_holder_relays_and_follower_commits_wake_it(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    leader = await Replica(nats_server.url, tmp_path, ttl=3.0).start()
    await until(lambda: leader.relay.lease.held)
    follower = await Replica(nats_server.url, tmp_path, ttl=3.0).start()
    await until(lambda: follower.relay.lease.healthy)
    try:
        assert not follower.relay.lease.held
        assert follower.relay.healthy and leader.relay.healthy  # both ready

        await leader.register("a1", "a2")
        await until_relayed(nats_server.url, leader)
        # Stored through the follower, relayed by the leader long before its next poll.
        await follower.register("b1", "b2", "b3")
        await until_relayed(nats_server.url, leader, timeout=10.0)

        assert follower.bus.published == []
        assert set(leader.bus.published) == await asyncio.to_thread(leader.stored)
        assert leader.relay.lease.held and not follower.relay.lease.held
    finally:
        await follower.stop()
        await leader.stop()


async def test_a_crashed_leader_is_replaced_and_nothing_is_lost_or_doubled(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    leader = await Replica(nats_server.url, tmp_path, ttl=1.5).start()
    await until(lambda: leader.relay.lease.held)
    follower = await Replica(nats_server.url, tmp_path, ttl=1.5).start()
    try:
        await leader.register("a1", "a2", "a3")
        await until_relayed(nats_server.url, leader)
        await leader.crash()
        # Stored while the dead leader's lease lives on: nobody relays it yet.
        await follower.register("b1", "b2")

        await until(lambda: follower.relay.lease.held)
        await until_relayed(nats_server.url, follower)
        await follower.register("b3")
        await until_relayed(nats_server.url, follower, timeout=10.0)
        assert follower.relay.healthy
    finally:
        await follower.stop()


async def test_a_leader_that_stops_hands_over_from_its_confirmed_position(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    leader = await Replica(nats_server.url, tmp_path, ttl=6.0).start()
    await until(lambda: leader.relay.lease.held)
    follower = await Replica(nats_server.url, tmp_path, ttl=6.0).start()
    try:
        await leader.register("a1", "a2")
        await until_relayed(nats_server.url, leader)
        position = leader.relay.position
        await leader.stop()
        assert not await _lease_entry_exists(nats_server.url, "outbox.rooms")

        await until(lambda: follower.relay.lease.held)
        await until(lambda: follower.relay.position == position)
        assert follower.bus.published == []  # nothing re-sent: the position was confirmed
        await follower.register("b1")
        await until_relayed(nats_server.url, follower, timeout=10.0)
        assert len(follower.bus.published) == 2  # Registered, OpeningHoursSet
    finally:
        await follower.stop()


async def test_a_stalled_leader_publishes_nothing_once_another_may_lead(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    leader = await Replica(nats_server.url, tmp_path, ttl=1.5).start()
    await until(lambda: leader.relay.lease.held)
    follower = await Replica(nats_server.url, tmp_path, ttl=1.5).start()
    try:
        await leader.register("a1")
        await until_relayed(nats_server.url, leader)
        before = set(leader.bus.published)
        # Its renewals stop (as in a paused process); it still believes it holds the lease.
        task = leader.relay.lease._task
        assert task is not None
        task.cancel()
        await until(lambda: not leader.relay.lease.fresh)
        assert leader.relay.lease.held

        await leader.register("a2")
        await until(lambda: follower.relay.lease.held)
        await until_relayed(nats_server.url, follower)
        assert set(leader.bus.published) == before
        await leader.stop()  # must not delete the follower's entry
        assert await _lease_entry_exists(nats_server.url, "outbox.rooms")
        assert follower.relay.lease.held
    finally:
        await follower.stop()


async def test_the_lease_comes_back_after_a_nats_restart_that_lost_its_bucket(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    replica = await Replica(nats_server.url, tmp_path, ttl=1.5).start()
    try:
        await until(lambda: replica.relay.lease.held)
        nats_server.kill()  # the in-memory lease bucket goes with it
        await replica.register("a1")
        await until(lambda: not replica.relay.lease.held)
        nats_server.start()
        await until(lambda: replica.relay.lease.held, timeout=30.0)
        await until_relayed(nats_server.url, replica, timeout=30.0)
        await until(lambda: replica.relay.healthy)
    finally:
        await replica.stop()


async def _lease_entry_exists(url: str, key: str) -> bool:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(BUCKET)
        try:
            await kv.get(key)
        except KeyNotFoundError:
            return False
        return True
    finally:
        await nc.close()
