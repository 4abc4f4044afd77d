"""Events published by the queue service (knocks and the waiting room).

What a citizen types (display name, topic, language) is deliberately absent:
it lives only in a short-lived key-value bucket, never in the durable record.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from services.common.contracts.base import IntegrationEvent

Priority = Literal["appointment", "walk_in"]
DeclineReason = Literal[
    "not_responsible", "documents_missing", "appointment_required", "no_capacity", "other"
]
ExpiryReason = Literal["office_closed", "no_show"]


class _QueueEvent(IntegrationEvent):
    SERVICE = "queue"


class Knocked(_QueueEvent):
    ticket_id: UUID
    department_id: UUID
    priority: Priority
    number: int
    # The appointment checked in with (priority appointment): links the ticket, and so its
    # consultation, to the booking's events. Optional, so version 1 stays as it was.
    appointment_id: UUID | None = None


class Admitted(_QueueEvent):
    ticket_id: UUID
    department_id: UUID
    staff_id: str
    waited_seconds: float


class Declined(_QueueEvent):
    ticket_id: UUID
    department_id: UUID
    staff_id: str
    reason: DeclineReason


class Withdrawn(_QueueEvent):
    ticket_id: UUID
    department_id: UUID


class Transferred(_QueueEvent):
    ticket_id: UUID
    from_department_id: UUID
    to_department_id: UUID
    staff_id: str


class Expired(_QueueEvent):
    ticket_id: UUID
    department_id: UUID
    reason: ExpiryReason
