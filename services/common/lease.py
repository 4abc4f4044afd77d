"""A lease over a NATS KV bucket: at most one holder per key across all processes.

The bucket's TTL (its max age) is the lifetime of an entry. The holder rewrites
its entry about every third of that, each time on condition that the key is
still at the revision it wrote last; an entry nobody renews disappears, and
then another process's ``create`` wins. A holder that stops cleanly deletes
its entry, so a follower takes over at its next attempt.

Two holders at once can happen for a moment (a holder that stalled longer than
the TTL notices only at its next renewal); whatever the lease guards must
tolerate that, as the outbox relay does (the stream drops re-sent events).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Callable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.logging import get_logger

log = get_logger(__name__)

BUCKET = "bb_leases"


def holder_id() -> str:
    """Unique per process, and readable in the bucket: host, pid, a random part."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class Lease:
    def __init__(
        self,
        bus: Bus,
        key: str,
        ttl_seconds: float = 5.0,
        bucket: str = BUCKET,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.bus = bus
        self.key = key
        self.ttl = ttl_seconds
        self.bucket = bucket
        self.on_change = on_change
        self.holder = holder_id()
        self.healthy = False  # the last attempt to acquire or renew reached NATS
        self._value = self.holder.encode()
        self._held = asyncio.Event()
        self._revision: int | None = None
        self._renewed_at = 0.0
        self._kv: KeyValue | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._held.is_set()

    @property
    def fresh(self) -> bool:
        """Held, and renewed so recently that no other process can have taken it over.

        A holder that was stalled (a paused VM, a stopped process) still believes it
        holds the lease until its next renewal fails; this tells it not to act meanwhile.
        """
        return self.held and time.monotonic() - self._renewed_at < self.ttl * 2 / 3

    async def wait_held(self) -> None:
        await self._held.wait()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop renewing and give the lease up, so another process need not wait for the TTL."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._kv is not None and self._revision is not None:
            # Conditional: never delete an entry another holder wrote meanwhile.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._kv.delete(self.key, last=self._revision), 2.0)
        self._revision = None
        self._set(False)

    async def _run(self) -> None:
        while True:
            try:
                # Bounded, so that a holder cut off from NATS gives up before its entry expires.
                await asyncio.wait_for(self._step(), self.ttl / 3)
                self.healthy = True
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS unreachable, or the bucket gone with it
                self.healthy = False
                self._kv = None
                # Give up before the entry could expire: from then on another may hold it.
                if self.held and time.monotonic() - self._renewed_at > self.ttl / 2:
                    self._revision = None
                    self._set(False)
                log.warning("lease_attempt_failed", key=self.key, error=repr(error))
            await asyncio.sleep(self.ttl / 3)

    async def _step(self) -> None:
        """One attempt: renew what we hold, or try to take it."""
        kv = await self._bucket()
        if self._revision is not None:
            try:
                self._won(await kv.update(self.key, self._value, last=self._revision))
                return
            except KeyWrongLastSequenceError:
                pass  # expired or taken over; or our own write whose answer got lost
        try:
            self._won(await kv.create(self.key, self._value))
            return
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await kv.get(self.key)
        except KeyNotFoundError:  # expired just now: the next attempt may win
            entry = None
        if entry is not None and entry.value == self._value:
            self._won(await kv.update(self.key, self._value, last=entry.revision))
            return
        self._revision = None
        self._set(False)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            kv = await self.bus.key_value(self.bucket, self.ttl, in_memory=True)
            # The first process created the bucket: its TTL is the one that counts.
            status = await kv.status()
            if status.ttl:
                self.ttl = status.ttl
            self._kv = kv
        return self._kv

    def _won(self, revision: int) -> None:
        self._revision = revision
        self._renewed_at = time.monotonic()
        self._set(True)

    def _set(self, held: bool) -> None:
        if held == self.held:
            return
        if held:
            self._held.set()
        else:
            self._held.clear()
        log.info("lease_acquired" if held else "lease_released", key=self.key, holder=self.holder)
        if self.on_change is not None:
            self.on_change(held)
