"""Live streams: each citizen's own ticket, and each department's line for its staff.

Changes arrive from any thread (a local commit) or from NATS (another
replica); they are handled one batch after another on the event loop and
fanned out to the open streams' queues. Which staff are on duty is shared
between the replicas (``StaffPresence``). Nothing here is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

from prometheus_client import Gauge

from services.common.logging import get_logger
from services.common.tasks import BackgroundTasks
from services.queue.view import WaitingView
from services.queue.waiting import Change

log = get_logger(__name__)

OPEN_STREAMS = Gauge(
    "bb_queue_open_streams", "Open live streams", ["kind"], multiprocess_mode="livesum"
)
STREAM_BUFFER = 100
KEEPALIVE_SECONDS = 15.0
PRESENCE_SECONDS = 5.0
PRESENCE_BEATS_KEPT = 3  # another replica's staff count until this many beats are missed

Message = tuple[str, dict[str, Any]]  # (SSE event name, data)
PING: Message = ("ping", {})
StatusOf = Callable[[UUID], Awaitable[dict[str, Any] | None]]
StaffEntryOf = Callable[[Change], Awaitable[dict[str, Any] | None]]
SendPresence = Callable[[bytes], Awaitable[None]]
Shares = dict[UUID, frozenset[str]]  # department -> staff ids


class StaffPresence:
    """Who is on duty in which department, across all replicas of the queue.

    Each replica shares the staff ids of its own open staff streams per department
    (nothing else about them) on core NATS, never stored: on every change and every
    ``every`` seconds. Another replica's share counts until ``PRESENCE_BEATS_KEPT`` of
    its beats are missed (a replica that died), or until it says it is leaving.
    Not thread-safe: used on the event loop only.
    """

    def __init__(self, replica: str | None = None, every: float = PRESENCE_SECONDS) -> None:
        self.replica = replica or uuid4().hex
        self.every = every
        self.local: Shares = {}
        self._remote: dict[str, tuple[float, Shares]] = {}  # replica -> (counts until, shares)
        self._counts: dict[UUID, int] = {}

    def on_duty(self, department_id: UUID) -> int:
        """Distinct staff ids with a stream open on any replica."""
        return self._counts.get(department_id, 0)

    def share_local(self, local: Shares) -> set[UUID]:
        """This replica's staff now; answers the departments whose count changed."""
        touched = set(self.local) | set(local)
        self.local = local
        return self._recount(touched)

    def received(self, data: bytes, now: float) -> tuple[set[UUID], bool]:
        """Another replica's share: (departments whose count changed, is it new to us)."""
        body = json.loads(data)
        replica = str(body["replica"])
        if replica == self.replica:
            return set(), False
        shares = {UUID(d): frozenset(map(str, ids)) for d, ids in body["departments"].items()}
        before = self._remote.pop(replica, None)
        leaving = bool(body.get("leaving"))
        if not leaving:
            until = now + PRESENCE_BEATS_KEPT * float(body["every"])
            self._remote[replica] = (until, shares)
        touched = set(shares) | set(before[1] if before else ())
        return self._recount(touched), before is None and not leaving

    def expire(self, now: float) -> set[UUID]:
        """Forget replicas not heard of for too long; answers the departments that changed."""
        touched: set[UUID] = set()
        for replica, (until, shares) in list(self._remote.items()):
            if until <= now:
                del self._remote[replica]
                touched |= set(shares)
        return self._recount(touched)

    def beat(self, leaving: bool = False) -> bytes:
        departments = {} if leaving else {str(d): sorted(ids) for d, ids in self.local.items()}
        body = {
            "replica": self.replica,
            "every": self.every,
            "departments": departments,
            "leaving": leaving,
        }
        return json.dumps(body).encode()

    def _recount(self, departments: set[UUID]) -> set[UUID]:
        changed: set[UUID] = set()
        for department_id in departments:
            staff = set(self.local.get(department_id, ()))
            for _, shares in self._remote.values():
                staff |= shares.get(department_id, frozenset())
            if len(staff) != self._counts.get(department_id, 0):
                changed.add(department_id)
                self._counts[department_id] = len(staff)
        return changed


