"""The waiting rooms: an in-memory view of who waits where, in which order.

Fed by the queue's own integration events: replayed from its store on start,
then from every local commit and from every replica's events on NATS (and what
NATS missed, from the shared store). Each ticket's events apply only in version
order, so a late or doubled event changes nothing.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from uuid import UUID

from services.common.contracts import IntegrationEvent
from services.common.contracts import queue as events
from services.queue.domain import PRIORITY_ORDER

FINISHED_KEPT = timedelta(days=2)


@dataclass
class Waiting:
    ticket_id: UUID
    department_id: UUID
    priority: str
    number: int
    knocked_at: datetime
    version: int
    correlation_id: str

    @cached_property
    def order(self) -> tuple[int, datetime, str]:
        # Computed once: the line is kept sorted by it and searched with it on every change.
        return (PRIORITY_ORDER[self.priority], self.knocked_at, str(self.ticket_id))

    @property
    def line_order(self) -> str:
        """``order`` as a string that sorts the same way: pages place a ticket that joins
        the line by it, without knowing the rule."""
        knocked = self.knocked_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        return f"{PRIORITY_ORDER[self.priority]}/{knocked}/{self.ticket_id}"


@dataclass
class Change:
    """What one event changed in a department's line, for the live streams."""

    department_id: UUID
    ticket_id: UUID
    kind: str  # knocked, admitted, declined, withdrawn, transferred_in/out, expired
    entry: Waiting | None = None
    # False when nobody else's place changed (a knock that joined the end of the line).
    moves_others: bool = True


def _order(entry: Waiting) -> tuple[int, datetime, str]:
    return entry.order


@dataclass
class _Line:
    """One department's line, kept sorted: a change or a place costs O(log n) comparisons."""

    entries: dict[UUID, Waiting] = field(default_factory=dict)
    ordered: list[Waiting] = field(default_factory=list)

    def in_order(self) -> list[Waiting]:
        return self.ordered

    def add(self, entry: Waiting) -> bool:
        """Insert in order; True when it joined the end of the line."""
        self.entries[entry.ticket_id] = entry
        at_end = not self.ordered or self.ordered[-1].order < entry.order
        bisect.insort(self.ordered, entry, key=_order)
        return at_end

    def index(self, entry: Waiting) -> int:
        return bisect.bisect_left(self.ordered, entry.order, key=_order)

    def remove(self, ticket_id: UUID) -> Waiting:
        entry = self.entries.pop(ticket_id)
        del self.ordered[self.index(entry)]
        return entry


