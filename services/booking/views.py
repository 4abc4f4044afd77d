"""In-memory views of the booking store: places taken per slot, and appointments per day.

Fed from the stored domain events (on commit in this replica, and by ``catch_up`` from
the notification log for what other replicas stored), each event applied once: a view
keeps the version it has seen of every slot and appointment. A slot search for a whole
year reads only this, never the store. The views are for showing; whether a place is
free when booking is decided by the ``Slot`` aggregate in the store.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class AppointmentSummary:
    """What staff see of an appointment (no personal data: that is elsewhere)."""

    appointment_id: UUID
    department_id: UUID
    start: datetime
    end: datetime
    status: str  # booked | checked_in | missed | cancelled
    booked_by_staff: str | None = None
    checked_in_at: datetime | None = None
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    check_in_closes: datetime | None = None


class BookingViews:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Callable[[AppointmentSummary], None]] = []
        self._versions: dict[UUID, int] = {}
        self._slots: dict[UUID, tuple[UUID, datetime]] = {}  # slot id -> (department, start)
        self._taken: dict[UUID, dict[datetime, int]] = defaultdict(dict)  # per department
        self._appointments: dict[UUID, AppointmentSummary] = {}

    def on_appointment_change(self, listener: Callable[[AppointmentSummary], None]) -> None:
        """``listener`` hears each appointment as changed, once per change (in the thread
        that applied it)."""
        self._listeners.append(listener)

    def has_seen(self, originator_id: UUID, version: int) -> bool:
        return self._versions.get(originator_id, 0) >= version

    def apply(self, domain_event: Any) -> bool:
        """Apply one stored event (once); True when it changed a view."""
        name = type(domain_event).__qualname__
        kind, _, what = name.partition(".")
        if kind not in ("Slot", "Appointment"):
            return False
        changed: AppointmentSummary | None = None
        with self._lock:
            origin, version = domain_event.originator_id, domain_event.originator_version
            if self._versions.get(origin, 0) >= version:
                return False
            self._versions[origin] = version
            if kind == "Slot":
                self._apply_slot(origin, what, domain_event)
            else:
                changed = self._apply_appointment(origin, what, domain_event)
        if changed is not None:
            for listener in self._listeners:
                listener(changed)
        return True

    def _apply_slot(self, slot_id: UUID, what: str, e: Any) -> None:
        if what == "Created":
            self._slots[slot_id] = (e.department_id, e.start)
            return
        known = self._slots.get(slot_id)
        if known is None:
            return
        department_id, start = known
        taken = self._taken[department_id]
        if what == "Taken":
            taken[start] = taken.get(start, 0) + 1
        elif what == "Released":
            left = taken.get(start, 0) - 1
            if left > 0:
                taken[start] = left
            else:
                taken.pop(start, None)

    def _apply_appointment(
        self, appointment_id: UUID, what: str, e: Any
    ) -> AppointmentSummary | None:
        if what == "Booked":
            start = e.start
            booked = self._appointments[appointment_id] = AppointmentSummary(
                appointment_id=appointment_id,
                department_id=e.department_id,
                start=start,
                end=start + timedelta(minutes=e.slot_minutes),
                status="booked",
                booked_by_staff=e.staff_id,
                check_in_closes=start + timedelta(minutes=e.check_in_after_minutes),
            )
            return booked
        summary = self._appointments.get(appointment_id)
        if summary is None:
            return None
        if what == "Rescheduled":
            grace = (summary.check_in_closes or summary.start) - summary.start
            summary = replace(
                summary,
                start=e.start,
                end=e.start + timedelta(minutes=e.slot_minutes),
                check_in_closes=e.start + grace,
            )
        elif what == "Cancelled":
            summary = replace(
                summary, status="cancelled", cancelled_by=e.by, cancel_reason=e.reason
            )
        elif what == "CheckedIn":
            summary = replace(summary, status="checked_in", checked_in_at=e.at)
        elif what == "Missed":
            summary = replace(summary, status="missed")
        self._appointments[appointment_id] = summary
        return summary

    # -- queries --------------------------------------------------------------------------

    def taken(self, department_id: UUID) -> dict[datetime, int]:
        """Places held per slot start of one department (a copy)."""
        with self._lock:
            return dict(self._taken.get(department_id, {}))

    def appointments(
        self, department_id: UUID, first_day: date, days: int, timezone: str
    ) -> list[AppointmentSummary]:
        """A department's appointments on ``days`` local days from ``first_day``, by start."""
        zone = ZoneInfo(timezone)
        last_day = first_day + timedelta(days=days)
        with self._lock:
            found = [
                a for a in self._appointments.values()
                if a.department_id == department_id
                and first_day <= a.start.astimezone(zone).date() < last_day
            ]
        return sorted(found, key=lambda a: (a.start, str(a.appointment_id)))

    def overdue(self, at: datetime) -> list[AppointmentSummary]:
        """Booked, not checked in, and past the check-in window: to be marked missed."""
        with self._lock:
            return [
                a for a in self._appointments.values()
                if a.status == "booked" and a.check_in_closes is not None
                and at > a.check_in_closes
            ]
