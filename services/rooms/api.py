"""The rooms service's HTTP API: offices (departments) and consultations."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field, field_validator

from services.common.auth import (
    Staff,
    bearer_token,
    staff_of,
    verify_capability,
    verify_revocable_capability,
)
from services.common.errors import Refusal
from services.common.identity import StaffIdentity
from services.common.logging import current_correlation_id
from services.common.text import VisibleLine
from services.rooms.application import UnknownConsultation, UnknownDepartment
from services.rooms.domain import Consultation, Department, DomainError, InvitationWithdrawn
from services.rooms.service import RoomsService, rooms_service

Service = Annotated[RoomsService, Depends(rooms_service)]
LANGUAGE = re.compile(r"^[a-z]{2,3}$")
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")

router = APIRouter(prefix="/api/v1", tags=["rooms"])


# -- models ----------------------------------------------------------------------------


class PeriodIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    opens: str = Field(examples=["08:30"])
    closes: str = Field(examples=["12:00"])

    @field_validator("opens", "closes")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not CLOCK.match(value):
            raise ValueError("must be a time written HH:MM, e.g. 08:30")
        return value


class OpeningHoursIn(BaseModel):
    weekly: list[PeriodIn] = Field(max_length=50)
    closed_days: list[date] = Field(default_factory=list, max_length=400)


class StaffAssignmentIn(BaseModel):
    staff_id: str = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]+$")
    role: Literal["staff", "admin"] = "staff"


class TopicIn(BaseModel):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    de: VisibleLine
    en: VisibleLine


class ServiceOfferIn(BaseModel):
    """What a department offers citizens: the languages it speaks and the topics it handles."""

    languages: list[str] = Field(min_length=1, max_length=30)
    topics: list[TopicIn] = Field(max_length=50)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for code in value:
            if not LANGUAGE.match(code):
                raise ValueError(f"'{code}' is not a language code such as 'de' or 'tr'")
        if len(set(value)) != len(value):
            raise ValueError("each language only once")
        return value

    @field_validator("topics")
    @classmethod
    def _unique_topics(cls, value: list[TopicIn]) -> list[TopicIn]:
        if len({t.id for t in value}) != len(value):
            raise ValueError("each topic id only once")
        return value


class OfficeView(BaseModel):
    id: UUID
    slug: str
    name_de: str
    name_en: str
    languages: list[str]
    topics: list[TopicIn]
    open: bool
    early_override: str | None
    weekly: list[PeriodIn]
    closed_days: list[str]
    roster: dict[str, str]
    my_role: str | None


class ParticipantView(BaseModel):
    participant_id: str
    role: str


class ConsultationView(BaseModel):
    id: UUID
    department_id: UUID
    staff_id: str
    ended: bool
    participants: list[ParticipantView]


class JoinedView(BaseModel):
    consultation_id: UUID
    participant_id: UUID
    role: str
    participant_token: str = Field(description="Present this to the media service to join.")
    expires_at: int
    media_path: str


class InvitationView(BaseModel):
    invitation_id: UUID
    token: str
    link: str
    expires_at: int


# -- helpers -------------------------------------------------------------------------------


def _office(department: Department, staff: StaffIdentity | None) -> OfficeView:
    return OfficeView(
        id=department.id,
        slug=department.slug,
        name_de=department.profile["name_de"],
        name_en=department.profile["name_en"],
        languages=department.profile["languages"],
        topics=[TopicIn(**t) for t in department.profile["topics"]],
        open=department.is_open,
        early_override=department.override,
        weekly=[PeriodIn(**p) for p in department.weekly],
        closed_days=department.closed_days,
        roster=department.roster,
        my_role=department.roster.get(staff.staff_id) if staff else None,
    )


async def _department(service: RoomsService, department_id: UUID) -> Department:
    try:
        return await asyncio.to_thread(service.rooms.department, department_id)
    except UnknownDepartment as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such department.") from error


async def _consultation(service: RoomsService, consultation_id: UUID) -> Consultation:
    try:
        return await asyncio.to_thread(service.rooms.consultation, consultation_id)
    except UnknownConsultation as error:
        raise Refusal(status.HTTP_404_NOT_FOUND, "There is no such consultation.") from error


def _require_serves(department: Department, staff: StaffIdentity) -> None:
    if not department.serves(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "You are not on this department's staff.")


def _require_admin(department: Department, staff: StaffIdentity) -> None:
    if not department.administers(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "Only this department's admins may do this.")


async def _run(call, *args):  # type: ignore[no-untyped-def]
    try:
        return await asyncio.to_thread(call, *args)
    except InvitationWithdrawn as error:
        raise Refusal(status.HTTP_410_GONE, str(error)) from error
    except DomainError as error:
        raise Refusal(status.HTTP_409_CONFLICT, str(error)) from error


# -- offices -------------------------------------------------------------------------------


@router.get("/offices", response_model=list[OfficeView], tags=["staff"])
async def my_offices(service: Service, staff: Staff) -> list[OfficeView]:
    """The departments the signed-in staff member serves."""
    departments = await asyncio.to_thread(service.rooms.departments)
    return [_office(d, staff) for d in departments if d.serves(staff.staff_id)]


@router.post("/offices/{department_id}/open", response_model=OfficeView, tags=["staff"])
async def open_office_early(department_id: UUID, service: Service, staff: Staff) -> OfficeView:
    _require_serves(await _department(service, department_id), staff)
    department = await _run(service.rooms.open_office, department_id, current_correlation_id())
    return _office(department, staff)


@router.post("/offices/{department_id}/close", response_model=OfficeView, tags=["staff"])
async def close_office_early(department_id: UUID, service: Service, staff: Staff) -> OfficeView:
    """Close now; everyone still waiting is told and their tickets expire."""
    _require_serves(await _department(service, department_id), staff)
    department = await _run(service.rooms.close_office, department_id, current_correlation_id())
    return _office(department, staff)


@router.put("/offices/{department_id}/hours", response_model=OfficeView, tags=["admin"])
async def set_opening_hours(
    department_id: UUID, body: OpeningHoursIn, service: Service, staff: Staff
) -> OfficeView:
    _require_admin(await _department(service, department_id), staff)
    weekly = [p.model_dump() for p in body.weekly]
    closed = [d.isoformat() for d in body.closed_days]
    try:
        department = await _run(
            service.rooms.set_opening_hours, department_id, weekly, closed, current_correlation_id()
        )
    except ValueError as error:
        raise Refusal(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    return _office(department, staff)


@router.put("/offices/{department_id}/offer", response_model=OfficeView, tags=["admin"])
async def set_service_offer(
    department_id: UUID, body: ServiceOfferIn, service: Service, staff: Staff
) -> OfficeView:
    """Languages and topics: citizens choose from them when they knock."""
    _require_admin(await _department(service, department_id), staff)
    department = await _run(
        service.rooms.set_offer,
        department_id,
        body.languages,
        [t.model_dump() for t in body.topics],
        current_correlation_id(),
    )
    return _office(department, staff)


@router.post("/offices/{department_id}/staff", response_model=OfficeView, tags=["admin"])
async def assign_staff(
    department_id: UUID, body: StaffAssignmentIn, service: Service, staff: Staff
) -> OfficeView:
    _require_admin(await _department(service, department_id), staff)
    department = await _run(
        service.rooms.assign_staff,
        department_id,
        body.staff_id,
        body.role,
        current_correlation_id(),
    )
    return _office(department, staff)


@router.delete(
    "/offices/{department_id}/staff/{staff_id}", response_model=OfficeView, tags=["admin"]
)
async def unassign_staff(
    department_id: UUID, staff_id: str, service: Service, staff: Staff
) -> OfficeView:
    _require_admin(await _department(service, department_id), staff)
    department = await _run(
        service.rooms.unassign_staff, department_id, staff_id, current_correlation_id()
    )
    return _office(department, staff)


# -- consultations -----------------------------------------------------------------------------


def _view(consultation: Consultation) -> ConsultationView:
    return ConsultationView(
        id=consultation.id,
        department_id=consultation.department_id,
        staff_id=consultation.staff_id,
        ended=consultation.ended,
        participants=[
            ParticipantView(participant_id=p, role=r) for p, r in consultation.participants.items()
        ],
    )


@router.get("/consultations/{consultation_id}", response_model=ConsultationView, tags=["staff"])
async def consultation_details(
    consultation_id: UUID, service: Service, staff: Staff
) -> ConsultationView:
    consultation = await _consultation(service, consultation_id)
    _require_serves(await _department(service, consultation.department_id), staff)
    await _record_read(service, consultation_id, staff, "details")
    return _view(consultation)


async def _record_read(
    service: RoomsService, consultation_id: UUID, staff: StaffIdentity, read: str
) -> None:
    """On the record (ConsultationViewed, into the audit log) before the answer, or refused."""
    try:
        await asyncio.to_thread(
            service.rooms.record_read, consultation_id, staff.staff_id, read,
            current_correlation_id(),
        )
    except Exception as error:  # an unrecorded read is not allowed
        raise Refusal(
            status.HTTP_503_SERVICE_UNAVAILABLE, "The read could not be recorded; try again."
        ) from error


@router.post(
    "/consultations/{consultation_id}/join", response_model=JoinedView, tags=["citizen", "staff"]
)
async def join_consultation(
    consultation_id: UUID, request: Request, service: Service
) -> JoinedView:
    """Join with the ticket's token (citizen) or a staff session; returns a media token."""
    consultation = await _consultation(service, consultation_id)
    if bearer_token(request) is not None:
        claims = verify_capability(request, "ticket")
        if claims.subject != str(consultation.ticket_id):
            raise Refusal(
                status.HTTP_403_FORBIDDEN, "Your ticket was not admitted to this consultation."
            )
        role, staff_id = "citizen", None
    else:
        staff = staff_of(request)
        _require_serves(await _department(service, consultation.department_id), staff)
        role, staff_id = "staff", staff.staff_id
    participant_id = await _run(
        service.rooms.join, consultation_id, role, staff_id, current_correlation_id()
    )
    return JoinedView(**service.participant_pass(consultation, participant_id, role))