class WaitingRooms:
    def __init__(self, replica_index: int = 0, replica_count: int = 1) -> None:
        if not 0 <= replica_index < replica_count:
            raise ValueError(
                f"queue replica index {replica_index} is not in 0..{replica_count - 1}"
            )
        self._lines: dict[UUID, _Line] = {}
        self._where: dict[UUID, UUID] = {}  # ticket -> department while waiting
        self._versions: dict[UUID, tuple[int, datetime]] = {}  # ticket -> last version seen
        self._numbers: dict[tuple[UUID, str], int] = {}  # (department, day) -> highest taken
        self._lock = threading.Lock()

    def apply(self, event: IntegrationEvent) -> list[Change]:
        ticket_id = getattr(event, "ticket_id", None)
        if ticket_id is None:
            return []
        with self._lock:
            if isinstance(event, events.Knocked):  # even when a later event came first
                day = (event.department_id, event.occurred_at.date().isoformat())
                self._numbers[day] = max(self._numbers.get(day, 0), event.number)
            seen = self._versions.get(ticket_id)
            if seen is not None and event.aggregate_version <= seen[0]:
                return []
            self._versions[ticket_id] = (event.aggregate_version, event.occurred_at)
            return self._apply(event)

    def _apply(self, event: IntegrationEvent) -> list[Change]:
        if isinstance(event, events.Knocked):
            knocked = Waiting(
                event.ticket_id,
                event.department_id,
                event.priority,
                event.number,
                event.occurred_at,
                event.aggregate_version,
                event.correlation_id,
            )
            at_end = self._add(knocked)
            return [Change(event.department_id, event.ticket_id, "knocked", knocked, not at_end)]
        if isinstance(event, events.Transferred):
            moved = self._remove(event.ticket_id)
            if moved is None:
                return []
            moved.department_id = event.to_department_id
            at_end = self._add(moved)
            return [
                Change(event.from_department_id, event.ticket_id, "transferred_out"),
                Change(
                    event.to_department_id, event.ticket_id, "transferred_in", moved, not at_end
                ),
            ]
        ticket_id: UUID = getattr(event, "ticket_id")  # noqa: B009 - every queue event has one
        left = self._remove(ticket_id)
        if left is None:
            return []
        return [Change(left.department_id, ticket_id, type(event).__name__.lower())]

    def _add(self, entry: Waiting) -> bool:
        line = self._lines.setdefault(entry.department_id, _Line())
        self._where[entry.ticket_id] = entry.department_id
        return line.add(entry)

    def _remove(self, ticket_id: UUID) -> Waiting | None:
        department_id = self._where.pop(ticket_id, None)
        if department_id is None:
            return None
        return self._lines[department_id].remove(ticket_id)

    # -- queries ----------------------------------------------------------------------------

    def line(self, department_id: UUID) -> list[Waiting]:
        with self._lock:
            line = self._lines.get(department_id)
            return list(line.in_order()) if line else []

    # count, department_of and has_seen read one value each, which the GIL makes atomic:
    # without the lock, the event loop never waits for a thread applying a change (every
    # knock asks them, some several times).

    def count(self, department_id: UUID) -> int:
        line = self._lines.get(department_id)
        return len(line.entries) if line else 0

    def place(self, ticket_id: UUID) -> int | None:
        """1 for the next in line; None when the ticket is not waiting."""
        with self._lock:
            department_id = self._where.get(ticket_id)
            if department_id is None:
                return None
            line = self._lines[department_id]
            return line.index(line.entries[ticket_id]) + 1

    def places(self, department_id: UUID) -> dict[UUID, int]:
        with self._lock:
            line = self._lines.get(department_id)
            if not line:
                return {}
            return {w.ticket_id: i + 1 for i, w in enumerate(line.in_order())}

    def next_in_line(self, department_id: UUID, skip: set[UUID] | None = None) -> Waiting | None:
        with self._lock:
            line = self._lines.get(department_id)
            for entry in line.ordered if line else ():
                if not skip or entry.ticket_id not in skip:
                    return entry
        return None

    def department_of(self, ticket_id: UUID) -> UUID | None:
        return self._where.get(ticket_id)

    def has_seen(self, ticket_id: UUID, version: int) -> bool:
        seen = self._versions.get(ticket_id)
        return seen is not None and version <= seen[0]

    def next_number(self, department_id: UUID, day: str) -> int:
        """Take the department's next ticket number for the day: one above every number
        seen (this replica's and the others'). Another replica may have taken it a moment
        ago; the store refuses the second ``TicketNumber`` of it, and the knock takes the
        next one after catching up (``Queue.knock``). So the numbers are 1, 2, 3, …
        whatever the number of replicas.

        Taken at once, so two knocks at the same moment get two numbers; a knock that does
        not use its number gives it back (``give_back``)."""
        key = (department_id, day)
        with self._lock:
            number = self._numbers.get(key, 0) + 1
            self._numbers[key] = number
            return number

    def give_back(self, department_id: UUID, day: str, number: int) -> None:
        """The number was not used: the next knock gets it, unless a later one was seen
        or taken meanwhile (then it is left out)."""
        key = (department_id, day)
        with self._lock:
            if self._numbers.get(key) == number:
                self._numbers[key] = number - 1

    def forget_finished(self, now: datetime) -> None:
        """Drop version marks of long-finished tickets and past days' numbers, so memory
        stays bounded."""
        with self._lock:
            cutoff = now - FINISHED_KEPT
            for ticket_id, (_, at) in list(self._versions.items()):
                if ticket_id not in self._where and at < cutoff:
                    del self._versions[ticket_id]
            first_day = cutoff.date().isoformat()
            for key in [key for key in self._numbers if key[1] < first_day]:
                del self._numbers[key]
