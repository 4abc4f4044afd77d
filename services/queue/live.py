"""Live streams: each citizen's own ticket, and each department's line for its staff.

Changes arrive from any thread (a local commit) or from NATS (another
replica); they are handled one batch after another on the event loop and
fanned out to the open streams' queues. Nothing here is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

from prometheus_client import Gauge

from services.common.logging import get_logger
from services.queue.waiting import Change

log = get_logger(__name__)

OPEN_STREAMS = Gauge("bb_queue_open_streams", "Open live streams", ["kind"])
STREAM_BUFFER = 100
KEEPALIVE_SECONDS = 15.0

Message = tuple[str, dict[str, Any]]  # (SSE event name, data)
PING: Message = ("ping", {})
StatusOf = Callable[[UUID], Awaitable[dict[str, Any] | None]]
StaffEntryOf = Callable[[Change], Awaitable[dict[str, Any] | None]]


class LiveHub:
    def __init__(
        self,
        status_of: StatusOf,
        staff_entry_of: StaffEntryOf,
        department_of: Callable[[UUID], UUID | None],
        waiting_in: Callable[[UUID], list[UUID]],
    ) -> None:
        self._status_of = status_of
        self._staff_entry_of = staff_entry_of
        self._department_of = department_of
        self._waiting_in = waiting_in
        self._tickets: dict[UUID, set[asyncio.Queue[Message]]] = defaultdict(set)
        self._staff: dict[UUID, dict[asyncio.Queue[Message], str]] = defaultdict(dict)
        self._last_sent: dict[asyncio.Queue[Message], dict[str, Any]] = {}
        self._pending: asyncio.Queue[list[Change] | tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._worker = asyncio.create_task(self._work())
        self._pinger = asyncio.create_task(self._keep_alive())

    async def close(self) -> None:
        for task in (self._worker, self._pinger):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
            for waiting_id in self._waiting_in(department_id):
                self._send_ticket(waiting_id, ("message", data))

    def staff_on_duty(self, department_id: UUID) -> int:
        return len(set(self._staff.get(department_id, {}).values()))

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
                tickets[item[1]] = None
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
                if ticket_id not in tickets and self._department_of(ticket_id) in departments:
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
            left = {"ticket_id": str(change.ticket_id), "why": change.kind}
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


def _drain(queue: asyncio.Queue[Message]) -> None:
    while not queue.empty():
        queue.get_nowait()


def _offer(queue: asyncio.Queue[Message], message: Message) -> None:
    """A slow reader loses intermediate updates, never blocks everyone else."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(message)
