"""Knocks and the waiting room: the pure domain of the queue service."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

KNOCK_NAMESPACE = UUID("0b5e7c1a-8f7d-4c3e-9a61-2d4f5b6c7e80")
NUMBER_NAMESPACE = UUID("6f1d2c4e-3b5a-4e7f-8a9b-0c1d2e3f4a5b")
PRIORITY_ORDER = {"appointment": 0, "walk_in": 1}
KEPT_DURATIONS = 20


class DomainError(Exception):
    pass


class TicketNotWaiting(DomainError):
    def __init__(self, status: str, message: str | None = None) -> None:
        super().__init__(message or f"This ticket is no longer waiting (it is {_said(status)}).")
        self.status = status
        self.extra = {"ticket_status": status}


class KnockAlreadyAnswered(TicketNotWaiting):
    """The same knock again after its ticket left the line: a knock is answered once."""

    def __init__(self, status: str) -> None:
        super().__init__(
            status,
            f"This knock has been answered already: its ticket is {_said(status)}. "
            "Nothing of it is handed out again; to wait again, please knock anew "
            "from the department's page.",
        )


class OfficeClosed(DomainError):
    """A knock or a transfer to a door that is closed; when it opens next, if known."""

    def __init__(self, next_opening: datetime | None) -> None:
        text = "The office is closed at the moment."
        if next_opening:
            text += f" It opens next on {next_opening.isoformat(timespec='minutes')}."
        super().__init__(text)
        self.next_opening = next_opening
        self.extra = {"opens_at": next_opening}


class KnockRefused(DomainError):
    """A knock that does not fit the door: a name where counselling is anonymous, a
    language or a topic the office does not offer."""


def _said(status: str) -> str:
    return status.replace("_", " ")


class Ticket(Aggregate):
    """One knock on one department's door, from waiting to its end."""

    @staticmethod
    def create_id(department_id: UUID, knock_id: UUID) -> UUID:
        """A retried knock (the same ``knock_id``) always names the same ticket."""
        return uuid5(KNOCK_NAMESPACE, f"{department_id}/{knock_id}")

    @event("Knocked")
    def __init__(
        self,
        department_id: UUID,
        priority: str,
        number: int,
        knock_id: UUID,
        correlation_id: str,
    ) -> None:
        if priority not in PRIORITY_ORDER:
            raise DomainError(f"unknown priority {priority!r}")
        self.department_id = department_id
        self.priority = priority
        self.number = number
        self.status = "waiting"
        self.consultation_id: UUID | None = None
        self.decline_reason: str | None = None
        self.expiry_reason: str | None = None
        self.staff_id: str | None = None

    @property
    def knocked_at(self) -> datetime:
        return self.created_on

    def answer_repeated_knock(self) -> None:
        """The same knock sent again (a retried request) gets its ticket back while it
        waits. Once the ticket has left the line (admitted, withdrawn, declined, expired)
        the knock is spent: handing its ticket out again would let whoever repeats it
        take over the ticket, and with it the consultation it was admitted to."""
        if self.status != "waiting":
            raise KnockAlreadyAnswered(self.status)

    def _require_waiting(self) -> None:
        if self.status != "waiting":
            raise TicketNotWaiting(self.status)

    def admit(self, staff_id: str, at: datetime, correlation_id: str) -> None:
        self._require_waiting()
        waited = max(0.0, (at - self.knocked_at).total_seconds())
        self._admitted(
            staff_id=staff_id,
            waited_seconds=waited,
            department_id=self.department_id,
            correlation_id=correlation_id,
        )

    @event("Admitted")
    def _admitted(
        self, staff_id: str, waited_seconds: float, department_id: UUID, correlation_id: str
    ) -> None:
        self.status = "admitted"
        self.staff_id = staff_id

    def decline(self, staff_id: str, reason: str, correlation_id: str) -> None:
        self._require_waiting()
        self._declined(
            staff_id=staff_id,
            reason=reason,
            department_id=self.department_id,
            correlation_id=correlation_id,
        )

    @event("Declined")
    def _declined(
        self, staff_id: str, reason: str, department_id: UUID, correlation_id: str
    ) -> None:
        self.status = "declined"
        self.decline_reason = reason

    def withdraw(self, correlation_id: str) -> None:
        self._require_waiting()
        self._withdrawn(department_id=self.department_id, correlation_id=correlation_id)

    @event("Withdrawn")
    def _withdrawn(self, department_id: UUID, correlation_id: str) -> None:
        self.status = "withdrawn"

    def transfer(self, to_department_id: UUID, staff_id: str, correlation_id: str) -> None:
        self._require_waiting()
        if to_department_id == self.department_id:
            raise DomainError("The ticket is already waiting at this department.")
        self._transferred(
            from_department_id=self.department_id,
            to_department_id=to_department_id,
            staff_id=staff_id,
            correlation_id=correlation_id,
        )

    @event("Transferred")
    def _transferred(
        self, from_department_id: UUID, to_department_id: UUID, staff_id: str, correlation_id: str
    ) -> None:
        self.department_id = to_department_id

    def expire(self, reason: str, correlation_id: str) -> None:
        self._require_waiting()
        self._expired(
            reason=reason, department_id=self.department_id, correlation_id=correlation_id
        )

    @event("Expired")
    def _expired(self, reason: str, department_id: UUID, correlation_id: str) -> None:
        self.status = "expired"
        self.expiry_reason = reason

    @event("ConsultationAssigned")
    def assign_consultation(self, consultation_id: UUID) -> None:
        self.consultation_id = consultation_id


