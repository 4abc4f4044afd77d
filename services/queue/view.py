"""The queue's read side: who waits where, and the doors as this replica last read them.

One ``WaitingView`` per replica, fed by its own commits (``committed``), by every
replica's ticket events on NATS (``seen_on_bus``) and by what they stored that NATS did
not bring (``catch_up`` from the shared notification log). Whoever shows the waiting
rooms (the live hub, the metrics) subscribes with ``on_change``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Recording
from eventsourcing.utils import get_topic

from services.common.contracts import IntegrationEvent
from services.common.mapping import domain_event_classes
from services.queue.domain import Door, Ticket
from services.queue.mapping import to_contract
from services.queue.waiting import Change, WaitingRooms

ChangeListener = Callable[[list[Change]], None]
CommittedListener = Callable[[list[IntegrationEvent]], None]
DOOR_MAX_AGE = 2.0
# Which stored events the view reads from the notification log, by their topics.
DOOR_REGISTERED = get_topic(cast(Any, Door).Registered)
TICKET_TOPICS = frozenset(
    get_topic(cls) for cls in domain_event_classes(Ticket) if to_contract.maps(cls)
)


class UnknownDepartment(LookupError):
    def __init__(self, department_id: UUID) -> None:
        super().__init__("There is no such department.")
        self.department_id = department_id


class Store(Protocol):
    """What the view reads of the queue's application."""

    @property
    def notification_log(self) -> Any: ...
    @property
    def mapper(self) -> Any: ...
    @property
    def repository(self) -> Any: ...
    @property
    def log_section_size(self) -> int: ...


class WaitingView:
    def __init__(self, store: Store, replica_index: int = 0, replica_count: int = 1) -> None:
        self._store = store
        self.rooms = WaitingRooms(replica_index, replica_count)
        # Replaced, never changed in place: request threads iterate it while others add.
        self._door_ids: frozenset[UUID] = frozenset()
        self._position = 0  # how far catch_up has read the notification log
        self._catching_up = threading.Lock()
        self._change_listeners: list[ChangeListener] = []
        self._committed_listeners: list[CommittedListener] = []
        self._doors: dict[UUID, tuple[float, Door]] = {}

    # -- feeding ----------------------------------------------------------------------

    def catch_up(self) -> None:
        """Read the log from where we stopped: on start all of it; later what other replicas
        stored. Their doors become known here (the bus carries no door events), and a ticket
        event that core NATS dropped (published while we reconnected) still arrives."""
        store = self._store
        with self._catching_up:
            changes: list[Change] = []
            while batch := store.notification_log.select(
                start=self._position + 1, limit=store.log_section_size
            ):
                for notification in batch:
                    topic = notification.topic
                    if topic == DOOR_REGISTERED:
                        self._door_ids |= {UUID(str(notification.originator_id))}
                        continue
                    if topic not in TICKET_TOPICS or self.rooms.has_seen(
                        UUID(str(notification.originator_id)), notification.originator_version
                    ):
                        continue  # the usual case after the start: seen live, not decoded again
                    domain_event = store.mapper.to_domain_event(notification)
                    contract = to_contract(domain_event, notification.id)
                    if contract is not None:
                        changes.extend(self.rooms.apply(contract))
                self._position = batch[-1].id
        self._publish(changes)

    def committed(self, recordings: list[Recording[UUID]]) -> None:
        """What this replica has just stored (called after each commit)."""
        changes: list[Change] = []
        published: list[IntegrationEvent] = []
        for recording in recordings:
            domain_event = recording.domain_event
            if isinstance(domain_event, Door.Event):
                if domain_event.originator_id not in self._door_ids:
                    self._door_ids |= {domain_event.originator_id}
                self.forget_door(domain_event.originator_id)
            contract = to_contract(domain_event, recording.notification.id)
            if contract is not None:
                published.append(contract)
                changes.extend(self.rooms.apply(contract))
        self._publish(changes)
        if published:
            for listener in self._committed_listeners:
                listener(published)

    async def seen_on_bus(self, event: IntegrationEvent) -> None:
        """Another replica's (or our own) ticket event, seen on NATS."""
        self._publish(self.rooms.apply(event))

    def on_change(self, listener: ChangeListener) -> None:
        """Changes of the waiting rooms, whoever made them."""
        self._change_listeners.append(listener)

    def on_committed(self, listener: CommittedListener) -> None:
        """The ticket events this replica committed (what it counts in its metrics)."""
        self._committed_listeners.append(listener)

    def _publish(self, changes: list[Change]) -> None:
        if changes:
            for listener in self._change_listeners:
                listener(changes)

    # -- doors -------------------------------------------------------------------------

    def door(self, department_id: UUID) -> Door:
        try:
            return self._store.repository.get(department_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownDepartment(department_id) from error

    def door_ids(self) -> list[UUID]:
        """Every door, also those another replica registered a moment ago (one query when
        nothing new was stored)."""
        self.catch_up()
        return sorted(self._door_ids)

    def door_cached(self, department_id: UUID, max_age: float = DOOR_MAX_AGE) -> Door:
        """The door as this replica last read it: renewed on every change committed here,
        and after ``max_age`` seconds (another replica may have processed the change)."""
        cached = self._doors.get(department_id)
        if cached and time.monotonic() - cached[0] < max_age:
            return cached[1]
        door = self.door(department_id)
        self._doors[department_id] = (time.monotonic(), door)
        return door

    def has_fresh_door(self, department_id: UUID, max_age: float = DOOR_MAX_AGE) -> bool:
        cached = self._doors.get(department_id)
        return cached is not None and time.monotonic() - cached[0] < max_age

    def forget_door(self, department_id: UUID) -> None:
        self._doors.pop(department_id, None)

    # -- the waiting rooms --------------------------------------------------------------

    def waiting_ids(self, department_id: UUID) -> list[UUID]:
        return [w.ticket_id for w in self.rooms.line(department_id)]

    def department_of(self, ticket_id: UUID) -> UUID | None:
        return self.rooms.department_of(ticket_id)

    def count(self, department_id: UUID) -> int:
        return self.rooms.count(department_id)
