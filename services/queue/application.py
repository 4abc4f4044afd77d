"""The queue service layer: knocks, admissions and the doors they knock on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import singledispatchmethod
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording

from services.common.contracts import IntegrationEvent
from services.common.contracts import queue as contracts
from services.common.contracts import rooms as rooms_events
from services.common.eventstore import ServiceApplication
from services.common.outbox import envelope
from services.queue.domain import DomainError, Door, Ticket
from services.queue.waiting import Change, WaitingRooms

T = TypeVar("T")


class UnknownDepartment(LookupError):
    pass


class UnknownTicket(LookupError):
    pass


class OfficeClosed(DomainError):
    def __init__(self, next_opening: datetime | None) -> None:
        super().__init__("The office is closed at the moment.")
        self.next_opening = next_opening


class NobodyWaiting(DomainError):
    def __init__(self) -> None:
        super().__init__("Nobody is waiting.")


ChangeListener = Callable[[list[Change]], None]
DOOR_MAX_AGE = 2.0


class Queue(ServiceApplication):
    name = "queue"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.waiting = WaitingRooms()
        self._door_ids: set[UUID] = set()
        self._change_listeners: list[ChangeListener] = []
        self._doors: dict[UUID, tuple[float, Door]] = {}
        self.on_commit(self._feed_waiting_rooms)
        self._replay()

    # -- the waiting rooms view -----------------------------------------------------

    def _replay(self) -> None:
        position = 0
        while batch := self.notification_log.select(
            start=position + 1, limit=self.log_section_size
        ):
            for notification in batch:
                if notification.topic.endswith("Door.Registered"):
                    self._door_ids.add(UUID(str(notification.originator_id)))
                contract = to_contract(self.mapper.to_domain_event(notification), notification.id)
                if contract is not None:
                    self.waiting.apply(contract)
            position = batch[-1].id

    def _feed_waiting_rooms(self, recordings: list[Recording[UUID]]) -> None:
        changes: list[Change] = []
        for recording in recordings:
            name = type(recording.domain_event).__qualname__
            if name.startswith("Door."):
                self._door_ids.add(recording.domain_event.originator_id)
                self.forget_door(recording.domain_event.originator_id)
            contract = to_contract(recording.domain_event, recording.notification.id)
            if contract is not None:
                changes.extend(self.waiting.apply(contract))
        self.publish_changes(changes)

    def apply_from_bus(self, event: IntegrationEvent) -> None:
        """Another replica's (or our own) event, seen on NATS."""
        self.publish_changes(self.waiting.apply(event))

    def on_change(self, listener: ChangeListener) -> None:
        self._change_listeners.append(listener)

    def publish_changes(self, changes: list[Change]) -> None:
        if changes:
            for listener in self._change_listeners:
                listener(changes)

    # -- queries ---------------------------------------------------------------------

    def door(self, department_id: UUID) -> Door:
        try:
            return self.repository.get(department_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownDepartment(str(department_id)) from error

    def doors(self) -> list[Door]:
        return [self.door(i) for i in sorted(self._door_ids)]

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

    def ticket(self, ticket_id: UUID) -> Ticket:
        try:
            return self.repository.get(ticket_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownTicket(str(ticket_id)) from error

    # -- commands ---------------------------------------------------------------------

    def knock(
        self, department_id: UUID, priority: str, knock_id: UUID, correlation_id: str
    ) -> tuple[Ticket, bool]:
        """A new ticket, or the one this knock made before (a retry): (ticket, is_new).

        One write and no read on the way: a knock that raced the office's closing
        by a moment is expired by the sweep (``expire_where_closed``)."""
        door = self.door_cached(department_id)
        if not door.is_open:
            raise OfficeClosed(door.next_opening)
        today = datetime.now(UTC).date().isoformat()
        number = self.waiting.next_number(department_id, today)
        ticket = Ticket(department_id, priority, number, knock_id, correlation_id)
        try:
            self.save(ticket)
        except IntegrityError:  # the same knock again: a retried request
            return self.ticket(ticket.id), False
        return ticket, True

    def admit(self, ticket_id: UUID, staff_id: str, correlation_id: str) -> Ticket:
        now = datetime.now(UTC)
        return self._change_ticket(ticket_id, lambda t: t.admit(staff_id, now, correlation_id))

    def admit_next(self, department_id: UUID, staff_id: str, correlation_id: str) -> Ticket:
        """The first in line by priority class, then by knock time; skips a ticket taken
        a moment ago by a colleague."""
        skip: set[UUID] = set()
        while True:
            entry = self.waiting.next_in_line(department_id, skip)
            if entry is None:
                raise NobodyWaiting()
            try:
                return self.admit(entry.ticket_id, staff_id, correlation_id)
            except (DomainError, IntegrityError):
                skip.add(entry.ticket_id)

    def decline(self, ticket_id: UUID, staff_id: str, reason: str, correlation_id: str) -> Ticket:
        return self._change_ticket(ticket_id, lambda t: t.decline(staff_id, reason, correlation_id))

    def withdraw(self, ticket_id: UUID, correlation_id: str) -> Ticket:
        return self._change_ticket(ticket_id, lambda t: t.withdraw(correlation_id))

    def transfer(
        self, ticket_id: UUID, to_department_id: UUID, staff_id: str, correlation_id: str
    ) -> Ticket:
        target = self.door(to_department_id)
        if not target.is_open:
            raise OfficeClosed(target.next_opening)
        return self._change_ticket(
            ticket_id, lambda t: t.transfer(to_department_id, staff_id, correlation_id)
        )

    def expire_where_closed(self, correlation_id: str) -> int:
        """Expire tickets still waiting at closed offices (a knock that raced the closing)."""
        expired = 0
        for door in self.doors():
            if door.is_open:
                continue
            for entry in self.waiting.line(door.id):
                try:
                    self._change_ticket(
                        entry.ticket_id, lambda t: t.expire("office_closed", correlation_id)
                    )
                    expired += 1
                except DomainError:
                    pass
        return expired

    def _change_ticket(self, ticket_id: UUID, change: Callable[[Ticket], None]) -> Ticket:
        ticket = self.ticket(ticket_id)
        change(ticket)
        self.save(ticket)  # IntegrityError when a colleague changed it first
        return ticket

    # -- what the queue does with the rooms service's events ----------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        """Events the queue does not react to are tracked and otherwise ignored."""

    @policy.register
    def _(self, e: rooms_events.DepartmentRegistered, p: ProcessingEvent[UUID]) -> None:
        try:
            self.door(e.department_id)
        except UnknownDepartment:
            p.collect_events(Door(e.department_id, e.profile.model_dump(), e.aggregate_version))

    @policy.register
    def _(self, e: rooms_events.DepartmentUpdated, p: ProcessingEvent[UUID]) -> None:
        self._update_door(
            e, p, lambda d: d.update_profile(e.profile.model_dump(), e.aggregate_version)
        )

    @policy.register
    def _(self, e: rooms_events.OpeningHoursSet, p: ProcessingEvent[UUID]) -> None:
        weekly = [period.model_dump() for period in e.weekly]
        self._update_door(e, p, lambda d: d.set_hours(weekly, e.closed_days, e.aggregate_version))

    @policy.register
    def _(self, e: rooms_events.OfficeOpened, p: ProcessingEvent[UUID]) -> None:
        self._update_door(e, p, lambda d: d.open(e.closes_at, e.aggregate_version))

    @policy.register
    def _(self, e: rooms_events.OfficeClosed, p: ProcessingEvent[UUID]) -> None:
        if self._update_door(e, p, lambda d: d.close(e.next_opening, e.aggregate_version)):
            for entry in self.waiting.line(e.department_id):
                ticket = self.ticket(entry.ticket_id)
                if ticket.status == "waiting":
                    ticket.expire("office_closed", e.correlation_id)
                    p.collect_events(ticket)

    @policy.register
    def _(self, e: rooms_events.StaffAssigned, p: ProcessingEvent[UUID]) -> None:
        self._update_door(e, p, lambda d: d.assign_staff(e.staff_id, e.role, e.aggregate_version))

    @policy.register
    def _(self, e: rooms_events.StaffUnassigned, p: ProcessingEvent[UUID]) -> None:
        self._update_door(e, p, lambda d: d.unassign_staff(e.staff_id, e.aggregate_version))

    @policy.register
    def _(self, e: rooms_events.ConsultationOpened, p: ProcessingEvent[UUID]) -> None:
        ticket = self.ticket(e.ticket_id)
        if ticket.consultation_id is None:
            ticket.assign_consultation(e.consultation_id)
            p.collect_events(ticket)

    @policy.register
    def _(self, e: rooms_events.ConsultationEnded, p: ProcessingEvent[UUID]) -> None:
        door = self.door(e.department_id)
        door.record_consultation(e.duration_seconds)
        p.collect_events(door)

    def _update_door(
        self, e: Any, p: ProcessingEvent[UUID], change: Callable[[Door], None]
    ) -> bool:
        door = self.door(e.department_id)  # unknown yet: raises, and the event comes again
        if door.is_stale(e.aggregate_version):
            return False
        change(door)
        p.collect_events(door)
        return True


# -- mapping stored events to integration events -------------------------------------------


def to_contract(domain_event: Any, position: int) -> IntegrationEvent | None:
    name = type(domain_event).__qualname__
    if not name.startswith("Ticket."):
        return None
    env = envelope(domain_event, position)
    e = domain_event
    match name:
        case "Ticket.Knocked":
            return contracts.Knocked(
                **env,
                ticket_id=e.originator_id,
                department_id=e.department_id,
                priority=e.priority,
                number=e.number,
            )
        case "Ticket.Admitted":
            return contracts.Admitted(
                **env,
                ticket_id=e.originator_id,
                department_id=e.department_id,
                staff_id=e.staff_id,
                waited_seconds=e.waited_seconds,
            )
        case "Ticket.Declined":
            return contracts.Declined(
                **env,
                ticket_id=e.originator_id,
                department_id=e.department_id,
                staff_id=e.staff_id,
                reason=e.reason,
            )
        case "Ticket.Withdrawn":
            return contracts.Withdrawn(
                **env, ticket_id=e.originator_id, department_id=e.department_id
            )
        case "Ticket.Transferred":
            return contracts.Transferred(
                **env,
                ticket_id=e.originator_id,
                from_department_id=e.from_department_id,
                to_department_id=e.to_department_id,
                staff_id=e.staff_id,
            )
        case "Ticket.Expired":
            return contracts.Expired(
                **env, ticket_id=e.originator_id, department_id=e.department_id, reason=e.reason
            )
    return None
