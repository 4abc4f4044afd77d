"""Events published by the rooms service (departments and consultations)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from services.common.contracts.base import IntegrationEvent


class Topic(BaseModel):
    id: str
    de: str
    en: str


class OpeningPeriod(BaseModel):
    weekday: int  # 0 = Monday
    opens: str  # "08:30", local time of the department
    closes: str  # "12:00"; "24:00" allowed


class _RoomsEvent(IntegrationEvent):
    SERVICE = "rooms"


class DepartmentProfile(BaseModel):
    slug: str
    name_de: str
    name_en: str
    description_de: str
    description_en: str
    timezone: str
    anonymous: bool
    languages: list[str]
    topics: list[Topic]
    accepts_appointments: bool


class DepartmentRegistered(_RoomsEvent):
    department_id: UUID
    profile: DepartmentProfile


class DepartmentUpdated(_RoomsEvent):
    department_id: UUID
    profile: DepartmentProfile


class OpeningHoursSet(_RoomsEvent):
    department_id: UUID
    weekly: list[OpeningPeriod]
    closed_days: list[str]  # ISO dates


class OfficeOpened(_RoomsEvent):
    department_id: UUID
    closes_at: datetime | None
    early: bool


class OfficeClosed(_RoomsEvent):
    department_id: UUID
    next_opening: datetime | None
    early: bool


class StaffAssigned(_RoomsEvent):
    department_id: UUID
    staff_id: str
    role: Literal["staff", "admin"]


class StaffUnassigned(_RoomsEvent):
    department_id: UUID
    staff_id: str


class ConsultationOpened(_RoomsEvent):
    consultation_id: UUID
    department_id: UUID
    ticket_id: UUID
    staff_id: str


class ParticipantJoined(_RoomsEvent):
    consultation_id: UUID
    participant_id: UUID
    role: Literal["citizen", "staff", "interpreter", "guest"]
    staff_id: str | None = None


class InterpreterInvited(_RoomsEvent):
    consultation_id: UUID
    invitation_id: UUID
    invited_by: str


class InvitationRevoked(_RoomsEvent):
    consultation_id: UUID
    invitation_id: UUID
    revoked_by: str


class InterpreterJoined(_RoomsEvent):
    consultation_id: UUID
    participant_id: UUID
    invitation_id: UUID


class ParticipantLeft(_RoomsEvent):
    consultation_id: UUID
    participant_id: UUID


class ConsultationEnded(_RoomsEvent):
    consultation_id: UUID
    department_id: UUID
    ended_by: str
    duration_seconds: float


class ConsultationViewed(_RoomsEvent):
    """A staff member read a consultation's data (who, which, what; ids only, no content).

    Recorded before the answer is given, like a DPO's read of the log (``AuditViewed``):
    a read that cannot be recorded is refused. The DPO sees it under "who looked".
    """

    VERSION = 1

    staff_id: str
    consultation_id: UUID
    read: Literal["details"]
