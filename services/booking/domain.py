"""Schedules, slots and appointments: the pure domain of the booking service.

Methods are the commands; the events they record are named in the past tense.
A command that raises records nothing (the errors are in errors.py, the terms
of a schedule in terms.py). Every instant is an aware datetime; those
recorded are in UTC.

The consistency boundary of a booking is the slot (department, start): every
place taken or freed is a new version of that one ``Slot`` aggregate, so two
replicas racing for its last place both write the same version and the event
store's optimistic concurrency refuses one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from services.booking import slots
from services.booking.errors import (
    AppointmentNotBooked,
    DomainError,
    NotBookable,
    OutsideCheckInWindow,
    SlotFull,
)
from services.booking.slots import FreeSlot
from services.booking.terms import ScheduleTerms

SCHEDULE_NAMESPACE = UUID("3d0f6a8e-5b1c-4e2a-9f7d-8c6b4a2e1d09")
SLOT_NAMESPACE = UUID("9a4e2c7b-1d3f-4b8a-a6e5-0f2d7c9b3e14")
APPOINTMENT_NAMESPACE = UUID("c7b1e5d3-6a2f-4e9c-8b0d-4f1a3e7c5d28")

LANGUAGES = ("de", "en")
CancelledBy = Literal["citizen", "staff"]
StaffCancelReason = Literal[
    "office_closed", "staff_unavailable", "not_responsible", "duplicate", "other"
]


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a point in time needs its time zone")
    return at.astimezone(UTC)


def _local(at: datetime, timezone: str) -> str:
    return f"{at.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


# -- Schedule --------------------------------------------------------------------


class Schedule(Aggregate):
    """A department's appointment schedule. Create it with ``Schedule.set_up``."""

    @staticmethod
    def create_id(department_id: UUID) -> UUID:
        return uuid5(SCHEDULE_NAMESPACE, str(department_id))

    @classmethod
    def set_up(cls, department_id: UUID, terms: ScheduleTerms, correlation_id: str) -> Schedule:
        terms.validate()
        return cls(
            department_id=department_id, terms=terms.to_record(), correlation_id=correlation_id
        )

    @event("Created")
    def __init__(self, department_id: UUID, terms: dict[str, Any], correlation_id: str) -> None:
        self.department_id = department_id
        self.terms = ScheduleTerms.from_record(terms)

    def change(self, terms: ScheduleTerms, correlation_id: str) -> None:
        terms.validate()
        if terms != self.terms:
            self._changed(
                terms=terms.to_record(),
                department_id=self.department_id,
                correlation_id=correlation_id,
            )

    @event("Changed")
    def _changed(self, terms: dict[str, Any], department_id: UUID, correlation_id: str) -> None:
        self.terms = ScheduleTerms.from_record(terms)

    # -- queries ------------------------------------------------------------------

    def bookable_window(self, now: datetime) -> tuple[datetime, datetime]:
        terms = self.terms
        return slots.bookable_window(
            _require_aware(now), terms.days_ahead, terms.notice_minutes, terms.timezone
        )

    def check_bookable(self, start: datetime, now: datetime) -> None:
        """Raise NotBookable unless ``start`` is a slot start that may be booked at ``now``."""
        start, now = _require_aware(start), _require_aware(now)
        terms = self.terms
        earliest, latest = self.bookable_window(now)
        if start < now:
            raise NotBookable("past", "This time has passed. Please choose a later one.")
        if start < earliest:
            raise NotBookable(
                "short_notice",
                f"Appointments are booked at least {terms.notice_minutes} minutes ahead: "
                f"the earliest is {_local(earliest, terms.timezone)}.",
            )
        if start >= latest:
            raise NotBookable(
                "too_far_ahead",
                f"Appointments are booked at most {terms.days_ahead} days ahead.",
            )
        if not slots.is_slot_start(terms.plan, start):
            raise NotBookable(
                "not_a_slot",
                f"The time {_local(start, terms.timezone)} is not the start of an "
                "appointment slot.",
            )

    def free_slots(
        self, start: datetime, end: datetime, now: datetime, taken: Mapping[datetime, int]
    ) -> list[FreeSlot]:
        """The free slots in [start, end) that may be booked at ``now``."""
        earliest, latest = self.bookable_window(now)
        low, high = max(_require_aware(start), earliest), min(_require_aware(end), latest)
        return slots.free_slots(self.terms.plan, low, high, taken)

    def nearest_free_slots(
        self, requested: datetime, now: datetime, taken: Mapping[datetime, int], count: int = 3
    ) -> list[FreeSlot]:
        return slots.nearest_free_slots(
            self.terms.plan, _require_aware(requested), taken, self.bookable_window(now), count
        )


