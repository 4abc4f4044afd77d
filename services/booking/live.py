"""Staff's live view of a department's appointments: server-sent events.

Every change of an appointment (booked, moved, cancelled, checked in, missed) reaches the
booking views once — on commit in this process, or by ``catch_up`` from the notification
log for what another booking replica stored — and from there the streams of the staff
following that department. While any stream is open, the log is read every
``CATCH_UP_SECONDS`` (one query when nothing is new), so another replica's change shows
within that. The events carry ids, times and the status only, never personal data.

A stream is ``ready`` first, then ``appointment`` per change, and a comment every
``PING_SECONDS`` so proxies keep it open. One staff member may hold at most
``streams_per_staff`` of them at once, across every booking process (429 beyond: the
platform's ``SharedSlots`` in the bucket ``bb_booking_streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from uuid import UUID

from services.booking.views import AppointmentSummary
from services.common.sse import Message

STREAM_BUFFER = 100
PING_SECONDS = 20.0
CATCH_UP_SECONDS = 2.0


def appointment_message(summary: AppointmentSummary) -> Message:
    return "appointment", {
        "department_id": str(summary.department_id),
        "appointment_id": str(summary.appointment_id),
        "status": summary.status,
        "start": summary.start.isoformat(),
        "end": summary.end.isoformat(),
    }


class AppointmentFeed:
    """Who follows which department, and the changes handed to them."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: dict[UUID, set[asyncio.Queue[Message]]] = defaultdict(set)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def followed(self) -> bool:
        return bool(self._listeners)

    def changed(self, summary: AppointmentSummary) -> None:
        """An appointment changed (called from whichever thread applied the event)."""
        loop = self._loop
        if loop is None or summary.department_id not in self._listeners or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._offer, summary.department_id,
                                      appointment_message(summary))

    def _offer(self, department_id: UUID, message: Message) -> None:
        for queue in self._listeners.get(department_id, ()):
            if queue.full():  # a slow reader loses the oldest change, never blocks others
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    async def stream(self, department_id: UUID) -> AsyncIterator[Message]:
        queue: asyncio.Queue[Message] = asyncio.Queue(STREAM_BUFFER)
        self._listeners[department_id].add(queue)
        try:
            yield "ready", {"department_id": str(department_id)}
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), PING_SECONDS)
                except TimeoutError:
                    yield "ping", {}
        finally:
            self._listeners[department_id].discard(queue)
            if not self._listeners[department_id]:
                del self._listeners[department_id]

    async def follow_other_replicas(self, catch_up: Callable[[], None]) -> None:
        """A service task: read what other replicas stored while anyone follows."""
        while True:
            await asyncio.sleep(CATCH_UP_SECONDS)
            if self.followed:
                await asyncio.to_thread(catch_up)
