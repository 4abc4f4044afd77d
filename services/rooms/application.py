"""The rooms service layer: commands and queries on its event store, and its policy."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import singledispatchmethod
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from services.common.contracts import queue as queue_events
from services.common.contracts import rooms as contracts
from services.common.eventstore import ServiceApplication
from services.common.mapping import ContractMapper
from services.rooms.domain import Consultation, ConsultationRead, Department, DomainError

T = TypeVar("T")
# The event classes ``@event`` creates on the aggregates are not known to mypy.
D: Any = Department
C: Any = Consultation
R: Any = ConsultationRead
DEPARTMENT_REGISTERED = get_topic(D.Registered)


class UnknownDepartment(LookupError):
    def __init__(self, department_id: UUID) -> None:
        super().__init__("There is no such department.")
        self.department_id = department_id


class UnknownConsultation(LookupError):
    def __init__(self, consultation_id: UUID) -> None:
        super().__init__("There is no such consultation.")
        self.consultation_id = consultation_id


class Rooms(ServiceApplication):
    name = "rooms"

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._department_ids: set[UUID] = set()
        self._ids_lock = threading.Lock()
        self._ids_position = 0

    # -- departments ---------------------------------------------------------------

    def register_department(
        self,
        slug: str,
        profile: dict[str, Any],
        weekly: list[dict[str, Any]],
        closed_days: list[str],
        correlation_id: str,
    ) -> UUID:
        """Register a department once; an existing one keeps what its admins made of it."""
        department_id = Department.create_id(slug)
        try:
            self.repository.get(department_id)
            return department_id
        except AggregateNotFoundError:
            department = Department(slug, profile, correlation_id)
        department.set_opening_hours(weekly, closed_days, correlation_id)
        with contextlib.suppress(IntegrityError):  # registered a moment ago by another replica
            self.save(department)
        return department_id

    def department(self, department_id: UUID) -> Department:
        try:
            return self.repository.get(department_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownDepartment(department_id) from error

    def department_ids(self) -> list[UUID]:
        """Ids of every registered department, kept current from the notification log."""
        with self._ids_lock:
            while True:
                batch = self.notification_log.select(
                    start=self._ids_position + 1, limit=self.log_section_size
                )
                if not batch:
                    break
                for n in batch:
                    if n.topic == DEPARTMENT_REGISTERED:
                        self._department_ids.add(UUID(str(n.originator_id)))
                self._ids_position = batch[-1].id
            return sorted(self._department_ids)

    def departments(self) -> list[Department]:
        return [self.department(i) for i in self.department_ids()]

    def _change_department(
        self, department_id: UUID, change: Callable[[Department], None]
    ) -> Department:
        return self._retry(lambda: self._apply(self.department(department_id), change))

    def _apply(self, aggregate: T, change: Callable[[T], None]) -> T:
        change(aggregate)
        self.save(aggregate)  # type: ignore[arg-type]
        return aggregate

    @staticmethod
    def _retry(command: Callable[[], T], attempts: int = 5) -> T:
        """Optimistic concurrency: re-read and re-apply when another writer came first."""
        for attempt in range(attempts):
            try:
                return command()
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def follow_schedules(self, at: datetime, correlation_id: str) -> None:
        for department_id in self.department_ids():
            self._change_department(department_id, lambda d: d.follow_schedule(at, correlation_id))

    def open_office(self, department_id: UUID, correlation_id: str) -> Department:
        now = datetime.now(UTC)
        return self._change_department(department_id, lambda d: d.open_early(now, correlation_id))

    def close_office(self, department_id: UUID, correlation_id: str) -> Department:
        now = datetime.now(UTC)
        return self._change_department(department_id, lambda d: d.close_early(now, correlation_id))

    def set_offer(
        self,
        department_id: UUID,
        languages: list[str],
        topics: list[dict[str, str]],
        correlation_id: str,
    ) -> Department:
        """The languages and topics a department offers (a new version of its profile)."""

        def change(department: Department) -> None:
            profile = {**department.profile, "languages": languages, "topics": topics}
            if profile != department.profile:
                department.update_profile(profile, correlation_id)

        return self._change_department(department_id, change)

    def set_opening_hours(
        self,
        department_id: UUID,
        weekly: list[dict[str, Any]],
        closed_days: list[str],
        correlation_id: str,
    ) -> Department:
        return self._change_department(
            department_id, lambda d: d.set_opening_hours(weekly, closed_days, correlation_id)
        )

    def assign_staff(
        self, department_id: UUID, staff_id: str, role: str, correlation_id: str
    ) -> Department:
        return self._change_department(
            department_id, lambda d: d.assign_staff(staff_id, role, correlation_id)
        )

    def unassign_staff(self, department_id: UUID, staff_id: str, correlation_id: str) -> Department:
        return self._change_department(
            department_id, lambda d: d.unassign_staff(staff_id, correlation_id)
        )

    # -- consultations --------------------------------------------------------------

    def consultation(self, consultation_id: UUID) -> Consultation:
        try:
            return self.repository.get(consultation_id)  # type: ignore[no-any-return]
        except AggregateNotFoundError as error:
            raise UnknownConsultation(consultation_id) from error

    def _change_consultation(
        self, consultation_id: UUID, change: Callable[[Consultation], None]
    ) -> Consultation:
        return self._retry(lambda: self._apply(self.consultation(consultation_id), change))

    def join(
        self, consultation_id: UUID, role: str, staff_id: str | None, correlation_id: str
    ) -> UUID:
        participant_id = uuid4()
        self._change_consultation(
            consultation_id, lambda c: c.join(participant_id, role, staff_id, correlation_id)
        )
        return participant_id

    def invite_interpreter(self, consultation_id: UUID, staff_id: str, correlation_id: str) -> UUID:
        invitation_id = uuid4()
        self._change_consultation(
            consultation_id,
            lambda c: c.invite_interpreter(invitation_id, staff_id, correlation_id),
        )
        return invitation_id

    def revoke_invitation(
        self, consultation_id: UUID, invitation_id: UUID, staff_id: str, correlation_id: str
    ) -> None:
        self._change_consultation(
            consultation_id,
            lambda c: c.revoke_invitation(invitation_id, staff_id, correlation_id),
        )

    def interpreter_join(
        self, consultation_id: UUID, invitation_id: UUID, correlation_id: str
    ) -> UUID:
        participant_id = uuid4()
        self._change_consultation(
            consultation_id,
            lambda c: c.interpreter_join(participant_id, invitation_id, correlation_id),
        )
        return participant_id

    def leave(self, consultation_id: UUID, participant_id: UUID, correlation_id: str) -> None:
        self._change_consultation(
            consultation_id, lambda c: c.leave(participant_id, correlation_id)
        )

    def record_read(
        self, consultation_id: UUID, staff_id: str, read: str, correlation_id: str
    ) -> None:
        """A staff member reads a consultation's data: on the record before the answer."""
        self.save(ConsultationRead(consultation_id, staff_id, read, correlation_id))

    def end(self, consultation_id: UUID, staff_id: str, correlation_id: str) -> Consultation:
        now = datetime.now(UTC)
        return self._change_consultation(
            consultation_id, lambda c: c.end(staff_id, now, correlation_id)
        )

    # -- what rooms does with other services' events --------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        """Events rooms does not react to are tracked and otherwise ignored."""

    @policy.register
    def _(self, event: queue_events.Admitted, processing_event: ProcessingEvent[UUID]) -> None:
        consultation_id = Consultation.create_id(event.ticket_id)
        try:
            self.repository.get(consultation_id)
            return  # already opened (the same admission seen again)
        except AggregateNotFoundError:
            pass
        processing_event.collect_events(
            Consultation(event.department_id, event.ticket_id, event.staff_id, event.correlation_id)
        )