# -- Slot ------------------------------------------------------------------------


class Slot(Aggregate):
    """The places of one slot (department, start): the consistency boundary of booking."""

    @staticmethod
    def create_id(department_id: UUID, start: datetime) -> UUID:
        return uuid5(SLOT_NAMESPACE, f"{department_id}/{_require_aware(start).isoformat()}")

    @event("Created")
    def __init__(
        self, department_id: UUID, start: datetime, capacity: int, correlation_id: str
    ) -> None:
        if capacity < 1:
            raise DomainError("a slot has at least one place")
        self.department_id = department_id
        self.start = _require_aware(start)
        self.capacity = capacity
        self.holders: list[UUID] = []  # appointment ids, in the order they took a place

    @property
    def remaining(self) -> int:
        return max(0, self.capacity - len(self.holders))

    def take(self, appointment_id: UUID, correlation_id: str) -> None:
        """Hold a place for the appointment; taking it again changes nothing."""
        if appointment_id in self.holders:
            return
        if self.remaining == 0:
            raise SlotFull(self.start)
        self._taken(appointment_id=appointment_id, correlation_id=correlation_id)

    @event("Taken")
    def _taken(self, appointment_id: UUID, correlation_id: str) -> None:
        self.holders.append(appointment_id)

    def release(self, appointment_id: UUID, correlation_id: str) -> None:
        """Free the appointment's place; releasing one that holds none changes nothing."""
        if appointment_id in self.holders:
            self._released(appointment_id=appointment_id, correlation_id=correlation_id)

    @event("Released")
    def _released(self, appointment_id: UUID, correlation_id: str) -> None:
        self.holders.remove(appointment_id)

    def change_capacity(self, capacity: int, correlation_id: str) -> None:
        """A new capacity from the schedule. Places already held stay held even above it."""
        if capacity < 1:
            raise DomainError("a slot has at least one place")
        if capacity != self.capacity:
            self._capacity_changed(capacity=capacity, correlation_id=correlation_id)

    @event("CapacityChanged")
    def _capacity_changed(self, capacity: int, correlation_id: str) -> None:
        self.capacity = capacity


# -- Appointment -----------------------------------------------------------------


def reminder_times(
    start: datetime, lead_minutes: tuple[int, ...], booked_at: datetime
) -> list[datetime]:
    """When to remind, earliest first: each lead time before the start, if after the booking."""
    times = {start - timedelta(minutes=m) for m in lead_minutes}
    return sorted(t for t in times if t > booked_at)


