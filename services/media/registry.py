"""Where media rooms live: a registry of replicas and room assignments in NATS KV.

* ``bb_media_replicas``: one key per live replica, ``{"url", "rooms", "peers"}``,
  rewritten every third of the bucket's TTL. A replica that stops beating
  disappears from the bucket when its last heartbeat is older than the TTL.
* ``bb_media_rooms``: one key per open media room (the consultation id), naming
  the replica that hosts it. Written with create-if-absent, so two replicas
  never both take a room; deleted when the room closes.

A new room goes to the live replica with the fewest assigned rooms (then the
fewest peers). Every replica watches the assignments and sweeps those whose
replica is gone: ``on_lost`` is called for each, so that the room is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats.errors
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.common.kvwatch import follow_bucket
from services.common.logging import get_logger
from services.common.tasks import BackgroundTasks

log = get_logger(__name__)

REPLICAS_BUCKET = "bb_media_replicas"
ROOMS_BUCKET = "bb_media_rooms"
LOOKUP_WAIT = 2.0  # seconds a look-up waits for NATS before this replica's own view answers
KEY_UNSAFE = re.compile(r"[^-_=.a-zA-Z0-9]")


class NoLiveReplica(RuntimeError):
    pass


def registry_key(name: str) -> str:
    return KEY_UNSAFE.sub("_", name)


@dataclass(frozen=True)
class Replica:
    replica_id: str
    url: str
    rooms: int
    peers: int


@dataclass(frozen=True)
class Assignment:
    consultation_id: str
    replica_id: str
    url: str
    revision: int = 0

    def to_bytes(self) -> bytes:
        return json.dumps({"replica_id": self.replica_id, "url": self.url}).encode()

    @classmethod
    def from_entry(cls, key: str, value: bytes, revision: int) -> Assignment:
        data = json.loads(value)
        return cls(key, data["replica_id"], data["url"], revision)


Load = Callable[[], tuple[int, int]]
LostRoom = Callable[[Assignment], Awaitable[None]]
Released = Callable[[str], Awaitable[None]]


class ReplicaRegistry:
    def __init__(self, bus: Bus, replica_id: str, url: str, ttl_seconds: float, load: Load) -> None:
        self.bus = bus
        self.replica_id = registry_key(replica_id)
        self.url = url
        self.ttl_seconds = ttl_seconds
        self._load = load
        self._replicas: KeyValue | None = None
        self._rooms: KeyValue | None = None
        self.assignments: dict[str, Assignment] = {}
        self._tasks = BackgroundTasks()
        self.on_lost: LostRoom | None = None
        self.on_released: Released | None = None
        self.last_beat = 0.0

    async def start(self) -> None:
        self._replicas = await self.bus.key_value(REPLICAS_BUCKET, self.ttl_seconds)
        self._rooms = await self.bus.key_value(ROOMS_BUCKET)
        await self.beat()
        rooms = self._rooms

        async def opened() -> KeyValue:
            return rooms

        self._tasks.start(
            "media-registry-assignments",
            follow_bucket(ROOMS_BUCKET, lambda: self.bus.nc, opened, self._assignment_seen),
        )
        self._tasks.start("media-registry-heartbeat", self._beat_and_sweep())

    async def stop(self) -> None:
        """Stop beating, then leave the bucket (after the last beat, not before it)."""
        await self._tasks.stop()
        if self._replicas is not None:
            with contextlib.suppress(Exception):
                await self._replicas.delete(self.replica_id)

    # -- replicas -------------------------------------------------------------------

    async def beat(self) -> None:
        assert self._replicas is not None
        rooms, peers = self._load()
        body = {"url": self.url, "rooms": rooms, "peers": peers}
        await self._replicas.put(self.replica_id, json.dumps(body).encode())
        self.last_beat = time.monotonic()

    async def live_replicas(self) -> dict[str, Replica]:
        assert self._replicas is not None
        try:
            keys = await self._replicas.keys()
        except NoKeysError:
            return {}
        replicas = {}
        for key in keys:
            with contextlib.suppress(KeyNotFoundError):
                entry = await self._replicas.get(key)
                if entry.value:
                    data = json.loads(entry.value)
                    replicas[key] = Replica(key, data["url"], data["rooms"], data["peers"])
        return replicas

    # -- rooms ----------------------------------------------------------------------

    async def assignment(self, consultation_id: str) -> Assignment | None:
        """As the bucket holds it; while NATS cannot be asked, as this replica last saw it
        (its watch of the bucket), so that a hosted room stays reachable."""
        assert self._rooms is not None
        try:
            entry = await asyncio.wait_for(self._rooms.get(consultation_id), LOOKUP_WAIT)
        except KeyNotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("media_assignment_from_memory", error=type(error).__name__)
            return self.assignments.get(consultation_id)
        if not entry.value:
            return None
        return Assignment.from_entry(consultation_id, entry.value, entry.revision or 0)

    async def assign(self, consultation_id: str) -> Assignment:
        """The room's replica: the one it has, else the least-loaded live one."""
        assert self._rooms is not None
        existing = await self.assignment(consultation_id)
        if existing is not None:
            return existing
        replica = self._least_loaded(await self.live_replicas())
        chosen = Assignment(consultation_id, replica.replica_id, replica.url)
        try:
            revision = await self._rooms.create(consultation_id, chosen.to_bytes())
        except KeyWrongLastSequenceError:
            taken = await self.assignment(consultation_id)  # another replica came first
            if taken is None:
                raise
            return taken
        taken = Assignment(consultation_id, replica.replica_id, replica.url, revision)
        self.assignments[consultation_id] = taken
        return taken

    async def reassign(self, lost: Assignment, exclude: str | None = None) -> Assignment:
        """Move a room away from its replica (lost, or stopping: ``exclude``) to the
        least-loaded live one. Compare-and-set on the assignment, so that when several
        replicas notice the same loss, one move wins and the others answer with it."""
        assert self._rooms is not None
        live = {k: r for k, r in (await self.live_replicas()).items()
                if k not in (lost.replica_id, exclude)}
        replica = self._least_loaded(live)
        key, current = lost.consultation_id, lost
        while True:
            try:
                revision = await self._rooms.update(
                    key, Assignment(key, replica.replica_id, replica.url).to_bytes(),
                    last=current.revision,
                )
                break
            except KeyWrongLastSequenceError:
                fresh = await self.assignment(key)
                if fresh is None:  # released meanwhile: the room closed
                    raise
                if fresh.replica_id != lost.replica_id:  # another replica moved it first
                    return fresh
                current = fresh  # we knew an older revision of the same assignment
        moved = Assignment(key, replica.replica_id, replica.url, revision)
        self.assignments[key] = moved
        return moved

    def _least_loaded(self, replicas: dict[str, Replica]) -> Replica:
        if not replicas:
            raise NoLiveReplica("no media replica is alive")
        assigned = Counter(a.replica_id for a in self.assignments.values())
        return min(replicas.values(), key=lambda r: (assigned[r.replica_id], r.peers, r.replica_id))

    async def release(self, consultation_id: str) -> None:
        assert self._rooms is not None
        self.assignments.pop(consultation_id, None)
        await self._rooms.delete(consultation_id)

    def rooms_of(self, replica_id: str) -> list[str]:
        return [c for c, a in self.assignments.items() if a.replica_id == replica_id]

    # -- background -----------------------------------------------------------------

    async def _assignment_seen(self, entry: KeyValue.Entry) -> None:
        """Followed across NATS restarts (kvwatch.py): a watch that waited for good after one
        left this replica blind to rooms assigned or released since."""
        if entry.operation in ("DEL", "PURGE") or not entry.value:
            gone = self.assignments.pop(entry.key, None)
            if gone is not None and gone.replica_id == self.replica_id:
                await self._notify(self.on_released, entry.key)
        else:
            self.assignments[entry.key] = Assignment.from_entry(
                entry.key, entry.value, entry.revision or 0
            )

    async def _beat_and_sweep(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_seconds / 3)
            try:
                await self.beat()
                await self._sweep_lost_rooms()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("media_registry_failed", error=repr(error))

    async def _sweep_lost_rooms(self) -> None:
        live = await self.live_replicas()
        if self.replica_id not in live:
            return  # we are the one cut off: do not judge others
        for assignment in list(self.assignments.values()):
            if assignment.replica_id not in live:
                log.warning(
                    "media_replica_lost",
                    replica=assignment.replica_id,
                    consultation=assignment.consultation_id,
                )
                await self._notify(self.on_lost, assignment)

    @staticmethod
    async def _notify(callback: Callable[..., Awaitable[None]] | None, *args: object) -> None:
        if callback is None:
            return
        try:
            await callback(*args)
        except Exception:
            log.exception("media_registry_callback_failed")
