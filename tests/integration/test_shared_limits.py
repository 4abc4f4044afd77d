"""The platform's shared limits (services/common/ratelimit.py) on a real NATS server, with
two instances standing for two processes of one service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from services.common.bus import Bus
from services.common.natsserver import EmbeddedNats
from services.common.ratelimit import SharedRateLimit, SharedSlots

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def buses(nats_server: EmbeddedNats) -> AsyncIterator[tuple[Bus, Bus]]:
    first, second = Bus(nats_server.url, "queue"), Bus(nats_server.url, "queue")
    await first.connect()
    await second.connect()
    yield first, second
    await first.close()
    await second.close()


async def test_a_rate_limit_holds_across_processes(buses: tuple[Bus, Bus]) -> None:
    here, there = SharedRateLimit("t_rate", 10, 60.0), SharedRateLimit("t_rate", 10, 60.0)
    await here.start(buses[0])
    await there.start(buses[1])
    # Alternating between the processes, as consecutive connections do.
    answers = [await (here if n % 2 else there).hit("client-a") for n in range(14)]
    assert answers[:10] == [0] * 10
    assert all(1 <= wait <= 60 for wait in answers[10:]), answers

    # Another key is not held up by it.
    assert await there.hit("client-b") == 0


async def test_a_first_hit_unchecked_is_the_bound(buses: tuple[Bus, Bus]) -> None:
    """A process's first hit of a key in a window is counted without waiting for the
    answer: a key gets at most limit + processes - 1; told of the key's hits elsewhere
    (as the queue is, by the visit data it follows), a process checks at once."""
    here, there = SharedRateLimit("t_bound", 3, 60.0), SharedRateLimit("t_bound", 3, 60.0)
    await here.start(buses[0])
    await there.start(buses[1])
    assert [await here.hit("k") for _ in range(4)][:3] == [0, 0, 0]
    assert await there.hit("k") == 0  # the one unchecked: 4 = 3 + 2 - 1
    assert await there.hit("k") > 0

    told = SharedRateLimit("t_bound", 3, 60.0)
    await told.start(buses[1])
    told.seen("k", time.time())
    assert await told.hit("k") > 0


async def test_slots_hold_across_processes_and_come_back(buses: tuple[Bus, Bus]) -> None:
    here, there = SharedSlots("t_slots", 2, 3.0), SharedSlots("t_slots", 2, 3.0)
    await here.start(buses[0])
    await there.start(buses[1])
    first = await here.acquire("ticket")
    second = await there.acquire("ticket")
    assert first is not None and second is not None
    assert await here.acquire("ticket") is None and await there.acquire("ticket") is None
    assert await there.acquire("another ticket") is not None

    await here.release(first)
    again = await there.acquire("ticket")
    assert again is not None

    # A holder that dies without giving its slot back: the slot lapses with its lease.
    await there.stop()  # gives back what it holds (a clean stop)
    dying = SharedSlots("t_slots", 2, 3.0)
    await dying.start(buses[1])
    assert await dying.acquire("ticket") is not None
    assert await dying.acquire("ticket") is not None
    assert dying._renewer is not None
    dying._renewer.cancel()  # died: no renewal, no release
    assert await here.acquire("ticket") is None
    for _ in range(100):  # the lease is 3 s
        if (await here.acquire("ticket")) is not None:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("a dead holder's slot never lapsed")
    await here.stop()
