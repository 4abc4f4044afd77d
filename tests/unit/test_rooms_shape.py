"""Rooms' outgoing mapper and HTTP refusals: every stored event accounted for, every
domain refusal answered with the status its table names."""

from __future__ import annotations

from uuid import uuid4

import pytest

from services.common.contracts import rooms as contracts
from services.rooms.application import Rooms, UnknownConsultation, UnknownDepartment, to_contract
from services.rooms.domain import (
    Consultation,
    ConsultationClosed,
    ConsultationRead,
    Department,
    DomainError,
    InvalidOpeningHours,
    InvitationLapsed,
    InvitationWithdrawn,
    NotAParticipant,
)
from services.rooms.service import RoomsService
from tests.unit.support import seeded

CID = "test-correlation"


def test_every_stored_event_is_mapped_or_internal_and_published_by_class() -> None:
    assert to_contract.unmapped(Department, Consultation, ConsultationRead) == []
    rooms = Rooms()
    department_id = rooms.register_department(
        "demo", seeded("demo")["profile"], seeded("demo")["weekly"], [], CID)
    published = [to_contract(rooms.mapper.to_domain_event(n), n.id)
                 for n in rooms.notification_log.select(start=1, limit=10)]
    assert isinstance(published[0], contracts.DepartmentRegistered)
    assert published[0].department_id == department_id
    assert rooms.department_ids() == [department_id]


def status_for(error: Exception) -> int | None:
    """The status Starlette picks: the table's entry for the nearest class in the MRO."""
    for cls in type(error).__mro__:
        if cls in RoomsService.refusals:
            return RoomsService.refusals[cls]
    return None


@pytest.mark.parametrize(("error", "status"), [
    (UnknownDepartment(uuid4()), 404),
    (UnknownConsultation(uuid4()), 404),
    (InvalidOpeningHours("closing must come after opening"), 422),
    (InvitationWithdrawn(), 410),
    (InvitationLapsed(), 410),
    (ConsultationClosed("This consultation has ended."), 409),
    (NotAParticipant("Not a participant of this consultation."), 409),
    (DomainError("The office is already open."), 409),
])
def test_each_refusal_has_its_status(error: Exception, status: int) -> None:
    assert status_for(error) == status


def test_an_invitation_to_an_ended_consultation_is_gone_not_a_conflict() -> None:
    consultation = Consultation(uuid4(), uuid4(), "anna", CID)
    invitation = uuid4()
    consultation.invite_interpreter(invitation, "anna", CID)
    consultation.end("anna", consultation.created_on, CID)
    with pytest.raises(InvitationLapsed, match="already ended") as refused:
        consultation.interpreter_join(uuid4(), invitation, CID)
    assert status_for(refused.value) == 410


def test_opening_hours_that_cannot_be_kept_are_unprocessable() -> None:
    rooms = Rooms()
    department_id = rooms.register_department(
        "demo", seeded("demo")["profile"], seeded("demo")["weekly"], [], CID)
    with pytest.raises(InvalidOpeningHours, match="closing must come after opening") as refused:
        rooms.set_opening_hours(
            department_id, [{"weekday": 0, "opens": "10:00", "closes": "09:00"}], [], CID)
    assert status_for(refused.value) == 422
