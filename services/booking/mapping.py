"""What booking publishes: its schedules and appointments as integration events.

A slot's places are booking's own bookkeeping, and what it knows of departments is the
rooms service's news (published there already): both stay inside.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.booking.domain import Appointment, Schedule, Slot
from services.booking.office import Office
from services.common.contracts import IntegrationEvent
from services.common.contracts import booking as contracts
from services.common.mapping import ContractMapper

# The event classes ``@event`` creates on the aggregates are not known to mypy.
S: Any = Schedule
A: Any = Appointment
L: Any = Slot
F: Any = Office


def _slot_end(e: Any) -> datetime:
    return e.start + timedelta(minutes=e.slot_minutes)  # type: ignore[no-any-return]


def _schedule_set(e: Any, env: dict[str, Any]) -> IntegrationEvent:
    return contracts.ScheduleSet(**env, department_id=e.department_id, **e.terms)


to_contract = ContractMapper(
    {
        S.Created: _schedule_set,
        S.Changed: _schedule_set,
        A.Booked: lambda e, env: contracts.AppointmentBooked(
            **env,
            appointment_id=e.originator_id,
            department_id=e.department_id,
            slot_start=e.start,
            slot_end=_slot_end(e),
            booked_by="staff" if e.staff_id else "citizen",
            staff_id=e.staff_id,
        ),
        A.Rescheduled: lambda e, env: contracts.AppointmentRescheduled(
            **env,
            appointment_id=e.originator_id,
            department_id=e.department_id,
            from_start=e.from_start,
            slot_start=e.start,
            slot_end=_slot_end(e),
        ),
        A.Cancelled: lambda e, env: contracts.AppointmentCancelled(
            **env,
            appointment_id=e.originator_id,
            department_id=e.department_id,
            slot_start=e.start,
            cancelled_by=e.by,
            reason=e.reason,
            staff_id=e.staff_id,
        ),
        A.CheckedIn: lambda e, env: contracts.AppointmentCheckedIn(
            **env,
            appointment_id=e.originator_id,
            department_id=e.department_id,
            slot_start=e.start,
            checked_in_at=e.at,
        ),
        A.Missed: lambda e, env: contracts.AppointmentMissed(
            **env, appointment_id=e.originator_id, department_id=e.department_id,
            slot_start=e.start,
        ),
    },
    internal=[
        L.Created, L.Taken, L.Released, L.CapacityChanged,
        F.Registered, F.Updated, F.StaffAssigned, F.StaffUnassigned,
    ],
)
