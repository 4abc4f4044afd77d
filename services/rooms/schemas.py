"""The rooms API's request and response models."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from services.common.text import DisplayName, VisibleLine
from services.rooms.domain import Consultation, Department

LANGUAGE = re.compile(r"^[a-z]{2,3}$")
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


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
    display_name: str | None = Field(
        default=None,
        description="The name the others see (a citizen's only where the department asks "
        "for one, an interpreter's as given); never on the record",
    )
    language: str | None = Field(default=None, description="e.g. the interpreter's language")


class InterpreterJoinIn(BaseModel):
    """Who joins by an invitation: name and language are shown to the others in the
    conversation only (in the participant token), never recorded."""

    display_name: DisplayName | None = None
    language: str | None = Field(default=None, min_length=2, max_length=3, pattern=r"^[a-z]{2,3}$")


class InvitationView(BaseModel):
    invitation_id: UUID
    token: str
    link: str
    expires_at: int


def office_view(department: Department, staff_id: str | None) -> OfficeView:
    """A department as its staff see it (``my_role``: the given staff member's)."""
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
        my_role=department.roster.get(staff_id) if staff_id else None,
    )


def consultation_view(consultation: Consultation) -> ConsultationView:
    return ConsultationView(
        id=consultation.id,
        department_id=consultation.department_id,
        staff_id=consultation.staff_id,
        ended=consultation.ended,
        participants=[
            ParticipantView(participant_id=p, role=r) for p, r in consultation.participants.items()
        ],
    )
