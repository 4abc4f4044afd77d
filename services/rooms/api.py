"""The rooms service's HTTP API: offices (departments) and consultations.

Domain refusals (no such department, a closed consultation, a withdrawn link) are answered
by ``RoomsService.refusals``; the handlers here check only who may ask.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request, status

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
from services.rooms.domain import Consultation, Department
from services.rooms.schemas import (
    ConsultationView,
    InterpreterJoinIn,
    InvitationView,
    JoinedView,
    OfficeView,
    OpeningHoursIn,
    ServiceOfferIn,
    StaffAssignmentIn,
    consultation_view,
    office_view,
)
from services.rooms.service import RoomsService, rooms_service

Service = Annotated[RoomsService, Depends(rooms_service)]

router = APIRouter(prefix="/api/v1", tags=["rooms"])


def _office(department: Department, staff: StaffIdentity | None) -> OfficeView:
    return office_view(department, staff.staff_id if staff else None)


async def _department(service: RoomsService, department_id: UUID) -> Department:
    return await asyncio.to_thread(service.rooms.department, department_id)


async def _consultation(service: RoomsService, consultation_id: UUID) -> Consultation:
    return await asyncio.to_thread(service.rooms.consultation, consultation_id)


def _require_serves(department: Department, staff: StaffIdentity) -> None:
    if not department.serves(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "You are not on this department's staff.")


def _require_admin(department: Department, staff: StaffIdentity) -> None:
    if not department.administers(staff.staff_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "Only this department's admins may do this.")


# -- offices -------------------------------------------------------------------------------


@router.get("/offices", response_model=list[OfficeView], tags=["staff"])
async def my_offices(service: Service, staff: Staff) -> list[OfficeView]:
    """The departments the signed-in staff member serves."""
    departments = await asyncio.to_thread(service.rooms.departments)
    return [_office(d, staff) for d in departments if d.serves(staff.staff_id)]


@router.post("/offices/{department_id}/open", response_model=OfficeView, tags=["staff"])
async def open_office_early(department_id: UUID, service: Service, staff: Staff) -> OfficeView:
    _require_serves(await _department(service, department_id), staff)
    department = await asyncio.to_thread(
        service.rooms.open_office, department_id, current_correlation_id()
    )
    return _office(department, staff)


@router.post("/offices/{department_id}/close", response_model=OfficeView, tags=["staff"])
async def close_office_early(department_id: UUID, service: Service, staff: Staff) -> OfficeView:
    """Close now; everyone still waiting is told and their tickets expire."""
    _require_serves(await _department(service, department_id), staff)
    department = await asyncio.to_thread(
        service.rooms.close_office, department_id, current_correlation_id()
    )
    return _office(department, staff)


@router.put("/offices/{department_id}/hours", response_model=OfficeView, tags=["admin"])
async def set_opening_hours(
    department_id: UUID, body: OpeningHoursIn, service: Service, staff: Staff
) -> OfficeView:
    _require_admin(await _department(service, department_id), staff)
    weekly = [p.model_dump() for p in body.weekly]
    closed = [d.isoformat() for d in body.closed_days]
    department = await asyncio.to_thread(
        service.rooms.set_opening_hours, department_id, weekly, closed, current_correlation_id()
    )
    return _office(department, staff)


@router.put("/offices/{department_id}/offer", response_model=OfficeView, tags=["admin"])
async def set_service_offer(
    department_id: UUID, body: ServiceOfferIn, service: Service, staff: Staff
) -> OfficeView:
    """Languages and topics: citizens choose from them when they knock."""
    _require_admin(await _department(service, department_id), staff)
    department = await asyncio.to_thread(
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
    department = await asyncio.to_thread(
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
    department = await asyncio.to_thread(
        service.rooms.unassign_staff, department_id, staff_id, current_correlation_id()
    )
    return _office(department, staff)


# -- consultations -----------------------------------------------------------------------------


@router.get("/consultations/{consultation_id}", response_model=ConsultationView, tags=["staff"])
async def consultation_details(
    consultation_id: UUID, service: Service, staff: Staff
) -> ConsultationView:
    consultation = await _consultation(service, consultation_id)
    _require_serves(await _department(service, consultation.department_id), staff)
    await _record_read(service, consultation_id, staff, "details")
    return consultation_view(consultation)


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
    """Join with the ticket's token (citizen) or a staff session; returns a media token.

    A citizen's pass carries the name and language given when knocking (from the ticket
    token), for staff to see; nothing of the kind where the department is anonymous."""
    consultation = await _consultation(service, consultation_id)
    name: str | None = None
    language: str | None = None
    if bearer_token(request) is not None:
        claims = verify_capability(request, "ticket")
        if claims.subject != str(consultation.ticket_id):
            raise Refusal(
                status.HTTP_403_FORBIDDEN, "Your ticket was not admitted to this consultation."
            )
        role, staff_id = "citizen", None
        department = await _department(service, consultation.department_id)
        if not department.profile.get("anonymous"):
            name, language = claims.extra.get("name"), claims.extra.get("lang")
    else:
        staff = staff_of(request)
        _require_serves(await _department(service, consultation.department_id), staff)
        role, staff_id = "staff", staff.staff_id
    participant_id = await asyncio.to_thread(
        service.rooms.join, consultation_id, role, staff_id, current_correlation_id()
    )
    return JoinedView(
        **service.participant_pass(
            consultation, participant_id, role, display_name=name, language=language
        )
    )


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
    invitation_id = await asyncio.to_thread(
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
    await asyncio.to_thread(
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
async def interpreter_join(
    consultation_id: UUID,
    request: Request,
    service: Service,
    body: Annotated[InterpreterJoinIn | None, Body()] = None,
) -> JoinedView:
    """Join by invitation: the link's token in ``Authorization: Bearer``; the body names
    the interpreter and the language interpreted into, both shown to the others and
    recorded nowhere (the language would tell the citizen's)."""
    person = body or InterpreterJoinIn()
    claims = await verify_revocable_capability(
        request, "invitation", service.is_revoked, link=True
    )
    if claims["consultation"] != str(consultation_id):
        raise Refusal(status.HTTP_403_FORBIDDEN, "This invitation is for another consultation.")
    consultation = await _consultation(service, consultation_id)
    participant_id = await asyncio.to_thread(
        service.rooms.interpreter_join,
        consultation_id,
        UUID(claims.subject),
        current_correlation_id(),
    )
    return JoinedView(
        **service.participant_pass(
            consultation,
            participant_id,
            "interpreter",
            UUID(claims.subject),
            display_name=person.display_name,
            language=person.language,
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
    await asyncio.to_thread(
        service.rooms.leave, consultation_id, UUID(claims.subject), current_correlation_id()
    )


@router.post(
    "/consultations/{consultation_id}/end", response_model=ConsultationView, tags=["staff"]
)
async def end_consultation(
    consultation_id: UUID, service: Service, staff: Staff
) -> ConsultationView:
    """End the consultation for everyone."""
    consultation = await _consultation(service, consultation_id)
    _require_serves(await _department(service, consultation.department_id), staff)
    ended = await asyncio.to_thread(
        service.rooms.end, consultation_id, staff.staff_id, current_correlation_id()
    )
    return consultation_view(ended)
