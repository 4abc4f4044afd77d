"""The booking service layer: schedules, bookings and their views, on its own event store.

Booking a place saves the slot and the appointment together (one ``save``, one
transaction): the slot (department, start) is the consistency boundary, so two replicas
racing for its last place write the same slot version and the store refuses one of them
(``IntegrityError``); that one reads the slot again and either takes a place still free
or is refused with ``NoPlaceLeft`` and the nearest free slots.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import singledispatchmethod
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording

from services.booking.domain import Appointment, CancelledBy, Schedule, Slot, StaffCancelReason
from services.booking.errors import DomainError, SlotFull
from services.booking.office import Office
from services.booking.slots import FreeSlot
from services.booking.terms import ScheduleTerms
from services.booking.views import AppointmentSummary, BookingViews
from services.common.contracts import rooms as rooms_events
from services.common.errors import RetryLater
from services.common.eventstore import ServiceApplication

T = TypeVar("T")
ATTEMPTS = 8  # re-reads after another writer changed the same slot first


class UnknownDepartment(LookupError):
    def __init__(self) -> None:
        super().__init__("There is no such department.")


class UnknownAppointment(LookupError):
    def __init__(self) -> None:
        super().__init__("There is no such appointment.")


class NoAppointmentsHere(DomainError):
    def __init__(self) -> None:
        super().__init__("This department does not take appointments.")


class NoPlaceLeft(SlotFull):
    """The slot is fully booked; ``extra`` names the nearest free slots instead."""

    def __init__(self, start: datetime, nearest: list[FreeSlot]) -> None:
        super().__init__(start)
        self.nearest = nearest
        self.extra = {"nearest": [free_slot_record(s) for s in nearest]}


class TooBusy(DomainError):
    def __init__(self) -> None:
        super().__init__("Many people are booking this time right now. Please try again.")


def free_slot_record(slot: FreeSlot) -> dict[str, Any]:
    return {"start": slot.start.isoformat(), "end": slot.end.isoformat(),
            "remaining": slot.remaining}


class Booking(ServiceApplication):
    name = "booking"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.views = BookingViews()
        self._offices: dict[UUID, str] = {}  # department id -> slug, of offices known
        self._position = 0
        self._catching_up = threading.Lock()
        self.on_commit(self._feed_views)
        self.catch_up()

    # -- the views ------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Read the notification log from where we stopped: on start all of it; later what
        other replicas stored (one query when nothing is new)."""
        with self._catching_up:
            while batch := self.notification_log.select(
                start=self._position + 1, limit=self.log_section_size
            ):
                for notification in batch:
                    topic = notification.topic
                    if topic.endswith(":Office.Registered"):
                        self._learn_office(self.mapper.to_domain_event(notification))
                    elif (":Slot." in topic or ":Appointment." in topic) and not (
                        self.views.has_seen(
                            UUID(str(notification.originator_id)),
                            notification.originator_version,
                        )
                    ):
                        self.views.apply(self.mapper.to_domain_event(notification))
                self._position = batch[-1].id

    def _feed_views(self, recordings: list[Recording[UUID]]) -> None:
        for recording in recordings:
            self._learn_office(recording.domain_event)
            self.views.apply(recording.domain_event)

    def _learn_office(self, domain_event: Any) -> None:
        """Which department has which slug (for the seed; a slug never changes)."""
        if type(domain_event).__qualname__ == "Office.Registered":
            self._offices[domain_event.department_id] = str(domain_event.profile["slug"])

    def department_by_slug(self, slug: str) -> UUID | None:
        self.catch_up()
        return next((d for d, s in self._offices.items() if s == slug), None)

    # -- queries --------------------------------------------------------------------------

    def office_by_id(self, office_id: UUID) -> Office:
        return self.repository.get(office_id)  # type: ignore[no-any-return]

    def office(self, department_id: UUID) -> Office:
        try:
            return self.office_by_id(Office.create_id(department_id))
        except AggregateNotFoundError as error:
            raise UnknownDepartment() from error

    def schedule(self, department_id: UUID) -> Schedule:
        try:
            return self.repository.get(  # type: ignore[no-any-return]
                Schedule.create_id(department_id)
            )
        except AggregateNotFoundError as error:
            self.office(department_id)  # UnknownDepartment first
            raise NoAppointmentsHere() from error

    def appointment(self, appointment_id: UUID) -> Appointment:
        try:
            return self.repository.get(appointment_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownAppointment() from error

    def free_slots(
        self, department_id: UUID, start: datetime, end: datetime, now: datetime
    ) -> list[FreeSlot]:
        schedule = self.schedule(department_id)
        self.catch_up()
        return schedule.free_slots(start, end, now, self.views.taken(department_id))

    def appointments_of(
        self, department_id: UUID, first_day: date, days: int
    ) -> list[AppointmentSummary]:
        timezone = self._timezone(department_id)
        self.catch_up()
        return self.views.appointments(department_id, first_day, days, timezone)

    def no_shows(self, department_id: UUID, first_day: date, days: int) -> dict[str, int]:
        """Missed appointments per local day (every day of the span, zero included)."""
        zone = ZoneInfo(self._timezone(department_id))
        counts = {(first_day + timedelta(days=n)).isoformat(): 0 for n in range(days)}
        for a in self.appointments_of(department_id, first_day, days):
            if a.status == "missed":
                day = a.start.astimezone(zone).date()
                counts[day.isoformat()] += 1
        return counts

    def _timezone(self, department_id: UUID) -> str:
        try:
            return self.schedule(department_id).terms.timezone
        except NoAppointmentsHere:
            return str(self.office(department_id).profile.get("timezone", "Europe/Berlin"))

    # -- commands -------------------------------------------------------------------------

    def set_schedule(self, department_id: UUID, terms: ScheduleTerms, correlation_id: str) -> None:
        self.office(department_id)

        def attempt() -> None:
            try:
                schedule = self.schedule(department_id)
            except NoAppointmentsHere:
                self.save(Schedule.set_up(department_id, terms, correlation_id))
                return
            schedule.change(terms, correlation_id)
            self.save(schedule)

        _retry(attempt)

    def book(
        self,
        department_id: UUID,
        request_id: UUID,
        start: datetime,
        now: datetime,
        language: str,
        visitor_ref: str | None,
        correlation_id: str,
        staff_id: str | None = None,
    ) -> tuple[Appointment, bool]:
        """(the appointment, whether it is new): the same ``request_id`` again answers the
        appointment it booked before."""
        office = self.office(department_id)

        def attempt() -> tuple[Appointment, bool]:
            appointment_id = Appointment.create_id(department_id, request_id)
            try:
                return self.appointment(appointment_id), False
            except UnknownAppointment:
                pass
            schedule = self.schedule(department_id)
            appointment = Appointment.book(
                schedule, request_id, start, now, language, office.anonymous, visitor_ref,
                correlation_id, staff_id,
            )
            slot = self._slot_for(schedule, appointment.start, correlation_id)
            self._take(schedule, slot, appointment.id, now, correlation_id)
            self.save(slot, appointment)
            return appointment, True

        return _retry(attempt)

    def reschedule(
        self, appointment_id: UUID, start: datetime, now: datetime, correlation_id: str
    ) -> Appointment:
        """The new slot's place taken and the old one's freed, in one save."""

        def attempt() -> Appointment:
            appointment = self.appointment(appointment_id)
            schedule = self.schedule(appointment.department_id)
            old = self._slot_for(schedule, appointment.start, correlation_id)
            appointment.reschedule(schedule, start, now, correlation_id)
            new = self._slot_for(schedule, appointment.start, correlation_id)
            self._take(schedule, new, appointment.id, now, correlation_id)
            old.release(appointment.id, correlation_id)
            self.save(appointment, new, old)
            return appointment

        return _retry(attempt)

    def cancel(
        self,
        appointment_id: UUID,
        by: CancelledBy,
        correlation_id: str,
        reason: StaffCancelReason | None = None,
        staff_id: str | None = None,
    ) -> Appointment:
        """Cancelled, and its place free for someone else at once (the same save)."""

        def attempt() -> Appointment:
            appointment = self.appointment(appointment_id)
            appointment.cancel(by, correlation_id, reason, staff_id)
            slot: Slot = self.repository.get(
                Slot.create_id(appointment.department_id, appointment.start)
            )
            slot.release(appointment.id, correlation_id)
            self.save(appointment, slot)
            return appointment

        return _retry(attempt)

    def check_in(self, appointment_id: UUID, at: datetime, correlation_id: str) -> Appointment:
        def attempt() -> Appointment:
            appointment = self.appointment(appointment_id)
            appointment.check_in(at, correlation_id)
            self.save(appointment)
            return appointment

        return _retry(attempt)

    def mark_missed(self, now: datetime, correlation_id: str) -> int:
        """Every appointment past its check-in window and not checked in becomes missed.
        Replicas may run this at once: one that finds it changed already leaves it."""
        self.catch_up()
        marked = 0
        for summary in self.views.overdue(now):
            appointment = self.appointment(summary.appointment_id)
            if not appointment.is_overdue(now):
                continue
            appointment.mark_missed(now, correlation_id)
            try:
                self.save(appointment)
                marked += 1
            except IntegrityError:
                continue
        return marked

    def _slot_for(self, schedule: Schedule, start: datetime, correlation_id: str) -> Slot:
        """The slot at ``start``, created when its first place is taken; its capacity as
        the schedule says now."""
        capacity = schedule.terms.capacity
        try:
            slot: Slot = self.repository.get(Slot.create_id(schedule.department_id, start))
        except AggregateNotFoundError:
            return Slot(schedule.department_id, start, capacity, correlation_id)
        slot.change_capacity(capacity, correlation_id)
        return slot

    def _take(
        self, schedule: Schedule, slot: Slot, appointment_id: UUID, now: datetime,
        correlation_id: str,
    ) -> None:
        try:
            slot.take(appointment_id, correlation_id)
        except SlotFull as error:
            self.catch_up()
            taken = {**self.views.taken(schedule.department_id), slot.start: slot.capacity}
            raise NoPlaceLeft(slot.start, schedule.nearest_free_slots(slot.start, now, taken)) \
                from error

    # -- what booking learns from the rooms service ----------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        """Events booking does not react to are tracked and otherwise ignored."""

    @policy.register
    def _(self, e: rooms_events.DepartmentRegistered, p: ProcessingEvent[UUID]) -> None:
        try:
            self.office(e.department_id)
        except UnknownDepartment:
            p.collect_events(Office(e.department_id, e.profile.model_dump(), e.aggregate_version))

    @policy.register
    def _(self, e: rooms_events.DepartmentUpdated, p: ProcessingEvent[UUID]) -> None:
        self._change_office(
            e.department_id, p, lambda o: o.update_profile(e.profile.model_dump(),
                                                           e.aggregate_version)
        )

    @policy.register
    def _(self, e: rooms_events.StaffAssigned, p: ProcessingEvent[UUID]) -> None:
        self._change_office(
            e.department_id, p, lambda o: o.assign_staff(e.staff_id, e.role, e.aggregate_version)
        )

    @policy.register
    def _(self, e: rooms_events.StaffUnassigned, p: ProcessingEvent[UUID]) -> None:
        self._change_office(
            e.department_id, p, lambda o: o.unassign_staff(e.staff_id, e.aggregate_version)
        )

    def _change_office(
        self, department_id: UUID, p: ProcessingEvent[UUID], change: Callable[[Office], None]
    ) -> None:
        try:
            office = self.office(department_id)
        except UnknownDepartment as error:
            raise RetryLater(f"department {department_id} is not registered yet") from error
        change(office)
        p.collect_events(office)


def _retry(command: Callable[[], T]) -> T:
    """Optimistic concurrency: read again and decide again when another writer came first."""
    for _ in range(ATTEMPTS):
        try:
            return command()
        except IntegrityError:
            continue
    raise TooBusy()
