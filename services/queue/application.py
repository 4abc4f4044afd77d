"""The queue's commands (knocks, admissions) and its policies for the rooms service's
events. What it shows (the waiting rooms, the doors as last read) is the ``WaitingView``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import singledispatchmethod
from typing import Any, NamedTuple, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError

from services.common.contracts import rooms as rooms_events
from services.common.errors import RetryLater
from services.common.eventstore import ServiceApplication
from services.common.replicalock import ReplicaLock
from services.queue.domain import DomainError, Door, OfficeClosed, Ticket, TicketNumber
from services.queue.view import UnknownDepartment, WaitingView

__all__ = ["Knock", "NobodyWaiting", "OfficeClosed", "Queue", "UnknownDepartment", "UnknownTicket"]

R = TypeVar("R")


class UnknownTicket(LookupError):
    def __init__(self, ticket_id: UUID) -> None:
        super().__init__("There is no such ticket.")
        self.ticket_id = ticket_id


class Knock(NamedTuple):
    department_id: UUID
    priority: str
    knock_id: UUID
    correlation_id: str


class NobodyWaiting(DomainError):
    def __init__(self) -> None:
        super().__init__("Nobody is waiting.")


D: Any = Door  # the event classes ``@event`` creates are not known to mypy
# What the door keeps of a department, each aspect with the door events that set it.
PROFILE: tuple[type, ...] = (D.Registered, D.ProfileUpdated)
HOURS: tuple[type, ...] = (D.HoursSet,)
OFFICE: tuple[type, ...] = (D.Opened, D.Closed)
ROSTER: tuple[type, ...] = (D.StaffAssigned, D.StaffUnassigned)  # per staff member
HISTORY_PAGE = 50
# Replicas take waiting numbers one at a time (``numbering``, a lock they share), each
# after reading what the others stored, so two never pick the same number. Taking them
# optimistically (pick, save, on a conflict catch up and pick again) let a replica busy
# with a flood win round after round: the other's knock lost 100 rounds in a row and, with
# the pauses between rounds, one request of 2,000 waited more than 30 s (CI, 2026-12-04).
# A conflict can still come from a replica that does not take the lock (an older version
# during a rolling update): then the knock catches up and tries again, a few times.
NUMBER_ATTEMPTS = 5
DECLINE_BATCH = 500


class Queue(ServiceApplication):
    """Several replicas may share one store: each has its own waiting-room view, fed by
    its own commits, by the others' events on NATS and by ``catch_up`` from the store."""

    name = "queue"

    def __init__(
        self, env: dict[str, str] | None = None, replica_index: int = 0, replica_count: int = 1
    ) -> None:
        super().__init__(env)
        self.numbering = ReplicaLock(self.env, "queue-numbers")
        self.view = WaitingView(self, replica_index, replica_count)
        self.waiting = self.view.rooms
        self.on_commit(self.view.committed)
        self.view.catch_up()

    def catch_up(self) -> None:
        self.view.catch_up()

    def close(self) -> None:
        self.numbering.close()
        super().close()

    # -- queries ---------------------------------------------------------------------

    def door(self, department_id: UUID) -> Door:
        return self.view.door(department_id)

    def doors(self) -> list[Door]:
        return [self.door(i) for i in self.view.door_ids()]

    def ticket(self, ticket_id: UUID) -> Ticket:
        try:
            return self.repository.get(ticket_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownTicket(ticket_id) from error

    # -- commands ---------------------------------------------------------------------

    def knock(
        self, department_id: UUID, priority: str, knock_id: UUID, correlation_id: str
    ) -> tuple[Ticket, bool]:
        """A new ticket, or the one this knock made before while it still waits (a retry):
        (ticket, is_new); ``KnockAlreadyAnswered`` once that ticket has left the line.

        The number is taken under ``numbering`` after reading what the other replicas
        stored since the last look (one query, usually empty). A knock that raced the
        office's closing by a moment is expired by the sweep (``expire_where_closed``)."""
        knock = Knock(department_id, priority, knock_id, correlation_id)
        for _ in range(NUMBER_ATTEMPTS):
            with self.numbering.held():
                self.view.catch_up()
                ticket, number, day = self._new_ticket(knock)
                try:
                    self.save(ticket, number)
                    return ticket, True
                except IntegrityError:
                    self.waiting.give_back(department_id, day, ticket.number)
            try:
                existing = self.ticket(ticket.id)
            except UnknownTicket:  # the number was taken by a replica without the lock
                continue
            existing.answer_repeated_knock()  # the same knock again: a retried request
            return existing, False
        raise RetryLater("the queue's replicas keep taking the same numbers")

    def knock_all(self, knocks: Sequence[Knock]) -> list[tuple[Ticket, bool] | Exception]:
        """Several knocks in one transaction (group commit: one fsync for all of them),
        each answered on its own: its ticket, or what refused it. A retried knock among
        them (its ticket exists already) or a number another replica took meanwhile sends
        the group through ``knock`` one by one."""
        answers: list[tuple[Ticket, bool] | Exception] = []
        taken: list[tuple[Ticket, TicketNumber, str]] = []
        with self.numbering.held():
            self.view.catch_up()
            for knock in knocks:
                try:
                    ticket, number, day = self._new_ticket(knock)
                except (DomainError, UnknownDepartment) as refusal:  # this knock alone
                    answers.append(refusal)
                    continue
                answers.append((ticket, True))
                taken.append((ticket, number, day))
            if not taken:
                return answers
            try:
                self.save(*(ticket for ticket, _, _ in taken), *(number for _, number, _ in taken))
                return answers
            except IntegrityError:
                for ticket, _, day in reversed(taken):
                    self.waiting.give_back(ticket.department_id, day, ticket.number)
        return [_answer_of(self.knock, *knock) for knock in knocks]

    def _new_ticket(self, knock: Knock) -> tuple[Ticket, TicketNumber, str]:
        """A ticket with the next number (taken at once) and the number's record, not yet
        saved; and the day (UTC) the number counts in."""
        self.view.door_cached(knock.department_id).require_open()
        today = datetime.now(UTC).date().isoformat()
        number = self.waiting.next_number(knock.department_id, today)
        ticket = Ticket(
            knock.department_id, knock.priority, number, knock.knock_id, knock.correlation_id
        )
        return ticket, TicketNumber(knock.department_id, today, number, ticket.id), today

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

    def decline_many(
        self, ticket_ids: Sequence[UUID], staff_id: str, reason: str, correlation_id: str
    ) -> list[UUID]:
        """Decline many waiting tickets (a flood from one address), a few hundred in one
        transaction; answers those declined (one a colleague changed meanwhile is left)."""
        declined: list[UUID] = []
        for start in range(0, len(ticket_ids), DECLINE_BATCH):
            batch: list[Ticket] = []
            for ticket_id in ticket_ids[start : start + DECLINE_BATCH]:
                try:
                    ticket = self.ticket(ticket_id)
                    ticket.decline(staff_id, reason, correlation_id)
                except (DomainError, UnknownTicket):
                    continue
                batch.append(ticket)
            try:
                self.save(*batch)
            except IntegrityError:  # one of them changed meanwhile: one by one
                for ticket in batch:
                    with contextlib.suppress(DomainError, IntegrityError):
                        self.decline(ticket.id, staff_id, reason, correlation_id)
                        declined.append(ticket.id)
                continue
            declined += [ticket.id for ticket in batch]
        return declined

    def withdraw(self, ticket_id: UUID, correlation_id: str) -> Ticket:
        return self._change_ticket(ticket_id, lambda t: t.withdraw(correlation_id))

    def transfer(
        self, ticket_id: UUID, to_department_id: UUID, staff_id: str, correlation_id: str
    ) -> Ticket:
        self.door(to_department_id).require_open()
        return self._change_ticket(
            ticket_id, lambda t: t.transfer(to_department_id, staff_id, correlation_id)
        )

    def expire_where_closed(self, correlation_id: str) -> int:
        """Expire tickets still waiting at closed offices (a knock that raced the closing).

        Every replica sweeps: one that loses the race to another (IntegrityError) or finds
        the ticket already changed (DomainError) leaves it."""
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
                except (DomainError, IntegrityError):
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
            e, p, lambda d: d.update_profile(e.profile.model_dump(), e.aggregate_version), PROFILE
        )

    @policy.register
    def _(self, e: rooms_events.OpeningHoursSet, p: ProcessingEvent[UUID]) -> None:
        weekly = [period.model_dump() for period in e.weekly]
        self._update_door(
            e, p, lambda d: d.set_hours(weekly, e.closed_days, e.aggregate_version), HOURS
        )

    @policy.register
    def _(self, e: rooms_events.OfficeOpened, p: ProcessingEvent[UUID]) -> None:
        self._update_door(e, p, lambda d: d.open(e.closes_at, e.aggregate_version), OFFICE)

    @policy.register
    def _(self, e: rooms_events.OfficeClosed, p: ProcessingEvent[UUID]) -> None:
        if self._update_door(e, p, lambda d: d.close(e.next_opening, e.aggregate_version), OFFICE):
            self.catch_up()  # also those who knocked at another replica a moment ago
            for entry in self.waiting.line(e.department_id):
                ticket = self.ticket(entry.ticket_id)
                if ticket.status == "waiting":
                    ticket.expire("office_closed", e.correlation_id)
                    p.collect_events(ticket)

    @policy.register
    def _(self, e: rooms_events.StaffAssigned, p: ProcessingEvent[UUID]) -> None:
        def assign(door: Door) -> None:
            door.assign_staff(e.staff_id, e.role, e.aggregate_version)

        self._update_door(e, p, assign, ROSTER, e.staff_id)

    @policy.register
    def _(self, e: rooms_events.StaffUnassigned, p: ProcessingEvent[UUID]) -> None:
        self._update_door(
            e, p, lambda d: d.unassign_staff(e.staff_id, e.aggregate_version), ROSTER, e.staff_id
        )

    @policy.register
    def _(self, e: rooms_events.ConsultationOpened, p: ProcessingEvent[UUID]) -> None:
        ticket = self.ticket(e.ticket_id)
        if ticket.consultation_id is None:
            ticket.assign_consultation(e.consultation_id)
            p.collect_events(ticket)

    @policy.register
    def _(self, e: rooms_events.ConsultationEnded, p: ProcessingEvent[UUID]) -> None:
        door = self._registered_door(e.department_id)
        door.record_consultation(e.duration_seconds)
        p.collect_events(door)

    def _update_door(
        self,
        e: Any,
        p: ProcessingEvent[UUID],
        change: Callable[[Door], None],
        aspect: tuple[type, ...],
        staff_id: str | None = None,
    ) -> bool:
        """Apply a department's event unless the door has a newer one of the same aspect.

        The department's events come out of order (a redelivery after later events; replicas
        share the consumer and work in parallel). One version for the whole door would drop
        an older event of another aspect, e.g. a roster change overtaken by the opening."""
        door = self._registered_door(e.department_id)
        if e.aggregate_version <= self._newest_applied(door.id, aspect, staff_id):
            return False
        change(door)
        p.collect_events(door)
        return True

    def _registered_door(self, department_id: UUID) -> Door:
        """The door a department's event is about. Not there yet: its registration is on
        its way (another replica is handling it, or it comes again after a failure)."""
        try:
            return self.door(department_id)
        except UnknownDepartment as error:
            raise RetryLater(f"department {department_id} is not registered yet") from error

    def _newest_applied(
        self, door_id: UUID, aspect: tuple[type, ...], staff_id: str | None
    ) -> int:
        """The department version of the door's newest event of one aspect (0: none yet)."""
        lte: int | None = None
        while page := list(self.events.get(door_id, desc=True, lte=lte, limit=HISTORY_PAGE)):
            for event in page:
                if isinstance(event, aspect) and getattr(event, "staff_id", staff_id) == staff_id:
                    return int(cast(Any, event).upstream_version)
            lte = page[-1].originator_version - 1
        return 0


def _answer_of(command: Callable[..., R], *args: Any) -> R | Exception:
    try:
        return command(*args)
    except (DomainError, UnknownDepartment, RetryLater) as refusal:  # this knock alone
        return refusal