class LiveHub:
    """Subscribes to the waiting view; ``status_of`` and ``staff_entry_of`` add what the view
    does not hold (expected waits, what the citizen typed). Its loops run in ``tasks``."""

    def __init__(
        self,
        view: WaitingView,
        status_of: StatusOf,
        staff_entry_of: StaffEntryOf,
        tasks: BackgroundTasks,
        send_presence: SendPresence | None = None,
        presence: StaffPresence | None = None,
    ) -> None:
        self._view = view
        self._status_of = status_of
        self._staff_entry_of = staff_entry_of
        self._tickets: dict[UUID, set[asyncio.Queue[Message]]] = defaultdict(set)
        self._staff: dict[UUID, dict[asyncio.Queue[Message], str]] = defaultdict(dict)
        self._last_sent: dict[asyncio.Queue[Message], dict[str, Any]] = {}
        self._pending: asyncio.Queue[list[Change] | tuple[str, Any]] = asyncio.Queue()
        self.presence = presence or StaffPresence()
        self._send_presence = send_presence
        self._share_now = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        tasks.start("live_fan_out", self._work())
        tasks.start("live_keep_alive", self._keep_alive())
        tasks.start("live_presence", self._share_presence())
        view.on_change(self.changes_happened)

    async def close(self) -> None:
        if self._send_presence:  # the others stop counting our staff at once
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send_presence(self.presence.beat(leaving=True)), 1)

    async def _keep_alive(self) -> None:
        """A comment line now and then on every stream, so proxies keep idle streams open
        (one timer for all streams, not one per stream)."""
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            for queues in [*self._tickets.values(), *self._staff.values()]:
                for queue in queues:
                    if not queue.full():
                        queue.put_nowait(PING)

    # -- input -----------------------------------------------------------------------------

    def changes_happened(self, changes: list[Change]) -> None:
        """Thread-safe: called after a local commit or an event from the bus."""
        self._loop.call_soon_threadsafe(self._pending.put_nowait, changes)

    def consultation_ready(
        self, ticket_id: UUID, department_id: UUID, details: dict[str, Any]
    ) -> None:
        """The citizen's stream refreshes; the department's staff learn where to go."""
        self._loop.call_soon_threadsafe(self._pending.put_nowait, ("ticket", ticket_id))
        self._loop.call_soon_threadsafe(
            self._tell_department, department_id, ("consultation", details)
        )

    def message(self, department_id: UUID | None, ticket_id: UUID | None, text: str) -> None:
        data = {"text": text}
        if ticket_id is not None:
            self._send_ticket(ticket_id, ("message", data))
        elif department_id is not None:
            for waiting_id in self._view.waiting_ids(department_id):
                self._send_ticket(waiting_id, ("message", data))

    def staff_on_duty(self, department_id: UUID) -> int:
        return self.presence.on_duty(department_id)

    def presence_arrived(self, data: bytes) -> None:
        """Another replica's staff (on the event loop)."""
        changed, new = self.presence.received(data, time.monotonic())
        self._staffing_changed(changed)
        if new:  # a replica that just started learns ours without waiting for a beat
            self._share_now.set()

    # -- staff on duty ----------------------------------------------------------------------

    async def _share_presence(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._share_now.wait(), self.presence.every)
            self._share_now.clear()
            self._staffing_changed(self.presence.expire(time.monotonic()))
            if self._send_presence:
                try:
                    await self._send_presence(self.presence.beat())
                except Exception as error:  # NATS away: the next beat tries again
                    log.warning("presence_not_shared", error=repr(error))

    def _local_staff_changed(self) -> None:
        local = {d: frozenset(streams.values()) for d, streams in self._staff.items() if streams}
        if local != self.presence.local:
            self._staffing_changed(self.presence.share_local(local))
            self._share_now.set()

    def _staffing_changed(self, department_ids: set[UUID]) -> None:
        """Expected waits in these departments changed: their citizens' streams refresh."""
        for department_id in department_ids:
            self._pending.put_nowait(("department", department_id))

    # -- fan-out ----------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            items = [await self._pending.get()]
            while not self._pending.empty():  # a burst of changes: one refresh for all of it
                items.append(self._pending.get_nowait())
            try:
                await self._fan_out(items)
            except Exception:
                log.exception("live_update_failed")

    async def _fan_out(self, items: list[list[Change] | tuple[str, Any]]) -> None:
        """Staff first (in order), then each affected citizen's status once."""
        tickets: dict[UUID, None] = {}  # ordered set
        departments: dict[UUID, None] = {}
        for item in items:
            if isinstance(item, tuple):
                kind, key = item
                (departments if kind == "department" else tickets)[key] = None
                continue
            for change in item:
                await self._tell_staff(change)
                if change.kind not in ("knocked", "transferred_in"):
                    tickets[change.ticket_id] = None
                if change.moves_others:  # places behind it changed
                    departments[change.department_id] = None
        for ticket_id in tickets:
            await self._refresh_ticket(ticket_id)
        if departments:
            # Those who watch their ticket (fewer than those waiting, or as many).
            for ticket_id in list(self._tickets):
                if ticket_id not in tickets and self._view.department_of(ticket_id) in departments:
                    await self._refresh_ticket(ticket_id)

    async def _tell_staff(self, change: Change) -> None:
        listeners = self._staff.get(change.department_id)
        if not listeners:
            return
        department = str(change.department_id)
        if change.kind in ("knocked", "transferred_in"):
            entry = await self._staff_entry_of(change) or {"ticket_id": str(change.ticket_id)}
            message: Message = ("knocked", {**entry, "department_id": department})
        else:
            left: dict[str, Any] = {
                "ticket_id": str(change.ticket_id),
                "why": change.kind,
                "waiting": self._view.count(change.department_id),  # a dashboard shows the first
            }
            message = ("left", {**left, "department_id": department})
        self._tell_department(change.department_id, message)

    def _tell_department(self, department_id: UUID, message: Message) -> None:
        for queue in self._staff.get(department_id, {}):
            if queue.full():  # a reader this far behind gets a fresh snapshot instead
                _drain(queue)
                queue.put_nowait(("resync", {}))
            else:
                queue.put_nowait(message)

    async def _refresh_ticket(self, ticket_id: UUID) -> None:
        listeners = self._tickets.get(ticket_id)
        if not listeners:
            return
        status = await self._status_of(ticket_id)
        if status is None:
            return
        for queue in listeners:
            if self._last_sent.get(queue) != status:
                self._last_sent[queue] = status
                _offer(queue, ("status", status))

    def _send_ticket(self, ticket_id: UUID, message: Message) -> None:
        for queue in self._tickets.get(ticket_id, ()):
            _offer(queue, message)

    # -- streams ------------------------------------------------------------------------------

    async def ticket_stream(self, ticket_id: UUID) -> AsyncIterator[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue(STREAM_BUFFER)
        self._tickets[ticket_id].add(queue)
        OPEN_STREAMS.labels("ticket").inc()
        try:
            status = await self._status_of(ticket_id)
            if status is not None:
                self._last_sent[queue] = status
                yield ("status", status)
            while True:
                yield await queue.get()
        finally:
            OPEN_STREAMS.labels("ticket").dec()
            self._tickets[ticket_id].discard(queue)
            if not self._tickets[ticket_id]:
                del self._tickets[ticket_id]
            self._last_sent.pop(queue, None)

    async def staff_stream(
        self,
        department_ids: list[UUID],
        staff_id: str,
        snapshot: Callable[[UUID], Awaitable[Message]],
    ) -> AsyncIterator[Message]:
        """One stream for all the lines a staff member follows (a browser allows only a
        few connections per origin): a ``snapshot`` per line, then changes as they come."""
        queue: asyncio.Queue[Message] = asyncio.Queue(STREAM_BUFFER * 10)
        for department_id in department_ids:
            self._staff[department_id][queue] = staff_id
        self._local_staff_changed()
        OPEN_STREAMS.labels("staff").inc()
        try:
            for department_id in department_ids:
                yield await snapshot(department_id)
            while True:
                message = await queue.get()
                if message[0] == "resync":
                    for department_id in department_ids:
                        yield await snapshot(department_id)
                else:
                    yield message
        finally:
            OPEN_STREAMS.labels("staff").dec()
            for department_id in department_ids:
                self._staff[department_id].pop(queue, None)
                if not self._staff[department_id]:
                    del self._staff[department_id]
            self._local_staff_changed()


def _drain(queue: asyncio.Queue[Message]) -> None:
    while not queue.empty():
        queue.get_nowait()


def _offer(queue: asyncio.Queue[Message], message: Message) -> None:
    """A slow reader loses intermediate updates, never blocks everyone else."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(message)
