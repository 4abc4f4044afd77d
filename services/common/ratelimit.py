"""Limits shared by every process of a service, kept by NATS.

* ``SharedRateLimit``: at most ``limit`` hits per key in a sliding window. A KV bucket
  (in memory) whose messages live ``window`` seconds, where a key keeps at most ``limit``
  of them and the server refuses one more (discard-new per subject): counting and
  checking are one publish, atomic across processes, no read before. A key's first hit
  in a window, as far as this process knows (its own hits, and others' it is told of
  with ``seen``), is counted without waiting for the answer: most keys (citizens) come
  once, and the wait is most of the cost. So at most one hit per process and key passes
  unchecked, and a key gets at most ``limit`` + processes - 1 hits in a window.
* ``SharedSlots``: at most ``limit`` holders of a key at once (e.g. open live streams
  per ticket). Slot n of a key is the KV entry ``<key>.<n>``, taken by creating it,
  renewed by compare-and-set every third of its lease, deleted when given back; the
  slot of a holder that died lapses with its lease.

While NATS cannot be asked, each process counts on its own (a client then gets at most
the limit per process) rather than refusing everyone or letting everyone through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import nats.errors
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.logging import get_logger

log = get_logger(__name__)

NATS_WAIT = 1.0  # seconds a request waits for NATS before this process decides alone
MAXIMUM_PER_SUBJECT = 10077  # JetStream's error code: the key holds its limit already
NATS_TROUBLE = (nats.errors.Error, TimeoutError, OSError)
LAST_KEPT = 100_000  # keys whose latest hit is remembered before lapsed ones are dropped


class SharedRateLimit:
    def __init__(self, bucket: str, limit: int, window_seconds: float) -> None:
        self.bucket = bucket
        self.limit = limit
        self.window = window_seconds
        self._bus: Bus | None = None
        self._local: dict[str, deque[float]] = defaultdict(deque)  # while NATS is away
        self._last: dict[str, float] = {}  # key -> its latest hit known here (time.time())

    def seen(self, key: str, at: float) -> None:
        """A hit of ``key`` at another process (told by what it stored)."""
        if at > self._last.get(key, 0.0):
            self._last[key] = at

    @property
    def stream(self) -> str:
        return f"KV_{self.bucket}"

    async def start(self, bus: Bus) -> None:
        if self.limit <= 0:
            return
        config = StreamConfig(
            name=self.stream,
            subjects=[f"$KV.{self.bucket}.>"],
            storage=StorageType.MEMORY,
            max_age=self.window,
            max_msgs_per_subject=self.limit,
            discard=DiscardPolicy.NEW,
            discard_new_per_subject=True,
            allow_direct=True,
            allow_rollup_hdrs=True,
            deny_delete=True,
            num_replicas=bus.replicas,
        )
        try:
            info = await bus.js.stream_info(self.stream)
        except NotFoundError:
            await bus.js.add_stream(config)
        else:  # the settings changed since it was made (several processes: the same change)
            now = info.config
            if (now.max_msgs_per_subject, now.max_age) != (self.limit, self.window) or (
                now.num_replicas or 1
            ) < bus.replicas:
                await bus.js.update_stream(replace(
                    config, num_replicas=max(bus.replicas, now.num_replicas or 1)
                ))
        self._bus = bus

    async def hit(self, key: str) -> int:
        """Count one hit for ``key``: 0 when it is within the limit, else the seconds
        until it would be (the hit is then not counted)."""
        if self.limit <= 0:
            return 0
        if self._bus is not None and self._bus.nc is not None and self._bus.connected:
            subject = f"$KV.{self.bucket}.{key}"
            now = time.time()
            last = self._last.get(key)
            self._last[key] = now
            if last is None or last <= now - self.window:
                self._forget_lapsed(now)
                try:  # counted in order before any later hit of this process is checked
                    await self._bus.nc.publish(subject, b"")
                    return 0
                except NATS_TROUBLE as error:
                    log.warning("rate_limit_unavailable", bucket=self.bucket, error=repr(error))
                    return self._hit_locally(key)
            try:
                # The stream's acknowledgement read raw: this runs on every knock, and the
                # client's parsing of it costs as much again as the request itself.
                reply = await self._bus.nc.request(subject, b"", timeout=NATS_WAIT)
            except NATS_TROUBLE as error:
                log.warning("rate_limit_unavailable", bucket=self.bucket, error=repr(error))
                return self._hit_locally(key)
            if b'"error"' not in reply.data:
                return 0
            if json.loads(reply.data)["error"].get("err_code") == MAXIMUM_PER_SUBJECT:
                return await self._until_room(subject)
            log.warning("rate_limit_unavailable", bucket=self.bucket, error=reply.data[:200])
        return self._hit_locally(key)

    def _forget_lapsed(self, now: float) -> None:
        if len(self._last) > LAST_KEPT:
            self._last = {k: t for k, t in self._last.items() if t > now - self.window}

    async def _until_room(self, subject: str) -> int:
        """When the oldest counted hit leaves the window."""
        assert self._bus is not None
        try:
            oldest = await asyncio.wait_for(
                self._bus.js.get_msg(self.stream, seq=1, subject=subject, next=True), NATS_WAIT
            )
        except (APIError, *NATS_TROUBLE):
            return math.ceil(self.window)
        age = (datetime.now(UTC) - oldest.time).total_seconds() if oldest.time else 0.0
        return max(1, math.ceil(self.window - age))

    def _hit_locally(self, key: str) -> int:
        now = time.monotonic()
        hits = self._local[key]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        if len(self._local) > 100_000:  # a long outage: keep only what still counts
            self._local = defaultdict(deque, {
                k: v for k, v in self._local.items() if v and v[-1] > now - self.window
            })
        return 0


@dataclass(eq=False)
class Slot:
    key: str
    entry: str | None = None  # the KV key held; None: counted by this process alone
    revision: int = 0
    released: bool = field(default=False)


class SharedSlots:
    def __init__(self, bucket: str, limit: int, lease_seconds: float = 60.0) -> None:
        self.bucket = bucket
        self.limit = limit
        self.lease = lease_seconds
        self._kv: KeyValue | None = None
        self._bus: Bus | None = None
        self._owner = uuid.uuid4().hex.encode()
        self._held: set[Slot] = set()
        self._local: dict[str, int] = defaultdict(int)  # slots counted without NATS
        self._renewer: asyncio.Task[None] | None = None

    async def start(self, bus: Bus) -> None:
        if self.limit <= 0:
            return
        self._kv = await bus.key_value(self.bucket, self.lease, in_memory=True)
        self._bus = bus
        self._renewer = asyncio.create_task(self._renew())

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        for slot in list(self._held):  # others may have them at once
            await self.release(slot)

    async def acquire(self, key: str) -> Slot | None:
        """A slot of ``key``, or None when all ``limit`` are held (by any process)."""
        if self.limit <= 0:
            return Slot(key)
        if self._kv is not None and self._bus is not None and self._bus.connected:
            try:
                return await asyncio.wait_for(self._acquire_shared(self._kv, key), NATS_WAIT * 3)
            except NATS_TROUBLE as error:
                log.warning("slots_unavailable", bucket=self.bucket, error=repr(error))
        if self._local[key] >= self.limit:
            return None
        self._local[key] += 1
        return Slot(key)

    async def _acquire_shared(self, kv: KeyValue, key: str) -> Slot | None:
        for n in range(self.limit):
            entry = f"{key}.{n}"
            try:
                revision = await kv.create(entry, self._owner)
            except KeyWrongLastSequenceError:
                continue  # held by someone
            slot = Slot(key, entry, revision)
            self._held.add(slot)
            return slot
        return None

    async def release(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        if slot.entry is None:
            self._local[slot.key] -= 1
            if self._local[slot.key] <= 0:
                del self._local[slot.key]
            return
        self._held.discard(slot)
        if self._kv is not None:
            try:
                await asyncio.wait_for(self._kv.delete(slot.entry, last=slot.revision), NATS_WAIT)
            except (KeyWrongLastSequenceError, *NATS_TROUBLE):
                pass  # lapsed and taken by another meanwhile, or NATS away: it lapses

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            assert self._kv is not None
            for slot in list(self._held):
                try:
                    slot.revision = await asyncio.wait_for(
                        self._kv.update(slot.entry or "", self._owner, last=slot.revision),
                        NATS_WAIT,
                    )
                except KeyWrongLastSequenceError:
                    self._held.discard(slot)  # lapsed (NATS was away): no longer counted
                except NATS_TROUBLE as error:
                    log.warning("slot_not_renewed", bucket=self.bucket, error=repr(error))
