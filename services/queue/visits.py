"""What citizens type when they knock (name, language, topic): short-lived, never in the
durable record.

Kept in memory by every replica and in a TTL bucket of NATS (in memory too: it never
touches a disk). After a restart of every NATS server staff see only the number.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.kvwatch import follow_bucket
from services.common.logging import get_logger
from services.queue.floods import KnockLimits

log = get_logger(__name__)

VISITS_BUCKET = "bb_visits"
STORED_AT = "_stored_at"


class Visits:
    def __init__(
        self, ttl_seconds: float, limits: KnockLimits, still_waiting: Callable[[UUID], bool]
    ) -> None:
        self._ttl = ttl_seconds
        self._limits = limits  # told which client knocked where, and when
        self._still_waiting = still_waiting
        self._bucket: KeyValue | None = None
        self._bus: Bus | None = None
        self._cache: dict[UUID, tuple[float, dict[str, Any]]] = {}

    async def open(self, bus: Bus) -> None:
        self._bus = bus
        await self._open_bucket()

    async def _open_bucket(self) -> KeyValue:
        """The bucket, created anew where it is gone (it lives in memory: a restarted NATS
        server has lost it)."""
        assert self._bus is not None
        self._bucket = await self._bus.key_value(VISITS_BUCKET, self._ttl, in_memory=True)
        return self._bucket

    async def remember(
        self, ticket_id: UUID, data: dict[str, Any], *, only_if_new: bool = False
    ) -> bool:
        """Kept here and in the TTL bucket; a NATS outage loses only other replicas' view.

        ``only_if_new``: not when the bucket holds the ticket's data already (a knock sent
        again keeps what the first one stored); False then."""
        stored = time.time()
        assert self._bucket is not None
        # With the time it was stored: another replica keeps its copy no longer than we do.
        shared = json.dumps({**data, STORED_AT: stored}).encode()
        write = self._bucket.create if only_if_new else self._bucket.put
        try:
            await asyncio.wait_for(write(str(ticket_id), shared), 2)
        except KeyWrongLastSequenceError:
            return False
        except Exception as error:
            log.warning("visit_data_not_shared", error=repr(error))
        self._keep(ticket_id, stored, data)
        return True

    async def follow(self) -> None:
        """Keep what citizens typed at any replica, as it is stored (a watch of the bucket):
        a staff member's line never waits for a look-up, however busy the door."""
        assert self._bus is not None
        bus = self._bus
        await follow_bucket(
            VISITS_BUCKET,
            lambda: bus.nc,
            self._open_bucket,
            lambda entry: self._seen(entry.key, entry.value, entry.operation),
        )

    def _seen(self, key: str, value: bytes | None, operation: str | None) -> None:
        ticket_id = UUID(key)
        if operation in ("DEL", "PURGE") or not value:
            self._drop(ticket_id)
            return
        data: dict[str, Any] = json.loads(value)
        stored = float(data.pop(STORED_AT, time.time()))
        if time.time() - stored < self._ttl:
            self._keep(ticket_id, stored, data)

    def _keep(self, ticket_id: UUID, stored: float, data: dict[str, Any]) -> None:
        self._cache[ticket_id] = (stored, data)
        self._limits.seen(ticket_id, data, stored)  # which client knocked where, and when

    def _drop(self, ticket_id: UUID) -> None:
        self._cache.pop(ticket_id, None)
        self._limits.forget(ticket_id)

    async def forget(self, ticket_id: UUID) -> None:
        self._drop(ticket_id)
        assert self._bucket is not None
        try:
            await asyncio.wait_for(self._bucket.delete(str(ticket_id)), 2)
        except Exception as error:
            log.warning("visit_data_not_deleted", error=repr(error))

    async def get(self, ticket_id: UUID) -> dict[str, Any] | None:
        cached = self._cache.get(ticket_id)
        if cached and time.time() - cached[0] < self._ttl:
            return cached[1]
        assert self._bucket is not None
        try:
            entry = await asyncio.wait_for(self._bucket.get(str(ticket_id)), 2)
        except KeyNotFoundError:
            return None
        except Exception as error:
            log.warning("visit_data_unavailable", error=repr(error))
            return None
        if entry.value is None:
            return None
        data: dict[str, Any] = json.loads(entry.value)
        stored = float(data.pop(STORED_AT, time.time()))
        if time.time() - stored >= self._ttl:
            return None  # the bucket has not removed it yet
        self._keep(ticket_id, stored, data)
        return data

    def forget_expired(self) -> None:
        cutoff = time.time() - self._ttl
        for ticket_id, (stored, _) in list(self._cache.items()):
            if stored < cutoff or not self._still_waiting(ticket_id):
                self._drop(ticket_id)
