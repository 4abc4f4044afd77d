"""Reading the whole JetStream stream back, to count what arrived."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import nats


async def _read_all(url: str, stream: str = "BB") -> list[tuple[str, dict[str, Any], str]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    info = await js.stream_info(stream)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            continue
        headers = msg.headers or {}
        subject = msg.subject or ""
        found.append((subject, json.loads(msg.data or b"{}"), headers.get("Nats-Msg-Id", "")))
    await nc.close()
    return found


def stream_messages(url: str) -> list[tuple[str, dict[str, Any], str]]:
    return asyncio.run(_read_all(url))


def duplicates(url: str) -> dict[str, int]:
    counts = Counter(event["event_id"] for _, event, _ in stream_messages(url))
    return {event_id: n for event_id, n in counts.items() if n > 1}


def count_of(url: str, subject: str) -> int:
    return sum(1 for s, _, _ in stream_messages(url) if s == subject)


async def _kv_keys(url: str, bucket: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(bucket)
        try:
            return list(await kv.keys())
        except nats.js.errors.NoKeysError:
            return []
    finally:
        await nc.close()


def kv_keys(url: str, bucket: str) -> list[str]:
    """The keys a KV bucket holds now."""
    return asyncio.run(_kv_keys(url, bucket))
