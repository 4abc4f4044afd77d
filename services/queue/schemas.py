"""The queue API's request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from services.common.contracts.queue import DeclineReason
from services.common.text import DisplayName, VisibleText


class TopicView(BaseModel):
    id: str
    de: str
    en: str


class WaitView(BaseModel):
    seconds: int = Field(description="Best guess of the wait")
    low_seconds: int
    high_seconds: int
    consultations_sampled: int = Field(description="How many recent consultations it rests on")
    staff_on_duty: int = Field(description="Staff following the line at their desks now")
    basis: Literal["recent_consultations", "default_duration"]
    staff_free: bool = Field(
        default=False, description="A staff member is free for this place: no wait"
    )


class PeriodView(BaseModel):
    weekday: int = Field(description="0 is Monday")
    opens: str = Field(description='"08:30", the department\'s local time')
    closes: str


class DepartmentView(BaseModel):
    id: UUID
    slug: str
    name: str
    name_de: str
    name_en: str
    description: str
    open: bool
    opens_at: datetime | None = Field(description="Next opening, when closed")
    closes_at: datetime | None
    anonymous: bool
    accepts_appointments: bool
    languages: list[str]
    topics: list[TopicView]
    waiting: int
    line_full: bool = Field(
        default=False, description="The line holds as many as it may: knocks wait until later"
    )
    expected_wait: WaitView = Field(description="For someone knocking now")
    weekly: list[PeriodView] = Field(
        default_factory=list, description="The weekly opening hours, by weekday"
    )
    closed_days: list[str] = Field(
        default_factory=list, description="Days (ISO dates) the office stays closed"
    )
    timezone: str = Field(default="Europe/Berlin", description="Of the opening hours")


class KnockIn(BaseModel):
    display_name: DisplayName | None = Field(
        default=None,
        description="How staff should address you; not asked by anonymous departments",
    )
    language: str = Field(default="de", min_length=2, max_length=8, pattern=r"^[a-z]{2,3}$")
    topic: str | None = Field(default=None, max_length=40)
    knock_id: UUID | None = Field(
        default=None,
        description="Chosen by the client; sending the same knock again returns the same "
        "ticket instead of a second one (safe retries)",
    )


class KnockOut(BaseModel):
    ticket_id: UUID
    token: str = Field(description="Keep it: it proves this is your ticket")
    number: int
    display_name: str | None
    anonymous: bool = Field(
        default=False, description="Staff see a pseudonym: the word for guest and the number"
    )
    place: int
    expected_wait: WaitView
    stream: str


class TicketView(BaseModel):
    ticket_id: UUID
    status: str
    department_id: UUID
    place: int | None = None
    expected_wait: WaitView | None = None
    consultation_id: UUID | None = None
    decline_reason: str | None = None
    expiry_reason: str | None = None
    next_opening: datetime | None = None


class WaitingEntry(BaseModel):
    ticket_id: UUID
    number: int
    priority: str
    knocked_at: datetime
    line_order: str = Field(
        default="", description="Sorts as the line does (appointments first, then by knock)"
    )
    display_name: str | None
    anonymous: bool = Field(
        default=False,
        description="No name: pages show a pseudonym (\"Guest 17\", \"Gast 17\") from the number",
    )
    language: str | None
    topic: str | None
    appointment_at: datetime | None = Field(
        default=None, description="The slot of an appointment checked in (priority appointment)"
    )
    transferred: bool = False
    client_tag: str | None = Field(
        default=None,
        description="Set when other tickets in this line came from the same client address: "
        "a pseudonym of the address (never the address), equal for all of them",
    )
    same_client: int = Field(default=1, description="Tickets in this line from that address")


class SharedAddress(BaseModel):
    client_tag: str
    waiting: int


class QueueView(BaseModel):
    department_id: UUID
    open: bool
    waiting: list[WaitingEntry] = Field(description="The first of the line, in order")
    total: int = Field(default=0, description="Everyone waiting, also those not listed")
    shared_addresses: list[SharedAddress] = Field(
        default_factory=list,
        description="Client addresses with several tickets in this line, the most first",
    )


class DeclineClientIn(BaseModel):
    """Decline every ticket of one client address waiting in this line (a flood)."""

    client_tag: str = Field(pattern=r"^[0-9A-F]{10}$")
    reason: DeclineReason = "other"
    message: VisibleText | None = Field(
        default=None, description="Shown to each of them, stored nowhere"
    )


class DeclinedView(BaseModel):
    declined: int


class DeclineIn(BaseModel):
    reason: DeclineReason
    message: VisibleText | None = Field(
        default=None, description="Shown to the citizen, stored nowhere"
    )


class TransferIn(BaseModel):
    department_id: UUID


class MessageIn(BaseModel):
    text: VisibleText


class AdmittedView(BaseModel):
    ticket_id: UUID
    status: str
    department_id: UUID
    consultation_id: UUID | None = None