class Appointment(Aggregate):
    """One booked place, from booking until checked in, missed or cancelled.

    Personal data (name, e-mail, topic) is never here: it lives elsewhere under
    the pseudonymous ``visitor_ref`` and is deleted after its retention.
    """

    @staticmethod
    def create_id(department_id: UUID, request_id: UUID) -> UUID:
        """A retried booking (the same ``request_id``) always names the same appointment."""
        return uuid5(APPOINTMENT_NAMESPACE, f"{department_id}/{request_id}")

    @classmethod
    def book(
        cls,
        schedule: Schedule,
        request_id: UUID,
        start: datetime,
        now: datetime,
        language: str,
        anonymous: bool,
        visitor_ref: str | None,
        correlation_id: str,
        staff_id: str | None = None,
    ) -> Appointment:
        """Book ``start`` under the schedule's terms (the slot's place is taken separately)."""
        schedule.check_bookable(start, now)
        terms = schedule.terms
        return cls(
            department_id=schedule.department_id,
            request_id=request_id,
            start=_require_aware(start),
            slot_minutes=terms.slot_minutes,
            timezone=terms.timezone,
            check_in_before_minutes=terms.check_in_before_minutes,
            check_in_after_minutes=terms.check_in_after_minutes,
            language=language,
            anonymous=anonymous,
            visitor_ref=visitor_ref,
            staff_id=staff_id,
            correlation_id=correlation_id,
        )

    @event("Booked")
    def __init__(
        self,
        department_id: UUID,
        request_id: UUID,
        start: datetime,
        slot_minutes: int,
        timezone: str,
        check_in_before_minutes: int,
        check_in_after_minutes: int,
        language: str,
        anonymous: bool,
        visitor_ref: str | None,
        staff_id: str | None,
        correlation_id: str,
    ) -> None:
        if language not in LANGUAGES:
            raise DomainError(f"language must be one of {', '.join(LANGUAGES)}")
        self.department_id = department_id
        self.start = _require_aware(start)
        self.slot_minutes = slot_minutes
        self.timezone = timezone
        self.check_in_before = timedelta(minutes=check_in_before_minutes)
        self.check_in_after = timedelta(minutes=check_in_after_minutes)
        self.language = language
        self.anonymous = anonymous
        self.visitor_ref = visitor_ref
        self.booked_by_staff = staff_id
        self.status = "booked"
        self.checked_in_at: datetime | None = None
        self.cancelled_by: str | None = None
        self.cancel_reason: str | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.slot_minutes)

    @property
    def check_in_window(self) -> tuple[datetime, datetime]:
        return self.start - self.check_in_before, self.start + self.check_in_after

    def _require_booked(self) -> None:
        if self.status != "booked":
            raise AppointmentNotBooked(self.status)

    def reschedule(
        self, schedule: Schedule, start: datetime, now: datetime, correlation_id: str
    ) -> None:
        """Move to another slot (whose place is taken, and the old one freed, separately)."""
        self._require_booked()
        if schedule.department_id != self.department_id:
            raise DomainError("An appointment moves only within its department.")
        if _require_aware(start) == self.start:
            raise DomainError("The appointment is already at this time.")
        schedule.check_bookable(start, now)
        self._rescheduled(
            from_start=self.start,
            start=_require_aware(start),
            slot_minutes=schedule.terms.slot_minutes,
            department_id=self.department_id,
            correlation_id=correlation_id,
        )

    @event("Rescheduled")
    def _rescheduled(
        self,
        from_start: datetime,
        start: datetime,
        slot_minutes: int,
        department_id: UUID,
        correlation_id: str,
    ) -> None:
        self.start = start
        self.slot_minutes = slot_minutes

    def cancel(
        self,
        by: CancelledBy,
        correlation_id: str,
        reason: StaffCancelReason | None = None,
        staff_id: str | None = None,
    ) -> None:
        """Cancel: by the citizen (no reason asked), or by staff, who give a reason."""
        self._require_booked()
        if by == "staff":
            if not staff_id:
                raise DomainError("Staff cancelling an appointment say who they are.")
            if reason not in get_args(StaffCancelReason):
                raise DomainError("Staff cancelling an appointment give one of the reasons.")
        elif by == "citizen":
            reason, staff_id = None, None
        else:
            raise DomainError("An appointment is cancelled by the citizen or by staff.")
        self._cancelled(
            by=by,
            reason=reason,
            staff_id=staff_id,
            start=self.start,
            department_id=self.department_id,
            correlation_id=correlation_id,
        )

    @event("Cancelled")
    def _cancelled(
        self,
        by: str,
        reason: str | None,
        staff_id: str | None,
        start: datetime,
        department_id: UUID,
        correlation_id: str,
    ) -> None:
        self.status = "cancelled"
        self.cancelled_by = by
        self.cancel_reason = reason

    def check_in(self, at: datetime, correlation_id: str) -> None:
        """Check in inside the window; checking in again changes nothing."""
        if self.status == "checked_in":
            return
        self._require_booked()
        opens, closes = self.check_in_window
        if not opens <= _require_aware(at) <= closes:
            raise OutsideCheckInWindow(opens, closes, self.timezone)
        self._checked_in(
            at=_require_aware(at),
            start=self.start,
            department_id=self.department_id,
            correlation_id=correlation_id,
        )

    @event("CheckedIn")
    def _checked_in(
        self, at: datetime, start: datetime, department_id: UUID, correlation_id: str
    ) -> None:
        self.status = "checked_in"
        self.checked_in_at = at

    def is_overdue(self, at: datetime) -> bool:
        """Booked, not checked in, and the check-in window (the grace period) is over."""
        return self.status == "booked" and _require_aware(at) > self.check_in_window[1]

    def mark_missed(self, at: datetime, correlation_id: str) -> None:
        self._require_booked()
        if not self.is_overdue(at):
            raise DomainError("The appointment can still be checked in.")
        self._missed(start=self.start, department_id=self.department_id,
                     correlation_id=correlation_id)

    @event("Missed")
    def _missed(self, start: datetime, department_id: UUID, correlation_id: str) -> None:
        self.status = "missed"