# -- mapping stored events to integration events -----------------------------------------


def _profile(e: Any) -> contracts.DepartmentProfile:
    return contracts.DepartmentProfile(**e.profile)


to_contract = ContractMapper(
    {
        D.Registered: lambda e, env: contracts.DepartmentRegistered(
            **env, department_id=e.originator_id, profile=_profile(e)
        ),
        D.Updated: lambda e, env: contracts.DepartmentUpdated(
            **env, department_id=e.originator_id, profile=_profile(e)
        ),
        D.OpeningHoursSet: lambda e, env: contracts.OpeningHoursSet(
            **env, department_id=e.originator_id, weekly=e.weekly, closed_days=e.closed_days
        ),
        D.OfficeOpened: lambda e, env: contracts.OfficeOpened(
            **env, department_id=e.originator_id, closes_at=e.closes_at, early=e.early
        ),
        D.OfficeClosed: lambda e, env: contracts.OfficeClosed(
            **env, department_id=e.originator_id, next_opening=e.next_opening, early=e.early
        ),
        D.StaffAssigned: lambda e, env: contracts.StaffAssigned(
            **env, department_id=e.originator_id, staff_id=e.staff_id, role=e.role
        ),
        D.StaffUnassigned: lambda e, env: contracts.StaffUnassigned(
            **env, department_id=e.originator_id, staff_id=e.staff_id
        ),
        C.Opened: lambda e, env: contracts.ConsultationOpened(
            **env,
            consultation_id=e.originator_id,
            department_id=e.department_id,
            ticket_id=e.ticket_id,
            staff_id=e.staff_id,
        ),
        C.ParticipantJoined: lambda e, env: contracts.ParticipantJoined(
            **env,
            consultation_id=e.originator_id,
            participant_id=e.participant_id,
            role=e.role,
            staff_id=e.staff_id,
        ),
        C.InterpreterInvited: lambda e, env: contracts.InterpreterInvited(
            **env,
            consultation_id=e.originator_id,
            invitation_id=e.invitation_id,
            invited_by=e.invited_by,
        ),
        C.InvitationRevoked: lambda e, env: contracts.InvitationRevoked(
            **env,
            consultation_id=e.originator_id,
            invitation_id=e.invitation_id,
            revoked_by=e.revoked_by,
        ),
        C.InterpreterJoined: lambda e, env: contracts.InterpreterJoined(
            **env,
            consultation_id=e.originator_id,
            participant_id=e.participant_id,
            invitation_id=e.invitation_id,
        ),
        C.ParticipantLeft: lambda e, env: contracts.ParticipantLeft(
            **env, consultation_id=e.originator_id, participant_id=e.participant_id
        ),
        R.Viewed: lambda e, env: contracts.ConsultationViewed(
            **env, staff_id=e.staff_id, consultation_id=e.consultation_id, read=e.read
        ),
        C.Ended: lambda e, env: contracts.ConsultationEnded(
            **env,
            consultation_id=e.originator_id,
            department_id=e.department_id,
            ended_by=e.ended_by,
            duration_seconds=e.duration_seconds,
        ),
    },
    # Staff's early opening or closing lapsing when the schedule catches up: rooms' own
    # bookkeeping, other services learn the office's state from OfficeOpened/Closed.
    internal=[D.OverrideEnded],
)


__all__ = ["DomainError", "Rooms", "UnknownConsultation", "UnknownDepartment", "to_contract"]