@router.post(
    "/consultations/{consultation_id}/invitations",
    response_model=InvitationView,
    status_code=status.HTTP_201_CREATED,
    tags=["staff"],
)
async def invite_interpreter(
    consultation_id: UUID, service: Service, staff: Staff
) -> InvitationView:
    """A link for an interpreter or colleague: this consultation only, revocable."""
    consultation = await _consultation(service, consultation_id)
    _require_serves(await _department(service, consultation.department_id), staff)
    invitation_id = await _run(
        service.rooms.invite_interpreter, consultation_id, staff.staff_id, current_correlation_id()
    )
    return InvitationView(**service.invitation(consultation_id, invitation_id))


@router.delete(
    "/consultations/{consultation_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["staff"],
)
async def revoke_invitation(
    consultation_id: UUID, invitation_id: UUID, service: Service, staff: Staff
) -> None:
    consultation = await _consultation(service, consultation_id)
    _require_serves(await _department(service, consultation.department_id), staff)
    await _run(
        service.rooms.revoke_invitation,
        consultation_id,
        invitation_id,
        staff.staff_id,
        current_correlation_id(),
    )
    await service.revoke(invitation_id)


@router.post(
    "/consultations/{consultation_id}/interpreter-join",
    response_model=JoinedView,
    tags=["interpreter"],
)
async def interpreter_join(consultation_id: UUID, request: Request, service: Service) -> JoinedView:
    """Join by invitation: the link's token in ``Authorization: Bearer``."""
    claims = await verify_revocable_capability(
        request, "invitation", service.is_revoked, link=True
    )
    if claims["consultation"] != str(consultation_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "This invitation is for another consultation.")
    consultation = await _consultation(service, consultation_id)
    if consultation.ended:
        raise Refusal(status.HTTP_410_GONE, "This consultation has already ended.")
    participant_id = await _run(
        service.rooms.interpreter_join,
        consultation_id,
        UUID(claims.subject),
        current_correlation_id(),
    )
    return JoinedView(
        **service.participant_pass(
            consultation, participant_id, "interpreter", UUID(claims.subject)
        )
    )


@router.post(
    "/consultations/{consultation_id}/leave",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["citizen", "staff", "interpreter"],
)
async def leave_consultation(consultation_id: UUID, request: Request, service: Service) -> None:
    """Leave with the participant token received on joining."""
    claims = verify_capability(request, "participant")
    if claims["consultation"] != str(consultation_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "This token is for another consultation.")
    await _consultation(service, consultation_id)
    await _run(service.rooms.leave, consultation_id, UUID(claims.subject), current_correlation_id())


@router.post(
    "/consultations/{consultation_id}/end", response_model=ConsultationView, tags=["staff"]
)
async def end_consultation(
    consultation_id: UUID, service: Service, staff: Staff
) -> ConsultationView:
    """End the consultation for everyone."""
    consultation = await _consultation(service, consultation_id)
    _require_serves(await _department(service, consultation.department_id), staff)
    ended = await _run(service.rooms.end, consultation_id, staff.staff_id, current_correlation_id())
    return _view(ended)
