"""What the queue publishes: its stored ticket events as integration events.

Door events stay inside the queue (the rooms service owns what they copy), and so does
a ticket's consultation (the rooms service announced it).
"""

from __future__ import annotations

from typing import Any

from services.common.contracts import queue as contracts
from services.common.mapping import ContractMapper
from services.queue.domain import Door, Ticket, TicketNumber

# The event classes ``@event`` creates on the aggregates are not known to mypy.
T: Any = Ticket
D: Any = Door
N: Any = TicketNumber

to_contract = ContractMapper(
    {
        T.Knocked: lambda e, env: contracts.Knocked(
            **env,
            ticket_id=e.originator_id,
            department_id=e.department_id,
            priority=e.priority,
            number=e.number,
            # An appointment knocks with its own id as the knock id (queue/api.py).
            appointment_id=e.knock_id if e.priority == "appointment" else None,
        ),
        T.Admitted: lambda e, env: contracts.Admitted(
            **env,
            ticket_id=e.originator_id,
            department_id=e.department_id,
            staff_id=e.staff_id,
            waited_seconds=e.waited_seconds,
        ),
        T.Declined: lambda e, env: contracts.Declined(
            **env,
            ticket_id=e.originator_id,
            department_id=e.department_id,
            staff_id=e.staff_id,
            reason=e.reason,
        ),
        T.Withdrawn: lambda e, env: contracts.Withdrawn(
            **env, ticket_id=e.originator_id, department_id=e.department_id
        ),
        T.Transferred: lambda e, env: contracts.Transferred(
            **env,
            ticket_id=e.originator_id,
            from_department_id=e.from_department_id,
            to_department_id=e.to_department_id,
            staff_id=e.staff_id,
        ),
        T.Expired: lambda e, env: contracts.Expired(
            **env, ticket_id=e.originator_id, department_id=e.department_id, reason=e.reason
        ),
    },
    internal=[
        T.ConsultationAssigned,
        N.Taken,
        D.Registered,
        D.ProfileUpdated,
        D.HoursSet,
        D.Opened,
        D.Closed,
        D.StaffAssigned,
        D.StaffUnassigned,
        D.ConsultationTimed,
    ],
)