class TicketNumber(Aggregate):
    """A department's waiting number of one day, handed out once.

    Saved in the same transaction as the ticket that carries it: the store refuses a
    second aggregate of the same id, so two replicas that both picked the next number
    cannot both keep it, and a refused knock leaves no number behind (no gaps)."""

    @staticmethod
    def create_id(department_id: UUID, day: str, number: int, ticket_id: UUID) -> UUID:
        return uuid5(NUMBER_NAMESPACE, f"{department_id}/{day}/{number}")

    @event("Taken")
    def __init__(self, department_id: UUID, day: str, number: int, ticket_id: UUID) -> None:
        self.department_id = department_id
        self.day = day
        self.number = number
        self.ticket_id = ticket_id


class Door(Aggregate):
    """The queue's own copy of what it needs to know about a department."""

    @staticmethod
    def create_id(department_id: UUID, profile: dict[str, Any], upstream_version: int) -> UUID:
        return department_id

    @event("Registered")
    def __init__(self, department_id: UUID, profile: dict[str, Any], upstream_version: int) -> None:
        self.profile = profile
        self.upstream_version = upstream_version
        self.is_open = False
        self.closes_at: datetime | None = None
        self.next_opening: datetime | None = None
        self.weekly: list[dict[str, Any]] = []
        self.closed_days: list[str] = []
        self.roster: dict[str, str] = {}
        self.durations: list[float] = []

    def is_stale(self, upstream_version: int) -> bool:
        """Events of the department arrive out of order after a redelivery: keep the newest."""
        return upstream_version <= self.upstream_version

    @event("ProfileUpdated")
    def update_profile(self, profile: dict[str, Any], upstream_version: int) -> None:
        self.profile = profile
        self.upstream_version = upstream_version

    @event("HoursSet")
    def set_hours(
        self, weekly: list[dict[str, Any]], closed_days: list[str], upstream_version: int
    ) -> None:
        self.weekly = weekly
        self.closed_days = closed_days
        self.upstream_version = upstream_version

    @event("Opened")
    def open(self, closes_at: datetime | None, upstream_version: int) -> None:
        self.is_open = True
        self.closes_at = closes_at
        self.upstream_version = upstream_version

    @event("Closed")
    def close(self, next_opening: datetime | None, upstream_version: int) -> None:
        self.is_open = False
        self.next_opening = next_opening
        self.upstream_version = upstream_version

    @event("StaffAssigned")
    def assign_staff(self, staff_id: str, role: str, upstream_version: int) -> None:
        self.roster[staff_id] = role
        self.upstream_version = upstream_version

    @event("StaffUnassigned")
    def unassign_staff(self, staff_id: str, upstream_version: int) -> None:
        self.roster.pop(staff_id, None)
        self.upstream_version = upstream_version

    @event("ConsultationTimed")
    def record_consultation(self, duration_seconds: float) -> None:
        self.durations = [*self.durations, duration_seconds][-KEPT_DURATIONS:]

    @property
    def anonymous(self) -> bool:
        return bool(self.profile.get("anonymous"))

    @property
    def languages(self) -> list[str]:
        return list(self.profile.get("languages", []))

    @property
    def topic_ids(self) -> list[str]:
        return [t["id"] for t in self.profile.get("topics", [])]

    def require_open(self) -> None:
        if not self.is_open:
            raise OfficeClosed(self.next_opening)

    def check_knock(self, named: bool, language: str, topic: str | None) -> None:
        """What a knock may ask of this door (before it is counted against any limit)."""
        if self.anonymous and named:
            raise KnockRefused("This counselling is anonymous: please do not give your name.")
        if language not in self.languages:
            raise KnockRefused(f"This office offers the languages {', '.join(self.languages)}.")
        if topic is not None and topic not in self.topic_ids:
            raise KnockRefused(f"Please choose one of the topics: {', '.join(self.topic_ids)}.")

    def serves(self, staff_id: str) -> bool:
        return staff_id in self.roster
