"""Departments (virtual offices) and consultations: the pure domain of the rooms service.

Methods are the commands; the events they record are named in the past tense.
A command that raises records nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from services.rooms.schedule import Period, next_opening, open_interval, validate_period


class DomainError(Exception):
    """A command that the current state does not allow."""


class ConsultationClosed(DomainError):
    pass


class NotAParticipant(DomainError):
    pass


class InvitationWithdrawn(DomainError):
    def __init__(self) -> None:
        super().__init__("This link has been withdrawn. Please ask the office for a new one.")


class InvitationLapsed(ConsultationClosed):
    """An invitation link to a consultation that has ended: gone, like a withdrawn one."""

    def __init__(self) -> None:
        super().__init__("This consultation has already ended.")


class InvalidOpeningHours(DomainError, ValueError):
    """Opening hours that cannot be kept (a closing before its opening, a malformed day)."""


class Department(Aggregate):
    """A department's virtual office: profile, opening hours, office state and roster."""

    @staticmethod
    def create_id(slug: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/departments/{slug}")

    @event("Registered")
    def __init__(self, slug: str, profile: dict[str, Any], correlation_id: str) -> None:
        self.slug = slug
        self.profile = profile
        self.weekly: list[dict[str, Any]] = []
        self.closed_days: list[str] = []
        self.is_open = False
        self.closes_at: datetime | None = None
        self.next_opening_at: datetime | None = None
        self.roster: dict[str, str] = {}  # staff_id -> "staff" | "admin"
        self.override: str | None = None  # "open" / "closed" until the schedule next flips
        self._closed_recorded = False

    @event("Updated")
    def update_profile(self, profile: dict[str, Any], correlation_id: str) -> None:
        self.profile = profile

    def set_opening_hours(
        self, weekly: list[dict[str, Any]], closed_days: list[str], correlation_id: str
    ) -> None:
        try:
            for period in weekly:
                validate_period(Period(**period))
            for day in closed_days:
                date.fromisoformat(day)
        except ValueError as error:
            raise InvalidOpeningHours(str(error)) from error
        self._hours_set(weekly=weekly, closed_days=closed_days, correlation_id=correlation_id)

    @event("OpeningHoursSet")
    def _hours_set(
        self, weekly: list[dict[str, Any]], closed_days: list[str], correlation_id: str
    ) -> None:
        self.weekly = weekly
        self.closed_days = closed_days

    # -- the office clock ---------------------------------------------------------

    @property
    def plan(self) -> list[Period]:
        return [Period(**p) for p in self.weekly]

    @property
    def closed_dates(self) -> set[date]:
        return {date.fromisoformat(d) for d in self.closed_days}

    @property
    def timezone(self) -> str:
        return str(self.profile.get("timezone", "Europe/Berlin"))

    def scheduled_interval(self, at: datetime) -> tuple[datetime, datetime] | None:
        return open_interval(self.plan, self.closed_dates, self.timezone, at)

    def next_opening(self, at: datetime) -> datetime | None:
        return next_opening(self.plan, self.closed_dates, self.timezone, at)

    def follow_schedule(self, at: datetime, correlation_id: str) -> None:
        """Open or close as the opening hours say, unless staff overrode the schedule."""
        interval = self.scheduled_interval(at)
        should_be_open = interval is not None
        if self.override == ("open" if should_be_open else "closed"):
            self._override_ended(correlation_id=correlation_id)  # the schedule caught up
        if self.override is not None:
            return
        # Record a change of state, and also a changed closing or next opening time
        # (new opening hours), so that other services always know both.
        if interval is not None:
            closes_at = None if _around_the_clock(interval, at) else interval[1]
            if not self.is_open or self.closes_at != closes_at:
                self._opened(closes_at=closes_at, early=False, correlation_id=correlation_id)
        else:
            upcoming = self.next_opening(at)
            if self.is_open or not self._closed_recorded or self.next_opening_at != upcoming:
                self._closed(next_opening=upcoming, early=False, correlation_id=correlation_id)

    def open_early(self, at: datetime, correlation_id: str) -> None:
        if self.is_open:
            raise DomainError("The office is already open.")
        self._opened(closes_at=None, early=True, correlation_id=correlation_id)

    def close_early(self, at: datetime, correlation_id: str) -> None:
        if not self.is_open:
            raise DomainError("The office is already closed.")
        interval = self.scheduled_interval(at)
        reopens = self.next_opening(interval[1]) if interval else self.next_opening(at)
        if interval and _around_the_clock(interval, at):
            reopens = None  # closed until staff open it again
        self._closed(next_opening=reopens, early=True, correlation_id=correlation_id)

    @event("OfficeOpened")
    def _opened(self, closes_at: datetime | None, early: bool, correlation_id: str) -> None:
        self.is_open = True
        self.closes_at = closes_at
        self.override = "open" if early else None

    @event("OfficeClosed")
    def _closed(self, next_opening: datetime | None, early: bool, correlation_id: str) -> None:
        self.is_open = False
        self.next_opening_at = next_opening
        self._closed_recorded = True
        self.override = "closed" if early else None

    @event("OverrideEnded")
    def _override_ended(self, correlation_id: str) -> None:
        self.override = None

    # -- roster ----------------------------------------------------------------------

    def assign_staff(self, staff_id: str, role: str, correlation_id: str) -> None:
        if role not in ("staff", "admin"):
            raise DomainError("role must be 'staff' or 'admin'")
        if self.roster.get(staff_id) != role:
            self._staff_assigned(staff_id=staff_id, role=role, correlation_id=correlation_id)

    @event("StaffAssigned")
    def _staff_assigned(self, staff_id: str, role: str, correlation_id: str) -> None:
        self.roster[staff_id] = role

    def unassign_staff(self, staff_id: str, correlation_id: str) -> None:
        if staff_id not in self.roster:
            raise DomainError(f"{staff_id} is not on this department's roster.")
        self._staff_unassigned(staff_id=staff_id, correlation_id=correlation_id)

    @event("StaffUnassigned")
    def _staff_unassigned(self, staff_id: str, correlation_id: str) -> None:
        del self.roster[staff_id]

    def serves(self, staff_id: str) -> bool:
        return staff_id in self.roster

    def administers(self, staff_id: str) -> bool:
        return self.roster.get(staff_id) == "admin"


def _around_the_clock(interval: tuple[datetime, datetime], at: datetime) -> bool:
    """An opening that runs on for a week or more: it has no closing time to speak of."""
    return interval[1] - at >= timedelta(days=7)


class Consultation(Aggregate):
    """One consultation, opened when a citizen is admitted, ended by staff."""

    @staticmethod
    def create_id(ticket_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"/consultations/{ticket_id}")

    @event("Opened")
    def __init__(
        self, department_id: UUID, ticket_id: UUID, staff_id: str, correlation_id: str
    ) -> None:
        self.department_id = department_id
        self.ticket_id = ticket_id
        self.staff_id = staff_id
        self.participants: dict[str, str] = {}  # participant_id -> role
        self.invitations: dict[str, bool] = {}  # invitation_id -> revoked
        self.ended = False

    def _require_open(self) -> None:
        if self.ended:
            raise ConsultationClosed("This consultation has ended.")

    def join(
        self, participant_id: UUID, role: str, staff_id: str | None, correlation_id: str
    ) -> None:
        self._require_open()
        self._participant_joined(
            participant_id=participant_id,
            role=role,
            staff_id=staff_id,
            correlation_id=correlation_id,
        )

    @event("ParticipantJoined")
    def _participant_joined(
        self, participant_id: UUID, role: str, staff_id: str | None, correlation_id: str
    ) -> None:
        self.participants[str(participant_id)] = role

    def invite_interpreter(self, invitation_id: UUID, invited_by: str, correlation_id: str) -> None:
        self._require_open()
        self._interpreter_invited(
            invitation_id=invitation_id, invited_by=invited_by, correlation_id=correlation_id
        )

    @event("InterpreterInvited")
    def _interpreter_invited(
        self, invitation_id: UUID, invited_by: str, correlation_id: str
    ) -> None:
        self.invitations[str(invitation_id)] = False

    def revoke_invitation(self, invitation_id: UUID, revoked_by: str, correlation_id: str) -> None:
        if str(invitation_id) not in self.invitations:
            raise DomainError("No such invitation for this consultation.")
        self._invitation_revoked(
            invitation_id=invitation_id, revoked_by=revoked_by, correlation_id=correlation_id
        )

    @event("InvitationRevoked")
    def _invitation_revoked(
        self, invitation_id: UUID, revoked_by: str, correlation_id: str
    ) -> None:
        self.invitations[str(invitation_id)] = True

    def interpreter_join(
        self, participant_id: UUID, invitation_id: UUID, correlation_id: str
    ) -> None:
        if self.ended:
            raise InvitationLapsed()
        revoked = self.invitations.get(str(invitation_id))
        if revoked:
            raise InvitationWithdrawn()
        if revoked is None:
            raise DomainError("This invitation is not valid for this consultation.")
        self._interpreter_joined(
            participant_id=participant_id,
            invitation_id=invitation_id,
            correlation_id=correlation_id,
        )

    @event("InterpreterJoined")
    def _interpreter_joined(
        self, participant_id: UUID, invitation_id: UUID, correlation_id: str
    ) -> None:
        self.participants[str(participant_id)] = "interpreter"

    def leave(self, participant_id: UUID, correlation_id: str) -> None:
        if str(participant_id) not in self.participants:
            raise NotAParticipant("Not a participant of this consultation.")
        if not self.ended:
            self._participant_left(participant_id=participant_id, correlation_id=correlation_id)

    @event("ParticipantLeft")
    def _participant_left(self, participant_id: UUID, correlation_id: str) -> None:
        self.participants.pop(str(participant_id), None)

    def end(self, ended_by: str, at: datetime, correlation_id: str) -> None:
        self._require_open()
        duration = max(0.0, (at - self.created_on).total_seconds())
        self._ended(
            ended_by=ended_by,
            duration_seconds=duration,
            department_id=self.department_id,
            correlation_id=correlation_id,
        )

    @event("Ended")
    def _ended(
        self, ended_by: str, duration_seconds: float, department_id: UUID, correlation_id: str
    ) -> None:
        self.ended = True
        self.participants = {}


class ConsultationRead(Aggregate):
    """One read of a consultation's data by a staff member, kept for the audit log."""

    @event("Viewed")
    def __init__(self, consultation_id: UUID, staff_id: str, read: str,
                 correlation_id: str) -> None:
        self.consultation_id = consultation_id
        self.staff_id = staff_id
        self.read = read
        self.correlation_id = correlation_id
