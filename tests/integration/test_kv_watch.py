"""A KV bucket followed across a restart of the NATS server (services/common/kvwatch.py):
a plain nats-py watch waits for good after the restart and misses every later entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.kvwatch import follow_bucket
from services.common.natsserver import EmbeddedNats

pytestmark = pytest.mark.timeout(60)

BUCKET = "t_followed"


@pytest.fixture
async def buses(nats_server: EmbeddedNats) -> AsyncIterator[tuple[Bus, Bus]]:
    follower, writer = Bus(nats_server.url, "queue"), Bus(nats_server.url, "queue")
    await follower.connect()
    await writer.connect()
    yield follower, writer
    await follower.close()
    await writer.close()


async def until(condition: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def put_when_back(bus: Bus, key: str, value: bytes) -> None:
    """Write once the writer has reconnected (the in-memory bucket made anew)."""
    async with asyncio.timeout(20):
        while True:
            try:
                bucket = await bus.key_value(BUCKET, in_memory=True)
                await bucket.put(key, value)
                return
            except Exception:
                await asyncio.sleep(0.2)


async def test_a_followed_bucket_is_followed_again_after_nats_restarts(
    nats_server: EmbeddedNats, buses: tuple[Bus, Bus]
) -> None:
    follower, writer = buses
    seen: dict[str, bytes | None] = {}  # a deleted key: None
    loads: list[int] = []

    async def entry_seen(entry: KeyValue.Entry) -> None:  # awaited (a sync one is called)
        seen[entry.key] = entry.value if not entry.operation else None

    async def open_bucket() -> KeyValue:
        return await follower.key_value(BUCKET, in_memory=True)

    following = asyncio.create_task(
        follow_bucket(
            BUCKET,
            lambda: follower.nc,
            open_bucket,
            entry_seen,
            lambda: loads.append(1),
        )
    )
    try:
        await put_when_back(writer, "before", b"1")
        await until(lambda: seen.get("before") == b"1" and loads)

        nats_server.restart()  # the in-memory bucket is gone with the server
        await put_when_back(writer, "after", b"2")
        await until(lambda: seen.get("after") == b"2")
        assert len(loads) >= 2  # watched anew, from what the bucket held

        bucket = await writer.key_value(BUCKET, in_memory=True)
        await bucket.delete("after")
        await until(lambda: "after" in seen and seen["after"] is None)
    finally:
        following.cancel()
        with pytest.raises(asyncio.CancelledError):
            await following
